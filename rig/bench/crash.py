"""The crash harness: the store, pipeline and uplink in a process killed with SIGKILL, again and
again, while a numbered source feeds it and a receiver takes its batches (docs/pipeline.md).

Roles, each in its own process:

- the **harness** (this module's :class:`CrashHarness`, in the test or the benchmark) is the
  numbered source (it sends readings ``n``, ``n+1``, ... with source keys ``src/{n}``, keeps
  every reading not yet acknowledged and sends it again to the next worker, as a sensor board
  does), the broker (it answers PUBACK 0) and the receiver (it verifies each signed batch,
  drops a batch whose (boot, seq) it has seen, and records the readings);
- the **worker** is the real :class:`gateway.pipeline.Pipeline`, :class:`AsyncOutbox` (group
  commit) and :class:`gateway.uplink.Uplink`, on one SQLite file, talking to the harness over
  a Unix socket; the uplink's link is the seam (``publish`` returns the harness's PUBACK);
- a **zygote** imports everything once and forks a worker per life, so a kill-restart cycle
  costs milliseconds, not an interpreter start.

Each life is killed with SIGKILL at a random moment (seeded, printed); the last one runs until
everything sent is acknowledged and delivered. The verdict: every reading acknowledged to the
source reached the receiver, and no reading reached it twice (after batch de-duplication).
``ack_before_commit=True`` makes the worker acknowledge first (the bug every store-and-forward
product we studied had), to show that the harness catches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.reading import Reading
from protocols.uplink import Priority
from rig.link_seam import OwnLink

HUB_ID = "hub-crash"
_FRAMES_IN_FLIGHT = 8
_FINAL_NEW_READINGS = 200

T0_MS = 1_763_800_000_000
_PRIORITIES = (Priority.ALERT, *[Priority.CLINICAL] * 4, *[Priority.ENVIRONMENTAL] * 3)
_PRIORITY_CYCLE = (*_PRIORITIES, Priority.TELEMETRY, Priority.TELEMETRY)


def source_reading(n: int) -> Reading:
    """Reading number ``n`` of the numbered source (its value is ``n``, exactly)."""
    return Reading(
        stream=f"src/{n % 7}",
        device="src",
        mdc_code=2 * 65536 + 0xF001,
        unit="Cel",
        value=Decimal(n),
        special=None,
        hub_wall_ms=T0_MS + n,
        hub_mono_ns=n,
        priority=_PRIORITY_CYCLE[n % len(_PRIORITY_CYCLE)],
        source_key=f"src/{n}",
    )


# -- the worker (runs in a forked child) -----------------------------------------------------


class _SocketLink(OwnLink):
    """The uplink's link: PUBLISH goes to the harness, which answers with a reason code."""

    def __init__(self, writer: asyncio.StreamWriter, pubacks: asyncio.Queue[int]) -> None:
        self._writer = writer
        self._pubacks = pubacks

    async def publish(self, topic: str, payload: bytes) -> int:
        self._writer.write(f"B {topic} {payload.hex()}\n".encode())
        await self._writer.drain()
        return await self._pubacks.get()


async def _worker(sock: str, key_pem: bytes, data_dir: Path, *, ack_before_commit: bool) -> None:
    from gateway.outbox import AsyncOutbox, BatchingPolicy, Outbox  # noqa: PLC0415
    from gateway.pipeline import Pipeline  # noqa: PLC0415 - imported in the zygote already
    from gateway.uplink import Uplink  # noqa: PLC0415

    reader, writer = await asyncio.open_unix_connection(sock)
    policy = BatchingPolicy(
        clinical_s=0.02, continuous_s=0.05, environmental_s=0.05, telemetry_s=0.05
    )
    outbox = AsyncOutbox(
        Outbox(data_dir / "outbox.sqlite3", recover=True, batching=policy),
        commit_window_s=0.05 if ack_before_commit else 0.005,
    )
    pipeline = Pipeline(outbox)
    pubacks: asyncio.Queue[int] = asyncio.Queue()
    signer = PemBatchSigner(HUB_ID, key_pem)
    link = _SocketLink(writer, pubacks)
    uplink = Uplink(HUB_ID, outbox, signer, link)  # type: ignore[arg-type]

    async def commit(first: int, count: int) -> None:
        readings = [source_reading(n) for n in range(first, first + count)]
        if ack_before_commit:
            writer.write(f"A {first} {count}\n".encode())
            await pipeline.commit(readings)
            return
        await pipeline.commit(readings)
        writer.write(f"A {first} {count}\n".encode())

    commits: set[asyncio.Task[None]] = set()
    async with asyncio.TaskGroup() as group:
        up = group.create_task(uplink.run(), name="uplink")
        writer.write(b"READY\n")
        while line := await reader.readline():
            kind, *args = line.split()
            if kind == b"R":
                task = group.create_task(commit(int(args[0]), int(args[1])), name="commit")
                commits.add(task)
                task.add_done_callback(commits.discard)
            elif kind == b"P":
                pubacks.put_nowait(int(args[0]))
            elif kind == b"X":
                break
        await asyncio.gather(*commits)
        up.cancel()
    outbox.close()
    writer.write(b"BYE\n")
    await writer.drain()
    writer.close()


def _zygote() -> None:
    """Read ``spawn SOCK KEY DATA_DIR MODE`` lines; fork a worker for each, print its pid."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for module in ("gateway.pipeline", "gateway.outbox", "gateway.uplink"):
        importlib.import_module(module)  # once, before forking

    for line in sys.stdin:
        _cmd, sock, key, data_dir, mode = line.split()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                faulty = mode == "ack-before-commit"
                key_pem = Path(key).read_bytes()
                asyncio.run(_worker(sock, key_pem, Path(data_dir), ack_before_commit=faulty))
            except BaseException:  # noqa: BLE001 - the harness sees the socket close
                import traceback  # noqa: PLC0415

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


# -- the harness (the source, the broker and the receiver) -----------------------------------


@dataclass
class CrashReport:
    """The outcome of a run; ``ok`` when nothing acknowledged was lost and nothing doubled."""

    seed: int
    lives: int
    kills: int
    sent: int
    acknowledged: int
    received: int
    batches: int
    duplicate_batches: int
    lost: list[int] = field(default_factory=list)
    doubled: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every acknowledged reading delivered, none twice."""
        return not self.lost and not self.doubled


class CrashHarness:
    """Runs a worker through ``kills`` SIGKILLs at random moments, then a clean final life."""

    def __init__(
        self,
        workdir: Path,
        *,
        seed: int,
        kills: int,
        max_life_s: float = 0.06,
        final_life_s: float = 60.0,
        ack_before_commit: bool = False,
        data_dir: Path | None = None,
        after_kill: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.seed = seed
        self.kills = kills
        self.max_life_s = max_life_s
        self.final_life_s = final_life_s
        self.mode = "ack-before-commit" if ack_before_commit else "normal"
        self._rng = random.Random(seed)  # noqa: S311 - reproducible kill times, not security
        self._next = 0
        self._unacked: set[int] = set()
        self._acked: set[int] = set()
        self._received: dict[int, int] = {}
        self._seen: set[tuple[str, int]] = set()
        self._batches = 0
        self._duplicate_batches = 0
        key = new_private_key_pem()
        workdir.mkdir(parents=True, exist_ok=True)
        self._key = workdir / "hub.key"
        self._key.write_bytes(key)
        self.data_dir = data_dir or workdir / "hub"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        #: Called after each kill, before the next life (a power cut, for instance).
        self._after_kill = after_kill
        self._verifier = PemBatchVerifier({HUB_ID: public_key_pem(key)})
        self._sock = str(workdir / "harness.sock")
        self._conn: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def run(self) -> CrashReport:
        """Run every life; returns the report (check ``report.ok``)."""
        started = time.monotonic()
        zygote = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import rig.bench.crash as c; c._zygote()",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        server = await asyncio.start_unix_server(
            lambda r, w: self._conn.put_nowait((r, w)), self._sock
        )
        try:
            for _ in range(self.kills):
                await self._life(zygote, kill_after_s=self._rng.uniform(0, self.max_life_s))
            await self._life(zygote, kill_after_s=None)
        finally:
            server.close()
            if zygote.stdin is not None:
                zygote.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                zygote.kill()
            await zygote.wait()
        lost = sorted(self._acked - self._received.keys())
        doubled = sorted(n for n, count in self._received.items() if count > 1)
        return CrashReport(
            seed=self.seed,
            lives=self.kills + 1,
            kills=self.kills,
            sent=self._next,
            acknowledged=len(self._acked),
            received=len(self._received),
            batches=self._batches,
            duplicate_batches=self._duplicate_batches,
            lost=lost,
            doubled=doubled,
            seconds=time.monotonic() - started,
        )

    async def _spawn(self, zygote: asyncio.subprocess.Process) -> int:
        assert zygote.stdin is not None
        assert zygote.stdout is not None
        line = f"spawn {self._sock} {self._key} {self.data_dir} {self.mode}\n"
        zygote.stdin.write(line.encode())
        await zygote.stdin.drain()
        return int(await zygote.stdout.readline())

    async def _life(
        self, zygote: asyncio.subprocess.Process, *, kill_after_s: float | None
    ) -> None:
        pid = await self._spawn(zygote)
        async with asyncio.timeout(30):
            reader, writer = await self._conn.get()
            assert await reader.readline() == b"READY\n", "the worker did not start"
        in_flight: set[int] = set()
        resend = sorted(self._unacked)
        final = kill_after_s is None

        budget = [_FINAL_NEW_READINGS if final else sys.maxsize]

        def feed() -> None:
            # Like a board: keep up to 8 frames outstanding; first what was never acknowledged.
            while len(in_flight) < _FRAMES_IN_FLIGHT and (resend or budget[0] > 0):
                if resend:
                    first = resend.pop(0)
                    count = 1
                    while resend and resend[0] == first + count and count < 20:
                        resend.pop(0)
                        count += 1
                else:
                    first, count = self._next, self._rng.randint(1, 20)
                    self._next += count
                    budget[0] -= count
                    self._unacked.update(range(first, first + count))
                writer.write(f"R {first} {count}\n".encode())
                in_flight.add(first)

        with contextlib.suppress(TimeoutError):
            feed()
            async with asyncio.timeout(self.final_life_s if final else kill_after_s):
                while not (final and not self._unacked and not in_flight and self._delivered()):
                    line = await _readline(reader)
                    if not line:
                        raise ConnectionError("the worker died on its own")
                    self._handle(line, writer, in_flight)
                    feed()
        if final:
            writer.write(b"X\n")
            async with asyncio.timeout(30):
                while line := await _readline(reader):
                    if line != b"BYE\n":
                        self._handle(line, None, in_flight)
        else:
            os.kill(pid, signal.SIGKILL)
            async with asyncio.timeout(30):  # what it sent before dying still counts
                while line := await _readline(reader):
                    self._handle(line, None, in_flight)
            if self._after_kill is not None:
                await self._after_kill()
        writer.close()

    def _delivered(self) -> bool:
        return self._acked <= self._received.keys()

    def _handle(
        self, line: bytes, writer: asyncio.StreamWriter | None, in_flight: set[int]
    ) -> None:
        kind, *args = line.split()
        if kind == b"A":
            first, count = int(args[0]), int(args[1])
            numbers = range(first, first + count)
            self._acked.update(numbers)
            self._unacked.difference_update(numbers)
            in_flight.discard(first)
        elif kind == b"B":
            self._receive(bytes.fromhex(args[1].decode()))
            if writer is not None:  # the broker's PUBACK (lost if the worker is gone)
                writer.write(b"P 0\n")

    def _receive(self, message: bytes) -> None:
        batch = self._verifier.verify(message)
        key = (batch.header.boot_id, batch.header.seq)
        if key in self._seen:
            self._duplicate_batches += 1
            return
        self._seen.add(key)
        self._batches += 1
        for r in batch.readings:
            if r.device == "src" and r.value is not None:
                n = int(r.value)
                self._received[n] = self._received.get(n, 0) + 1


async def _readline(reader: asyncio.StreamReader) -> bytes:
    """A line, or b"" once the worker is gone (a killed peer may reset the connection)."""
    try:
        return await reader.readline()
    except ConnectionResetError:
        return b""


def run_harness(workdir: Path, *, seed: int, kills: int, **options: Any) -> CrashReport:
    """Run a :class:`CrashHarness` to its end (blocking); options as its constructor's."""
    return asyncio.run(CrashHarness(workdir, seed=seed, kills=kills, **options).run())


def summary(report: CrashReport) -> dict[str, object]:
    """The report as JSON-able figures (lists shortened)."""
    return {
        "seed": report.seed,
        "kills": report.kills,
        "sent": report.sent,
        "acknowledged": report.acknowledged,
        "received": report.received,
        "batches": report.batches,
        "duplicate_batches_dropped": report.duplicate_batches,
        "lost": len(report.lost),
        "doubled": len(report.doubled),
        "ok": report.ok,
        "seconds": round(report.seconds, 1),
    }
