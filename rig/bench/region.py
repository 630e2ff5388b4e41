"""The region's receivers draining a backlog (``narhub bench region --json``).

On loopback: the rig's Mosquitto (the region configuration with the identity plugin), a
private PostgreSQL cluster (:class:`rig.postgres.PostgresCluster`, ``fsync`` on) and the
FHIR server fake (:class:`rig.fhir_server.FakeFhirServer`). Each receiver is
``narhub region ingest`` in a process of its own, as a region runs it.

For each case (the state: SQLite or PostgreSQL; 1 or 3 receivers; Observations only, or
also POSTed to the FHIR server as transaction Bundles): the receivers connect once so their
never-expiring sessions hold their share of the shared subscription, and stop; the hubs
publish a backlog of signed batches (the broker queues them for the sessions); the
receivers start again and drain it. Measured from the moment every receiver has subscribed
until every Observation is committed (in PostgreSQL, or in each receiver's NDJSON file) or,
with a FHIR server, until the server holds every Observation: readings/s together and per
receiver, and each receiver process's peak RSS.

With PostgreSQL the receivers share the enrolments (and held readings, device descriptions)
in the state and each keeps its findings in a SQLite file of its own (``--local-db``).
With SQLite each receiver keeps its own state (one receiver per machine is what it is for);
three of them share the load but not the de-duplication. The FHIR server is a fake in this
process: its figure is a bound on the delivery side, not a server's throughput.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.pki import Identity
from common.signing import PemBatchSigner
from drivers.mqtt import MqttLink, TlsFiles
from protocols.fhir import PatientRef
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.enrolment import EnrolmentRequest
from region.enrolment_pg import PostgresEnrolmentStore
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME
from region.state_pg import observation_count
from rig.bench.worklist import run as findings_run
from rig.broker import MosquittoBroker, RigPki
from rig.fhir_server import FakeFhirServer
from rig.postgres import PostgresCluster
from rig.processes import reap

HUBS = 4
READINGS_PER_BATCH = 50
NARHUB = str(Path(sys.executable).with_name("narhub"))
#: In-flight publishes per hub while the backlog is loaded.
_PUBLISH_WINDOW = 20
#: (state, receivers, FHIR server): the cases, in order.
CASES = (
    ("sqlite", 1, False),
    ("sqlite", 3, False),
    ("postgresql", 1, False),
    ("postgresql", 3, False),
    ("postgresql", 1, True),
    ("postgresql", 3, True),
)
CASE_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Backlog:
    """Signed batches per hub, and how many readings they carry."""

    batches: dict[str, list[bytes]]
    readings: int


def _backlog(pki: RigPki, identities: dict[str, Identity], readings: int) -> Backlog:
    per_hub = max(1, readings // (HUBS * READINGS_PER_BATCH))
    batches: dict[str, list[bytes]] = {}
    for n, (hub, identity) in enumerate(identities.items()):
        signer = PemBatchSigner(hub, identity.key_file.read_bytes())
        batches[hub] = []
        for seq in range(per_hub):
            wire = [
                WireReading(
                    "dev/150364",
                    150364,
                    "Cel",
                    1_795_000_000_000 + n * 10**9 + (seq * READINGS_PER_BATCH + i) * 1000,
                    Decimal(f"36.{(seq + i) % 100:02d}"),
                    device="dev",
                )
                for i in range(READINGS_PER_BATCH)
            ]
            header = BatchHeader(
                hub, "boot-1", seq, 1_795_000_000_000, Priority.CLINICAL, len(wire)
            )
            batches[hub].append(signer.sign(encode_body(header, wire)))
    del pki
    return Backlog(batches, per_hub * HUBS * READINGS_PER_BATCH)


async def _publish(broker: MosquittoBroker, pki: RigPki, hub: str, identity: Identity,
                   batches: list[bytes]) -> None:  # fmt: skip
    tls = TlsFiles(pki.ca_file, identity.cert_file, identity.key_file)
    async with MqttLink(broker.host, broker.port, client_id=hub, tls=tls, timeout_s=60) as link:
        topic = f"narhub/v1/{hub}/up/clinical"
        for start in range(0, len(batches), _PUBLISH_WINDOW):
            window = batches[start : start + _PUBLISH_WINDOW]
            reasons = await asyncio.gather(*(link.publish(topic, b) for b in window))
            if any(r >= 0x80 for r in reasons):
                raise RuntimeError(f"the broker refused a backlog batch: {reasons}")


async def _retire(
    broker: MosquittoBroker, pki: RigPki, identity: Identity, names: list[str]
) -> None:
    """End the receivers' sessions (a clean start, no expiry): a session left in the shared
    group would take its share of the next case's batches and hold them until it came back."""
    tls = TlsFiles(pki.ca_file, identity.cert_file, identity.key_file)
    for name in names:
        async with MqttLink(broker.host, broker.port, client_id=name, tls=tls, timeout_s=30):
            pass


class _Receivers:
    """``narhub region ingest`` processes of one case."""

    def __init__(self, case: str, count: int, args: list[str], directory: Path) -> None:
        self.names = [f"{RECEIVER_NAME}-{case}-{n}" for n in range(count)]
        self._args = args
        self._directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def _log(self, name: str) -> Path:
        return self._directory / f"{name}.log"

    def start(self, extra: dict[str, list[str]]) -> None:
        for name in self.names:
            self._log(name).write_text("")
            with self._log(name).open("ab") as log:
                command = [NARHUB, "region", "ingest", *self._args, *extra[name]]
                self.processes.append(
                    subprocess.Popen([*command, "--client-id", name], stdout=log, stderr=log)
                )

    def wait_subscribed(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(self.names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if "subscribed to $share/" in self._log(name).read_text(errors="replace"):
                    pending.discard(name)
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.02)  # polling child processes' logs, bounded by the deadline
        if pending:
            tails = {n: self._log(n).read_text(errors="replace")[-2000:] for n in pending}
            raise RuntimeError(f"receivers did not subscribe: {tails}")

    def peak_rss_kib(self) -> list[int]:
        peaks = []
        for process in self.processes:
            with open(f"/proc/{process.pid}/status", encoding="ascii") as status:  # noqa: PTH123
                peaks += [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
        return peaks

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            reap(process, timeout_s=20, kill_wait_s=10)
        self.processes = []


def _ndjson_lines(paths: list[Path]) -> int:
    """The Observations in the NDJSON outputs (not the Devices they reference)."""
    total = 0
    for path in paths:
        if path.exists():
            with path.open("rb") as file:
                total += sum(1 for line in file if b'"resourceType":"Observation"' in line)
    return total


def _enrolled(path: Path, hubs: list[str]) -> Path:
    """Lend every hub to a patient in the enrolment store at ``path`` (the region files
    readings only to an enrolled patient; unenrolled ones would be held, not written)."""
    for n, hub in enumerate(hubs):
        enrol_hub(path, hub, PatientRef("urn:narhub:patient-pseudonym", f"bench-{n:04d}"))
    return path


def _enrolled_shared(url: str, hubs: list[str]) -> None:
    """Lend every hub to a patient in the receivers' shared PostgreSQL state (once)."""
    store = PostgresEnrolmentStore(url)
    try:
        if not store.enrolments():
            for n, hub in enumerate(hubs):
                patient = PatientRef("urn:narhub:patient-pseudonym", f"bench-{n:04d}")
                store.enrol(EnrolmentRequest(hub, patient, 0))
    finally:
        store.close()


def _state_args(url: str, directory: Path, name: str, hubs: list[str]) -> list[str]:
    if url:  # enrolments, held readings, devices in the state; findings in a file of its own
        _enrolled_shared(url, hubs)
        return ["--state", url, "--local-db", str(directory / f"{name}.local.sqlite3")]
    state = _enrolled(directory / f"{name}.sqlite3", hubs)
    return [
        "--state",
        str(state),
        "--out",
        str(directory / f"{name}.ndjson"),
    ]


def _case(
    name: str,
    receivers: int,
    with_fhir: bool,
    *,
    env: dict[str, Any],
) -> dict[str, Any]:
    directory: Path = env["directory"] / name
    directory.mkdir()
    broker: MosquittoBroker = env["broker"]
    pki: RigPki = env["pki"]
    backlog: Backlog = env["backlog"]
    rx: Identity = env["receiver"]
    base = [
        "--ca-dir", str(env["ca_dir"]), "--host", broker.host, "--port", str(broker.port),
        "--cert", str(rx.cert_file), "--key", str(rx.key_file),
    ]  # fmt: skip
    state, _, _ = name.partition("-")
    url = env["cluster"].create_database(name.replace("-", "_")) if state == "postgresql" else ""
    group = _Receivers(name, receivers, base, directory)
    fhir = FakeFhirServer() if with_fhir else None
    extra = {n: _state_args(url, directory, n, list(env["hubs"])) for n in group.names}
    if fhir is not None:
        extra = {n: [*args, "--fhir-url", fhir.base_url] for n, args in extra.items()}
    outputs = [directory / f"{n}.ndjson" for n in group.names]

    def done() -> int:
        if fhir is not None:
            return fhir.store.count("Observation")
        return observation_count(url) if url else _ndjson_lines(outputs)

    try:
        if fhir is not None:
            fhir.__enter__()
        # Sessions first (the broker queues a shared subscription's share for each), then
        # the backlog, then the drain.
        group.start(extra)
        group.wait_subscribed()
        group.stop()
        started = time.monotonic()

        async def load() -> None:
            await asyncio.gather(
                *(
                    _publish(broker, pki, hub, env["hubs"][hub], batches)
                    for hub, batches in backlog.batches.items()
                )
            )

        asyncio.run(load())
        load_s = time.monotonic() - started
        group.start(extra)
        group.wait_subscribed()
        t0 = time.monotonic()
        deadline = t0 + CASE_TIMEOUT_S
        while done() < backlog.readings and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the outputs, bounded by the deadline
        elapsed = time.monotonic() - t0
        written = done()
        rss = group.peak_rss_kib()
    finally:
        group.stop()
        asyncio.run(_retire(broker, pki, rx, group.names))
        if fhir is not None:
            fhir.__exit__(None, None, None)
    rate = written / elapsed if elapsed > 0 else 0.0
    return {
        "state": state,
        "receivers": receivers,
        "into": "fhir-server" if with_fhir else "observations",
        "readings": backlog.readings,
        "written": written,
        "complete": written == backlog.readings,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(rate),
        "readings_per_s_per_receiver": round(rate / receivers),
        "receiver_peak_rss_kib": rss,
        "backlog_load_s": round(load_s, 2),
    }


def run(
    duration_s: float = 1.0, readings: int = 60_000, findings_patients: int = 10_000
) -> dict[str, Any]:
    """Every case; ``duration_s`` unused (the backlog decides the length). ``findings``:
    judging ``findings_patients`` enrolled patients and the worklist page at that size
    (:mod:`rig.bench.worklist`; 0: left out)."""
    del duration_s
    directory = Path(tempfile.mkdtemp(prefix="narhub-bench-region-"))
    try:
        pki = RigPki.create(directory / "pki")
        hubs = {f"hub-region-{n}": pki.client(f"hub-region-{n}") for n in range(HUBS)}
        ca_dir = directory / "ca"
        (ca_dir / "issued").mkdir(parents=True)
        (ca_dir / "ca.key").write_bytes(pki.ca.key_pem)
        (ca_dir / "ca.crt").write_bytes(pki.ca.cert_pem)
        for n, identity in enumerate(hubs.values()):
            (ca_dir / "issued" / f"{n:x}.crt").write_bytes(identity.cert_file.read_bytes())
        env: dict[str, Any] = {
            "directory": directory,
            "pki": pki,
            "hubs": hubs,
            "ca_dir": ca_dir,
            "receiver": pki.client(RECEIVER_NAME),
            "backlog": _backlog(pki, hubs, readings),
        }
        results = []
        with MosquittoBroker(pki, directory / "broker") as broker, PostgresCluster() as cluster:
            env |= {"broker": broker, "cluster": cluster}
            for state, count, with_fhir in CASES:
                name = f"{state}-{count}{'-fhir' if with_fhir else ''}"
                results.append(_case(name, count, with_fhir, env=env))
        out: dict[str, Any] = {
            "hubs": HUBS,
            "readings_per_batch": READINGS_PER_BATCH,
            "cases": results,
            "cpus": os.cpu_count(),
        }
        if findings_patients:
            out["findings"] = findings_run(patients=findings_patients)
        return out
    finally:
        shutil.rmtree(directory, ignore_errors=True)
