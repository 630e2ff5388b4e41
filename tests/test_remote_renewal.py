"""Certificate renewal by signed command while readings flow: nothing lost, nothing twice.

A real Mosquitto (mutual TLS, region ACL), the hub (pipeline, outbox, uplink, command handler)
and the region's reference receiver. Readings are committed at a steady pace; halfway, the
region renews the hub's certificate (new key made on the hub, CSR up, certificate down). The
receiver must hold every reading exactly once, and the hub must run on the new key.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from test_remote_commands import HUB, TIMEOUT_S, Rig, make_rig, running

from common.pki import (
    CertificateAuthority,
    build_csr,
    certificate_public_key_pem,
    new_private_key_pem,
    public_key_pem,
)
from common.signing import PemBatchVerifier
from drivers.mqtt import MqttLink, TlsFiles
from gateway.ble_backend import make_ble_backend
from gateway.config import parse_config, render_config
from gateway.hub import Hub
from gateway.reading import Reading
from gateway.remote.hubside import probe_connect
from gateway.remote.renewal import CertificateRenewal, pending_key_file, recover
from protocols.command_results import Status
from protocols.commands import encode_command
from protocols.uplink import BadSignatureError, Batch, BatchVerifier, SeenBatches
from region.broker_config import RECEIVER_USER
from region.receiver import Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki
from rig.refday import hub_reading, reference_day

#: Readings of the reference day sent, and how many per commit (about a second's worth).
READINGS = 600
PER_COMMIT = 6


class KeyCountingVerifier(PemBatchVerifier):
    """The region's verifier (several keys per hub, as after a renewal) that also counts the
    batches the hub's old key signed and those a newer key signed."""

    def __init__(self, old_key_pem: bytes) -> None:
        super().__init__({HUB: old_key_pem})
        self._old_only = PemBatchVerifier({HUB: old_key_pem})
        #: Batches verified: signed by the old key, by a newer one.
        self.verified = [0, 0]

    def verify(self, message: bytes, *, replay: SeenBatches | None = None) -> Batch:
        batch = super().verify(message, replay=replay)
        try:
            self._old_only.verify(message)
            self.verified[0] += 1
        except BadSignatureError:
            self.verified[1] += 1
        return batch


def fast_batching(rig: Rig) -> None:
    config = rig.config.model_copy(
        update={
            "batching": rig.config.batching.model_copy(
                update={
                    "clinical_s": 0.05,
                    "continuous_s": 0.05,
                    "environmental_s": 0.05,
                    "telemetry_s": 0.05,
                }
            ),
            "store": rig.config.store.model_copy(
                update={"commit_window_s": 0.0, "continuous_commit_window_s": 0.0}
            ),
        }
    )
    rig.config = parse_config(json.loads(config.model_dump_json()), path=rig.config_path)
    rig.config_path.write_text(render_config(rig.config))


def workload() -> list[Reading]:
    """A slice of the reference day (rig/refday.py): the heart-rate strap's walk (heart
    rate every second and each RR interval) with the rooms' climate, motion and telemetry."""
    day = reference_day()
    start = next(i for i, r in enumerate(day) if r.mdc_code == 147842)
    return [hub_reading(i, r) for i, r in enumerate(day[start : start + READINGS], start)]


def identity(stream: str, t_ms: int, value: Decimal | None, special: str | None) -> str:
    return f"{stream}|{t_ms}|{value if value is not None else special}"


async def test_renewal_while_readings_flow_loses_and_duplicates_nothing(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    fast_batching(rig)
    up = rig.config.uplink
    old_cert, old_key = up.cert_file.read_bytes(), up.key_file.read_bytes()
    verifier = KeyCountingVerifier(certificate_public_key_pem(old_cert))
    readings = workload()
    received: list[str] = []
    complete = asyncio.Event()

    def on_batch(batch: Batch, lines: list[str]) -> None:
        received.extend(identity(r.stream, r.t_ms, r.value, r.special) for r in batch.readings)
        if len(received) >= READINGS:
            complete.set()

    receiver_identity = rig_pki.client(RECEIVER_USER)
    receiver = Receiver(
        verifier,
        SqliteState(tmp_path / "seen.sqlite3", tmp_path / "fhir.ndjson"),
        on_batch=on_batch,
    )
    tls = TlsFiles(rig_pki.ca_file, receiver_identity.cert_file, receiver_identity.key_file)

    def connect_receiver() -> MqttLink:
        return MqttLink(
            broker.host, broker.port, client_id=f"{RECEIVER_USER}-1", tls=tls, manual_ack=True
        )

    hub = Hub(rig.config, make_ble_backend(rig.config.ble), config_path=rig.config_path)
    assert hub.remote is not None
    receiving = asyncio.create_task(receiver.run(connect_receiver), name="receiver")
    try:
        async with hub, asyncio.timeout(30):
            await receiver.subscribed.wait()
            await hub.remote.subscribed.wait()
            renewed = False
            for index in range(0, READINGS, PER_COMMIT):
                await hub.pipeline.commit(readings[index : index + PER_COMMIT])
                if index == PER_COMMIT * (READINGS // PER_COMMIT // 3):
                    before_renewal = len(received)
                    # The region learns the new key when it signs the certificate.
                    await renew_and_trust(rig, rig_pki.ca, verifier)
                    renewed = True
                # Pacing of the workload (readings keep arriving during the switch-over).
                await asyncio.sleep(0.005)
            assert renewed
            await complete.wait()
            await hub.remote.wait_sessions(2)  # the command session also switched
            connects = hub.uplink.stats.connects
    finally:
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        receiver.close()
    expected = [identity(r.stream, r.hub_wall_ms, r.value, r.special) for r in readings]
    assert sorted(received) == sorted(expected)  # each exactly once
    assert receiver.stats.rejected == 0
    # Readings crossed the switch-over: batches under the old key, then under the new one.
    assert before_renewal > 0
    old_key_batches, new_key_batches = verifier.verified
    assert old_key_batches > 0
    assert new_key_batches > 0
    assert connects >= 2  # the uplink reconnected with the new certificate
    new_cert, new_key = up.cert_file.read_bytes(), up.key_file.read_bytes()
    assert new_cert != old_cert
    assert new_key != old_key
    assert certificate_public_key_pem(new_cert) == public_key_pem(new_key)
    assert (up.cert_file.with_name(up.cert_file.name + ".prev")).read_bytes() == old_cert
    assert (up.key_file.with_name(up.key_file.name + ".prev")).read_bytes() == old_key
    assert (up.key_file.stat().st_mode & 0o777) == 0o600
    assert not pending_key_file(rig.config).exists()


async def renew_and_trust(rig: Rig, ca: CertificateAuthority, verifier: BatchVerifier) -> None:
    csr_message = rig.key.build(HUB, "renew-cert", {"step": "csr"}, expires_in_s=60)[1]
    csr_result = await rig.send("renew-cert", csr_message)
    assert csr_result.status is Status.APPLIED, csr_result
    cert = ca.sign_csr(str(csr_result.data["csr"]).encode())
    verifier.add_key(HUB, certificate_public_key_pem(cert))  # the region trusts both keys
    body = {"step": "install", "certificate": cert.decode()}
    result = await rig.send(
        "renew-cert", rig.key.build(HUB, "renew-cert", body, expires_in_s=60)[1]
    )
    assert result.status is Status.APPLIED, result
    assert result.data["days_left"] > 300


async def test_a_bad_certificate_is_refused_and_the_old_one_keeps_working(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    up = rig.config.uplink
    old_cert, old_key = up.cert_file.read_bytes(), up.key_file.read_bytes()
    foreign_ca = CertificateAuthority.create("not the region")

    def install(cert: bytes) -> bytes:
        body = {"step": "install", "certificate": cert.decode()}
        return rig.key.build(HUB, "renew-cert", body, expires_in_s=60)[1]

    calls: list[str] = []
    hub = Hub(rig.config, make_ble_backend(rig.config.ble), config_path=rig.config_path)
    assert hub.remote is not None
    async with hub:
        async with asyncio.timeout(TIMEOUT_S):
            await hub.remote.subscribed.wait()
        some_cert = rig_pki.ca.sign_csr(build_csr(new_private_key_pem(), HUB))
        result = await rig.send("renew-cert", install(some_cert))
        assert (result.status, result.reason) == (Status.REJECTED, "no-pending-key")
        csr = rig.key.build(HUB, "renew-cert", {"step": "csr"}, expires_in_s=60)[1]
        pending = (await rig.send("renew-cert", csr)).data["csr"]
        outcomes = {}
        for name, cert in [
            ("other-key", some_cert),
            ("foreign-ca", foreign_ca.sign_csr(str(pending).encode())),
            ("other-hub", rig_pki.ca.sign_csr(build_csr(new_private_key_pem(), "hub-x1"))),
        ]:
            result = await rig.send("renew-cert", install(cert))
            outcomes[name] = (result.status, result.reason, result.detail)
            calls.append(name)
        # The uplink still runs on the old certificate.
        assert hub.uplink.stats.connects == 1
    assert {k: v[:2] for k, v in outcomes.items()} == dict.fromkeys(
        calls, (Status.REJECTED, "bad-certificate")
    )
    assert "another key" in outcomes["other-key"][2]
    assert "pinned region CA" in outcomes["foreign-ca"][2]
    assert (up.cert_file.read_bytes(), up.key_file.read_bytes()) == (old_cert, old_key)
    assert pending_key_file(rig.config).exists()  # the new key waits for a good certificate


def test_recover_finishes_a_switch_over_cut_between_the_two_renames(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    up = rig.config.uplink
    assert recover(rig.config) is None  # a matching pair: nothing to do
    # A certificate written before a crash, never switched to: the old pair stays, it goes.
    cert_next = up.cert_file.with_name(up.cert_file.name + ".next")
    cert_next.write_bytes(up.cert_file.read_bytes())
    assert recover(rig.config) is None
    assert not cert_next.exists()
    new_key = new_private_key_pem()
    pending_key_file(rig.config).write_bytes(new_key)
    # The crash: the new certificate is in place, the key rename did not happen.
    up.cert_file.write_bytes(rig_pki.ca.sign_csr(build_csr(new_key, HUB)))
    assert recover(rig.config) == "finished"
    assert up.key_file.read_bytes() == new_key
    assert not pending_key_file(rig.config).exists()


async def test_renew_commands_unsigned_expired_or_replayed_make_no_key(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    handler = rig.handler()
    handler.add_applier(
        "renew-cert",
        CertificateRenewal(
            rig.config, probe=probe_connect(rig.config), on_installed=handler.request_reconnect
        ),
    )
    key_next = pending_key_file(rig.config)

    def renew_command(**changes: int) -> bytes:
        command, _ = rig.key.build(HUB, "renew-cert", {"step": "csr"}, expires_in_s=60)
        return rig.key.signer().sign(replace(command, **changes))

    async with running(handler):
        first = rig.key.build(HUB, "renew-cert", {"step": "csr"}, expires_in_s=60)
        refused = {
            "unsigned": encode_command(first[0]),
            "expired": renew_command(expires_ms=first[0].issued_ms - 1),
        }
        for name, message in refused.items():
            result = await rig.send("renew-cert", message)
            assert (result.status, result.reason) == (Status.REJECTED, name)
        assert not key_next.exists()
        result = await rig.send("renew-cert", first[1])
        assert result.status is Status.APPLIED
        assert "BEGIN CERTIFICATE REQUEST" in result.data["csr"]
        made = key_next.read_bytes()
        result = await rig.send("renew-cert", renew_command(seq=first[0].seq))
        assert (result.status, result.reason) == (Status.REJECTED, "replayed")
    assert key_next.read_bytes() == made  # the replay made no new key
