"""Benchmark of the uplink and the region receiver (``narhub bench uplink --json``).

On loopback, with a real Mosquitto started as the rig and the tests start it (TLS 1.3, client
certificates, the region ACL; :class:`rig.broker.MosquittoBroker`), the hub's
:class:`~gateway.uplink.Uplink` in this process and each reference receiver
(:class:`~region.receiver.Receiver`, as ``narhub region ingest`` runs it: shared
subscription, manual PUBACK after the fsync) in a process of its own:

- **alert latency**: from the moment an alert reading is handed to the outbox (the pipeline's
  ``AsyncOutbox.add``: commit, seal, sign, publish) to the moment its FHIR Observation line is
  fsynced at the receiver; p50, p99 and max over ``alerts`` alerts sent one after another;
- **drain**: a backlog of ``days`` days of the reference workload (:mod:`rig.refday`,
  69,650 readings a day) stored while offline; then the hub connects. Readings/s from the
  connect until every batch is acknowledged (the hub's drain rate), and until every
  Observation is written (end to end);
- **receivers**: the same drain with one and with two receivers on the shared subscription:
  readings/s written by the receivers together (first batch received to last written).

RSS: this process (the hub side: outbox, uplink, broker client) and each receiver process
(peak). Times come from ``CLOCK_MONOTONIC``, which all processes on the host share.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common.backoff import Backoff
from common.signing import PemBatchSigner
from drivers.mqtt import MqttLink, TlsFiles
from gateway.outbox import AsyncOutbox, Outbox
from gateway.reading import Reading
from gateway.uplink import DEFAULT_MAX_INFLIGHT, Uplink
from protocols.fhir import PatientRef
from protocols.uplink import Batch, Priority
from region.enrolment import OverlapError
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.bench.e2e_region import RegionArgs
from rig.broker import MosquittoBroker, RigPki
from rig.receiving import stop_receiving
from rig.refday import DAY_MS, reference_day

HUB = "hub-bench"
#: The small default and the issue's full size (``--full``).
DEFAULT_ALERTS = 50
DEFAULT_DAYS = 1
FULL_ALERTS = 200
FULL_DAYS = 7
#: The backlog is stored as the hub would have stored it: one commit per simulated hour
#: (the real hub commits every second; the chunk count barely changes the drain).
_BACKLOG_COMMIT_MS = 3_600_000
_TIMEOUT_S = 300.0
_SUBSCRIBE_TIMEOUT_S = 60.0


def _rss_kib() -> dict[str, int]:
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123 - tiny
        pages = int(statm.read().split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"rss_kib": pages * os.sysconf("SC_PAGE_SIZE") // 1024, "max_rss_kib": int(peak)}


# -- a receiver process ------------------------------------------------------------------------


def _receiver_main(conn: Connection, args: RegionArgs) -> None:
    """Entry point of a receiver process: report each batch written, stop on request."""
    asyncio.run(_receive(conn, args))


async def _receive(conn: Connection, args: RegionArgs) -> None:
    verifier = args.verifier()
    args.directory.mkdir(parents=True, exist_ok=True)

    reported = 0

    def on_batch(batch: Batch, _lines: list[str]) -> None:
        nonlocal reported  # Observations of readings written (not the Devices they reference)
        written, reported = receiver.stats.observations - reported, receiver.stats.observations
        conn.send(("batch", written, time.monotonic(), batch.header.priority))

    state = args.directory / "seen.sqlite3"
    with contextlib.suppress(OverlapError):  # enrolled by an earlier part
        enrol_hub(state, HUB, PatientRef("urn:narhub:patient-pseudonym", "bench-0001"))
    receiver = Receiver(verifier, SqliteState(state, args.output), on_batch=on_batch)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(conn.fileno(), stop.set)  # any message from the parent means stop
    # No persistent session (unlike `ingest`): a session left behind by one part would stay
    # in the shared group and take its share of the next part's batches.
    task = asyncio.create_task(receiver.run(args.connect), name="receiver")
    await receiver.subscribed.wait()
    conn.send(("subscribed",))
    await stop.wait()
    loop.remove_reader(conn.fileno())
    await stop_receiving(task, receiver)
    conn.send(("done", _rss_kib()["max_rss_kib"]))


@dataclass
class _ReceiverPool:
    """Receiver processes and what they reported (read on the parent's event loop)."""

    processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    conns: list[Connection] = field(default_factory=list)
    written: int = 0
    per_receiver: list[int] = field(default_factory=list)
    first_s: float | None = None
    last_s: float = 0.0
    batch_times: list[float] = field(default_factory=list)
    max_rss_kib: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, args: list[RegionArgs]) -> None:
        context = multiprocessing.get_context("spawn")
        for one in args:
            parent, child = context.Pipe()
            process = context.Process(target=_receiver_main, args=(child, one), daemon=True)
            process.start()
            child.close()
            self.processes.append(process)
            self.conns.append(parent)
            self.per_receiver.append(0)
        for conn in self.conns:
            if not conn.poll(_SUBSCRIBE_TIMEOUT_S):
                raise RuntimeError(
                    f"a receiver did not subscribe within {_SUBSCRIBE_TIMEOUT_S:.0f}s"
                )
            message = conn.recv()  # EOFError: the process died
            if message[0] != "subscribed":
                raise RuntimeError(f"receiver process said {message!r}")

    def listen(self) -> None:
        loop = asyncio.get_running_loop()
        for index, conn in enumerate(self.conns):
            loop.add_reader(conn.fileno(), self._read, index)

    def unlisten(self) -> None:
        loop = asyncio.get_running_loop()
        for conn in self.conns:
            loop.remove_reader(conn.fileno())

    def _read(self, index: int) -> None:
        conn = self.conns[index]
        while conn.poll():
            kind, *rest = conn.recv()
            if kind == "batch":
                n, at_s = rest[0], rest[1]
                self.written += n
                self.per_receiver[index] += n
                self.first_s = at_s if self.first_s is None else min(self.first_s, at_s)
                self.last_s = max(self.last_s, at_s)
                self.batch_times.append(at_s)
        self.changed.set()

    async def wait_written(self, total: int) -> None:
        while self.written < total:
            self.changed.clear()
            await self.changed.wait()

    def stop(self) -> None:
        for conn, process in zip(self.conns, self.processes, strict=True):
            with contextlib.suppress(OSError):
                conn.send(("stop",))
            while True:
                try:
                    message = conn.recv()
                except EOFError:
                    break
                if message[0] == "done":
                    self.max_rss_kib.append(int(message[1]))
                    break
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()


# -- the hub side ----------------------------------------------------------------------------


@dataclass
class _Rig:
    """The broker, the PKI and the identities of one benchmark run."""

    directory: Path
    pki: RigPki
    broker: MosquittoBroker

    def __post_init__(self) -> None:
        self._hub = self.pki.client(HUB)
        self._receiver = self.pki.client(RECEIVER_NAME)

    def hub_tls(self) -> TlsFiles:
        return TlsFiles(self.pki.ca_file, self._hub.cert_file, self._hub.key_file)

    def receivers(self, count: int, tag: str) -> list[RegionArgs]:
        identity = self._receiver
        hub_cert = self.hub_tls().cert_file.read_bytes()
        return [
            RegionArgs(
                self.broker.host,
                self.broker.port,
                f"{RECEIVER_NAME}-{tag}-{n}",
                self.pki.ca_file,
                identity.cert_file,
                identity.key_file,
                HUB,
                hub_cert,
                self.directory / f"receiver-{tag}-{n}",
            )
            for n in range(count)
        ]

    def uplink(self, outbox: AsyncOutbox) -> Uplink:
        tls = self.hub_tls()

        def connect() -> MqttLink:
            return MqttLink(self.broker.host, self.broker.port, client_id=HUB, tls=tls)

        return Uplink(
            HUB,
            outbox,
            PemBatchSigner(HUB, tls.key_file.read_bytes()),
            connect,
            backoff=Backoff(initial_s=0.05, cap_s=0.5),
            max_inflight=DEFAULT_MAX_INFLIGHT,
            status_interval_s=60.0,
        )


def _alert(i: int) -> Reading:
    now_ms = time.time_ns() // 1_000_000
    return Reading(
        stream="bench/150364",
        device="bench",
        mdc_code=150364,
        unit="Cel",
        value=Decimal("39.8"),
        special=None,
        hub_wall_ms=now_ms,
        hub_mono_ns=time.monotonic_ns() + i,
        priority=Priority.ALERT,
    )


async def _alert_latency(rig: _Rig, pool: _ReceiverPool, alerts: int) -> dict[str, Any]:
    outbox = AsyncOutbox(Outbox(rig.directory / "alerts.sqlite3"))
    uplink = rig.uplink(outbox)
    latencies_ms: list[float] = []
    pool.listen()
    try:
        async with asyncio.timeout(_TIMEOUT_S), asyncio.TaskGroup() as group:
            task = group.create_task(uplink.run(), name="uplink")
            await uplink.status_published.wait()  # connected
            for i in range(alerts):
                before = pool.written
                start_s = time.monotonic()
                await outbox.add([_alert(i)])
                await pool.wait_written(before + 1)
                latencies_ms.append((pool.last_s - start_s) * 1000)
            task.cancel()
    finally:
        pool.unlisten()
        outbox.close()
    ordered = sorted(latencies_ms)
    return {
        "alerts": alerts,
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def _build_backlog(path: Path, days: int) -> tuple[int, dict[str, int]]:
    """``days`` days of the reference workload stored offline (nothing sealed); returns the
    reading count and the count per priority."""
    day = reference_day()
    store = Outbox(path, quota_bytes=4 * 2**30)
    by_priority = {p.topic_name: 0 for p in Priority}
    total = 0
    try:
        for d in range(days):
            shift = d * DAY_MS
            group: list[Reading] = []
            commit_at = day[0].t_ms + shift + _BACKLOG_COMMIT_MS
            for r in day:
                t = r.t_ms + shift
                if t >= commit_at and group:
                    store.add(group)
                    group = []
                    commit_at = t + _BACKLOG_COMMIT_MS
                group.append(r.received_at(t))
                by_priority[r.priority.topic_name] += 1
                total += 1
            if group:
                store.add(group)
    finally:
        store.close()
    return total, by_priority


async def _drain(rig: _Rig, pool: _ReceiverPool, path: Path, total: int) -> dict[str, Any]:
    outbox = AsyncOutbox(Outbox(path, quota_bytes=4 * 2**30))
    uplink = rig.uplink(outbox)
    pool.listen()
    try:
        async with asyncio.timeout(_TIMEOUT_S), asyncio.TaskGroup() as group:
            start_s = time.monotonic()
            task = group.create_task(uplink.run(), name="uplink")
            while True:  # idle: nothing waits and nothing is pending (all acknowledged)
                await uplink.idle.wait()
                counts = await outbox.counts()
                if counts["pending_batches"] == 0 and counts["unbatched_readings"] == 0:
                    break
                uplink.idle.clear()
            acked_s = time.monotonic()
            await pool.wait_written(total)
            written_s = time.monotonic()
            task.cancel()
    finally:
        pool.unlisten()
        outbox.close()
    first = pool.first_s if pool.first_s is not None else start_s
    return {
        "readings": total,
        "batches": uplink.stats.published,
        "acknowledged_s": round(acked_s - start_s, 3),
        "drain_readings_per_s": round(total / (acked_s - start_s)),
        "written_s": round(written_s - start_s, 3),
        "end_to_end_readings_per_s": round(total / (written_s - start_s)),
        "receiver_readings_per_s": round(total / max(pool.last_s - first, 1e-9)),
        "per_receiver_readings": list(pool.per_receiver),
    }


def _with_pool(args: list[RegionArgs], body: Any) -> tuple[Any, list[int]]:
    pool = _ReceiverPool()
    try:
        pool.start(args)
        result = asyncio.run(body(pool))
    finally:
        pool.stop()
    return result, pool.max_rss_kib


def run(
    *,
    duration_s: float = 1.0,
    alerts: int = DEFAULT_ALERTS,
    days: int = DEFAULT_DAYS,
    full: bool = False,
) -> dict[str, Any]:
    """Run the three parts; ``full``: the issue's size (200 alerts, a 7-day backlog).
    ``duration_s`` is accepted for ``bench all`` and unused (the sizes set the work)."""
    del duration_s
    if full:
        alerts, days = FULL_ALERTS, FULL_DAYS
    directory = Path(tempfile.mkdtemp(prefix="narhub-bench-uplink-"))
    try:
        pki = RigPki.create(directory / "pki")
        with MosquittoBroker(pki, directory / "broker") as broker:
            rig = _Rig(directory, pki, broker)
            latency, latency_rss = _with_pool(
                rig.receivers(1, "a"), lambda pool: _alert_latency(rig, pool, alerts)
            )
            backlog = directory / "backlog.sqlite3"
            built_s = time.monotonic()
            total, by_priority = _build_backlog(backlog, days)
            built_s = time.monotonic() - built_s
            drains: dict[str, Any] = {}
            receiver_rss: dict[str, list[int]] = {}
            for count in (1, 2):
                copy = directory / f"drain-{count}.sqlite3"
                shutil.copyfile(backlog, copy)
                result, rss = _with_pool(
                    rig.receivers(count, f"d{count}"),
                    lambda pool, copy=copy: _drain(rig, pool, copy, total),
                )
                drains[f"receivers_{count}"] = result
                receiver_rss[f"receivers_{count}"] = rss
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    one, two = drains["receivers_1"], drains["receivers_2"]
    return {
        "transport": "loopback, TLS 1.3 with client certificates, Mosquitto",
        "cpus": os.cpu_count(),
        "alert_latency": latency,
        "drain": {
            "days": days,
            "readings": total,
            "readings_by_priority": by_priority,
            "backlog_build_s": round(built_s, 1),
            "max_inflight": DEFAULT_MAX_INFLIGHT,
            "batches": one["batches"],
            "drain_readings_per_s": one["drain_readings_per_s"],
            "acknowledged_s": one["acknowledged_s"],
            "end_to_end_readings_per_s": one["end_to_end_readings_per_s"],
        },
        "receivers": {
            "one": {
                "readings_per_s": one["receiver_readings_per_s"],
                "per_receiver_readings": one["per_receiver_readings"],
            },
            "two": {
                "readings_per_s": two["receiver_readings_per_s"],
                "per_receiver_readings": two["per_receiver_readings"],
                "drain_readings_per_s": two["drain_readings_per_s"],
            },
        },
        "rss": {
            "hub_process": _rss_kib(),
            "receiver_max_rss_kib": {"latency": latency_rss, **receiver_rss},
        },
    }
