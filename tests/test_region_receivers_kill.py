"""Three ``narhub region ingest`` processes on one MQTT 5 shared subscription (MQTT 5.0 section
4.8.2) over one PostgreSQL state; the hubs publish their batches and then replay all of them
(a hub that lost its PUBACKs sends again; a hub that lost power re-batches readings under a
new boot id). One receiver is killed with SIGKILL in the middle of a batch: its transaction
holds the batch key and waits on an Observation row, so it has written part of the batch when
it dies. Every Observation is in the region exactly once, and the killed receiver's batch is
written after its death by a live receiver (a replay of it, or its own session restarted, to
which the broker delivers again what it never acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from pg_locks import lock_waiter

from common.pki import Identity
from common.signing import PemBatchSigner
from drivers.mqtt import MqttLink, TlsFiles
from protocols.fhir import Filed, PatientRef, batch_resources, describe
from protocols.uplink import FORMAT_VERSION, BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.enrolment import EnrolmentRequest
from region.enrolment_pg import PostgresEnrolmentStore
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME
from region.state_pg import PostgresState, export_ndjson, observation_count
from rig.broker import MosquittoBroker, RigPki
from rig.fhir_server import FakeFhirServer
from rig.processes import stop_process

HUBS = ("hub-kill-a", "hub-kill-b")
BATCHES = 12
PER_BATCH = 8
NARHUB = str(Path(sys.executable).with_name("narhub"))

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@dataclass(frozen=True)
class HubBatch:
    hub: str
    payload: bytes
    ids: tuple[str, ...]
    #: The Observations' first identifiers (the PHD IG's, what conditional creates key on).
    identifiers: tuple[str, ...]


PATIENT = PatientRef("urn:test:patient", "p-kill")


def _readings(hub_n: int, start: int, count: int) -> list[WireReading]:
    return [
        WireReading(
            "t/150364",
            150364,
            "Cel",
            1_795_000_000_000 + hub_n * 10_000_000 + i * 1000,
            Decimal(f"36.{i % 100:02d}"),
            device="t",
        )
        for i in range(start, start + count)
    ]


def _sign(hub: str, key_pem: bytes, boot: str, seq: int, readings: list[WireReading]) -> HubBatch:
    header = BatchHeader(hub, boot, seq, 1_795_000_000_000, Priority.CLINICAL, len(readings))
    # What the region writes for them, each filed to the patient the hub is lent to.
    resources = batch_resources(
        hub, FORMAT_VERSION, [Filed(r, PATIENT) for r in readings], describe(readings)
    ).observations
    ids = tuple(str(o["id"]) for o in resources)
    identifiers = tuple(str(o["identifier"][0]["value"]) for o in resources)
    payload = PemBatchSigner(hub, key_pem).sign(encode_body(header, readings))
    return HubBatch(hub, payload, ids, identifiers)


def _region_ca(rig_pki: RigPki, directory: Path, hubs: dict[str, Identity]) -> Path:
    """The CA directory `narhub region ingest --ca-dir` reads (region/ca.py's layout)."""
    (directory / "issued").mkdir(parents=True)
    (directory / "ca.key").write_bytes(rig_pki.ca.key_pem)
    (directory / "ca.crt").write_bytes(rig_pki.ca.cert_pem)
    for n, identity in enumerate(hubs.values()):
        (directory / "issued" / f"{n:x}.crt").write_bytes(identity.cert_file.read_bytes())
    return directory


class ReceiverProcess:
    """`narhub region ingest` as a process of its own."""

    def __init__(self, args: list[str], client_id: str, log: Path) -> None:
        self.client_id = client_id
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [NARHUB, "region", "ingest", *args, "--client-id", client_id],
                stdout=out,
                stderr=out,
            )

    def wait_subscribed(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if text.count("subscribed to $share/") >= 1 + text.count("restarted"):
                return
            assert self.process.poll() is None, f"{self.client_id} exited:\n{text}"
            time.sleep(0.05)  # polling a process's log, bounded by the deadline
        raise AssertionError(f"{self.client_id} never subscribed:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process, timeout_s=10, kill_wait_s=10)


@pytest.fixture
def receivers() -> Iterator[dict[str, ReceiverProcess]]:
    running: dict[str, ReceiverProcess] = {}
    try:
        yield running
    finally:
        for receiver in running.values():
            receiver.stop()


def _blocked_receiver(url: str, timeout_s: float = 60.0) -> str:
    victim = lock_waiter(url, f"{RECEIVER_NAME}-%", timeout_s)
    if victim is None:
        raise AssertionError("no receiver reached the held Observation")
    return victim


def _committed(url: str) -> tuple[int, int]:
    """Batches and Observations committed (not the Devices they reference)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM batches").fetchone()
    assert row is not None
    return int(row[0]), observation_count(url)


async def _publish(
    broker: MosquittoBroker, rig_pki: RigPki, identity: Identity, hub: str, batches: list[HubBatch]
) -> None:
    tls = TlsFiles(rig_pki.ca_file, identity.cert_file, identity.key_file)
    async with MqttLink(broker.host, broker.port, client_id=hub, tls=tls, timeout_s=10) as link:
        for batch in batches:
            reason = await link.publish(f"narhub/v1/{hub}/up/clinical", batch.payload)
            assert reason < 0x80


@pytest.fixture
def fhir() -> Iterator[FakeFhirServer]:
    with FakeFhirServer() as server:
        yield server


@pytest.mark.parametrize("enrolled_in", ["postgresql", "sqlite-file"])
def test_three_receivers_one_killed_mid_batch_write_every_observation_once(
    broker: MosquittoBroker,
    rig_pki: RigPki,
    pg_url: str,
    tmp_path: Path,
    receivers: dict[str, ReceiverProcess],
    fhir: FakeFhirServer,
    enrolled_in: str,
) -> None:
    """``enrolled_in``: the enrolments (and held readings, devices) in the receivers' shared
    PostgreSQL state, or in a SQLite file every receiver is given (``--enrolments``)."""
    hubs = {hub: rig_pki.client(hub) for hub in HUBS}
    receiver_identity = rig_pki.client(RECEIVER_NAME)
    ca_dir = _region_ca(rig_pki, tmp_path / "ca", hubs)
    first: dict[str, list[HubBatch]] = {}
    replay: dict[str, list[HubBatch]] = {}
    for n, hub in enumerate(HUBS):
        key = hubs[hub].key_file.read_bytes()
        first[hub] = [
            _sign(hub, key, "boot-1", seq, _readings(n, seq * PER_BATCH, PER_BATCH))
            for seq in range(BATCHES)
        ]
        # The replay: every batch again, and the second half re-batched after a power cut
        # (new boot id, the same readings in other groupings).
        rebatched = [
            _sign(hub, key, "boot-2", seq, _readings(n, start, PER_BATCH + 3))
            for seq, start in enumerate(
                range(BATCHES * PER_BATCH // 2, BATCHES * PER_BATCH - PER_BATCH - 2, PER_BATCH + 3)
            )
        ]
        replay[hub] = [*first[hub], *rebatched]
    expected = {i for batches in first.values() for b in batches for i in b.ids}
    identifiers = {i for batches in first.values() for b in batches for i in b.identifiers}
    enrolments = tmp_path / "enrolments.sqlite3"
    shared = PostgresEnrolmentStore(pg_url) if enrolled_in == "postgresql" else None
    for hub in HUBS:  # the region files readings only to an enrolled patient
        if shared is None:
            enrol_hub(enrolments, hub, PATIENT)
        else:
            shared.enrol(EnrolmentRequest(hub, PATIENT, 0))
    if shared is not None:
        shared.close()
    keys = {(h, "boot-1", s) for h in HUBS for s in range(BATCHES)} | {
        (h, "boot-2", s) for h in HUBS for s in range(len(replay[h]) - BATCHES)
    }
    PostgresState(pg_url).close()  # the schema, before the test holds a row in it

    # Another transaction holds one Observation of hub A's batch 5 (not committed): the
    # receiver that gets that batch inserts its key, then waits on the row: mid-batch.
    held = first[HUBS[0]][5].ids[3]
    blocker = psycopg.connect(pg_url)
    blocker.execute(
        "INSERT INTO batches (hub, boot, seq, receiver) VALUES ('blocker', 'x', 0, 'test')"
    )
    blocker.execute(
        "INSERT INTO observations (id, batch, pos, resource) "
        "SELECT %s, n, 0, '{}' FROM batches WHERE hub = 'blocker'",
        (held,),
    )
    args = [
        "--ca-dir", str(ca_dir), "--host", broker.host, "--port", str(broker.port),
        "--cert", str(receiver_identity.cert_file), "--key", str(receiver_identity.key_file),
        "--state", pg_url, "--fhir-url", fhir.base_url,
        *(["--enrolments", str(enrolments)] if shared is None else ["--no-findings"]),
    ]  # fmt: skip
    try:
        for n in (1, 2, 3):
            name = f"{RECEIVER_NAME}-{n}"
            receivers[name] = ReceiverProcess(args, name, tmp_path / f"{name}.log")
        for receiver in receivers.values():
            receiver.wait_subscribed()

        async def hubs_publish(plan: dict[str, list[HubBatch]]) -> None:
            async with asyncio.timeout(120), asyncio.TaskGroup() as group:
                for hub, batches in plan.items():
                    group.create_task(_publish(broker, rig_pki, hubs[hub], hub, batches))

        asyncio.run(hubs_publish(first))
        victim = _blocked_receiver(pg_url)
        receivers[victim].process.send_signal(signal.SIGKILL)
        assert receivers[victim].process.wait(timeout=10) == -signal.SIGKILL
        blocker.rollback()  # the held row goes; the dead receiver's transaction aborts
        # The hubs replay while the victim is down; then it comes back under its client id
        # and the broker delivers what its session holds (the batch it died in included).
        asyncio.run(hubs_publish(replay))
        with (tmp_path / f"{victim}.log").open("a") as log:
            log.write("restarted\n")
        receivers[victim] = ReceiverProcess(args, victim, tmp_path / f"{victim}.log")
        receivers[victim].wait_subscribed()

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            _committed(pg_url) != (len(keys), len(expected))
            or fhir.store.count("Observation") < len(expected)
        ):
            time.sleep(0.1)  # polling the database and the server for progress, bounded
    finally:
        blocker.close()
        for receiver in receivers.values():
            receiver.stop()

    assert _committed(pg_url) == (len(keys), len(expected))
    out = tmp_path / "observations.ndjson"
    export_ndjson(pg_url, out)
    lines = [json.loads(line, parse_float=str) for line in out.read_text().splitlines()]
    ids = [line["id"] for line in lines if line["resourceType"] == "Observation"]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT hub, boot, seq, receiver FROM batches").fetchall()
        (writer,) = conn.execute(
            "SELECT b.receiver FROM observations o JOIN batches b ON b.n = o.batch WHERE o.id = %s",
            (held,),
        ).fetchone() or (None,)
    assert {(h, b, s) for h, b, s, _ in rows} == keys
    # The load was split, and the held Observation was written by a live receiver.
    assert len({r for *_, r in rows}) == 3
    assert writer is not None
    assert writer.startswith(RECEIVER_NAME)
    assert "Traceback" not in "".join(r.log.read_text() for r in receivers.values())
    # The FHIR server too holds each Observation once (each posted by one of the receivers'
    # posters from the shared queue; conditional creates for any Bundle posted twice).
    stored = [o["identifier"][0]["value"] for o in fhir.store.resources["Observation"].values()]
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == identifiers
    # One Patient on the server, every Observation's subject; filed to it, nothing held.
    assert fhir.store.count("Patient") == 1
    if enrolled_in == "postgresql":
        shared = PostgresEnrolmentStore(pg_url)
        assert shared.held() == []
        assert all(e.filed_until_ms for e in shared.enrolments())
        shared.close()
