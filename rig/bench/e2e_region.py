"""The region's side of ``narhub bench e2e``: the reference receiver in a process of its own.

:class:`~region.receiver.Receiver` as ``narhub region ingest`` runs it (shared subscription,
PUBACK only after the FHIR lines are fsynced and the batch is marked seen), writing FHIR R4
Observations as NDJSON. After each batch it tells the bench how many lines it wrote and when
(``CLOCK_MONOTONIC``, which every process on the host shares): the lines of the output file
are in the order of those reports, so each Observation's arrival time is known. When the
broker goes away it connects again every 0.1 s and reports each new subscription.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import multiprocessing
import resource
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from protocols.fhir import PatientRef
from protocols.uplink import Batch
from region.enrolment_sqlite import enrol_hub
from region.receiver import Receiver
from region.state_sqlite import SqliteState
from rig.receiving import stop_receiving

_RECONNECT_S = 0.1
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RegionArgs:
    """What the receiver process needs (picklable)."""

    host: str
    port: int
    client_id: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    hub_id: str
    hub_cert_pem: bytes
    directory: Path

    @property
    def output(self) -> Path:
        """The FHIR NDJSON file."""
        return self.directory / "observations.ndjson"

    def verifier(self) -> PemBatchVerifier:
        """The verifier of the one hub's batches."""
        return PemBatchVerifier({self.hub_id: certificate_public_key_pem(self.hub_cert_pem)})

    def connect(self) -> MqttLink:
        """A link to the broker as the receiver: PUBACK only once the batch is written."""
        tls = TlsFiles(self.ca_file, self.cert_file, self.key_file)
        return MqttLink(self.host, self.port, client_id=self.client_id, tls=tls, manual_ack=True)


def _main(conn: Connection, args: RegionArgs) -> None:
    """Entry point of the receiver process."""
    asyncio.run(_serve(conn, args))


async def _serve(conn: Connection, args: RegionArgs) -> None:
    verifier = args.verifier()
    args.directory.mkdir(parents=True, exist_ok=True)

    def on_batch(_batch: Batch, lines: list[str]) -> None:
        conn.send(("batch", len(lines), time.monotonic_ns()))

    state = args.directory / "seen.sqlite3"
    # The region files readings only to an enrolled patient: the bench's hub is lent to one.
    enrol_hub(state, args.hub_id, PatientRef("urn:narhub:patient-pseudonym", "bench-e2e"))
    receiver = Receiver(verifier, SqliteState(state, args.output), on_batch=on_batch)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), stop.set)  # any message from the bench means stop
    task = asyncio.create_task(_receive(conn, receiver, args.connect), name="e2e-receiver")
    await stop.wait()
    loop.remove_reader(conn.fileno())
    await stop_receiving(task, receiver)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn.send(("done", asdict(receiver.stats), peak_kib))


async def _receive(conn: Connection, receiver: Receiver, connect: Any) -> None:
    while True:
        receiver.subscribed = asyncio.Event()
        watch = asyncio.create_task(_report_subscribed(conn, receiver.subscribed))
        try:
            await receiver.run(connect)
        except (MqttError, OSError):
            pass
        finally:
            watch.cancel()
        conn.send(("down", time.monotonic_ns()))
        await asyncio.sleep(_RECONNECT_S)  # the broker is away: try again shortly


async def _report_subscribed(conn: Connection, subscribed: asyncio.Event) -> None:
    await subscribed.wait()
    conn.send(("subscribed", time.monotonic_ns()))


@dataclass
class RegionProcess:
    """The receiver process and what it reported (read on the bench's event loop)."""

    args: RegionArgs
    #: Lines written in total, and after each batch: (lines so far, written at ns).
    written: int = 0
    ends: list[int] = field(default_factory=list)
    times_ns: list[int] = field(default_factory=list)
    subscriptions: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    peak_rss_kib: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _process: multiprocessing.process.BaseProcess | None = None
    _conn: Connection | None = None

    def start(self) -> None:
        """Start the process and wait until it is subscribed (blocking, before the hub runs)."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_main, args=(child, self.args), daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(_START_TIMEOUT_S):
            raise RuntimeError(f"the receiver did not subscribe within {_START_TIMEOUT_S:.0f}s")
        self._handle(parent.recv())
        if self.subscriptions != 1:
            raise RuntimeError("the receiver process did not report its subscription")

    def listen(self) -> None:
        """Read its reports on the running event loop."""
        assert self._conn is not None
        asyncio.get_running_loop().add_reader(self._conn.fileno(), self._read)

    def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        while conn.poll():
            self._handle(conn.recv())
        self.changed.set()

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "batch":
            self.written += int(message[1])
            self.ends.append(self.written)
            self.times_ns.append(int(message[2]))
        elif kind == "subscribed":
            self.subscriptions += 1

    def arrival_ns(self, line: int) -> int:
        """When line ``line`` (0-based) of the output was written."""
        return self.times_ns[bisect.bisect_right(self.ends, line)]

    async def wait_subscriptions(self, count: int, timeout_s: float) -> None:
        """Wait until the receiver has subscribed ``count`` times in all."""
        async with asyncio.timeout(timeout_s):
            while self.subscriptions < count:
                self.changed.clear()
                await self.changed.wait()

    def stop(self) -> None:
        """Stop the process; its statistics and peak RSS are kept."""
        conn, process = self._conn, self._process
        if conn is None or process is None:
            return
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
        with contextlib.suppress(OSError):
            conn.send(("stop",))
        while conn.poll(_START_TIMEOUT_S):
            try:
                message = conn.recv()
            except EOFError:
                break
            if message[0] == "done":
                self.stats = dict(message[1])
                self.peak_rss_kib = int(message[2])
                break
            self._handle(message)
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
        self._conn = self._process = None
