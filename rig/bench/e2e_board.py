"""A sensor board for ``narhub bench e2e``: the firmware's sending rules at a paced rate.

The board end of the sensor link (docs/protocols/sensor-link.md) on a pty master, in this
process, behaving as ``firmware/sensorfw`` does, with the limits of a real board read from
the firmware's own files (:func:`firmware_limits`), so that the bench cannot drift from it:

- **ring** (``RING_CAPACITY`` of ``firmware/boards/<board>/board.py``; spec section 6): every
  reading enters the ring when it is taken; a slot is freed only by the hub's ACK. When all
  slots hold unacknowledged readings, the oldest is overwritten and counted in ``dropped``
  (``sensorfw/store.py`` ``Store.append``);
- **go-back-N** (spec section 5, ``sensorfw/link.py`` ``Link.tx_task``): at most
  ``window_readings`` readings in flight, at most ``_MAX_READINGS_PER_FRAME`` per READINGS
  frame; without progress for ``ack_timeout_ms`` the board resends from its oldest reading,
  and after ``max_retries`` it unlinks and says HELLO again;
- **the line**: a UART at ``baud`` bits/s, 10 bits per byte (8N1). A frame is handed to the
  pty when its last byte would have left the UART; the next frame cannot start before.

The readings are identified by their value: reading ``seq`` of a board has value ``seq``
(kind 3, motion events, exponent 0: the value reaches the region unchanged), so the region's
output says which reading arrived, not only how many (:mod:`rig.bench.e2e_count`). The board
keeps its own ledger: when each reading was taken (``taken_ns``, ``CLOCK_MONOTONIC``), when it
first left the UART, and whether the ring overwrote it.

Not modelled: the flash log (one 40-byte write per reading on the board), the hub-to-board
direction's line time (ACKs are 10-15 bytes), boots and reboots (one boot per run).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import time
from array import array
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from protocols.sensorlink import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Ack,
    Capability,
    Config,
    Error,
    Hello,
    HubHello,
    Ping,
    Pong,
    ReadingRow,
    Readings,
    Role,
    SensorLinkConnection,
    SensorRef,
    Time,
)
from rig.bench.replay import hub_events
from rig.sim_boards import RigError, firmware_dir

#: The sensor kind every bench reading has: 3, motion events (exponent 0, spec section 4).
BENCH_KIND = 3
#: A UART frame of one byte: start bit, 8 data bits, stop bit (8N1).
BITS_PER_BYTE = 10
DEFAULT_BAUD = 115_200
DEFAULT_BOARD = "esp32"
_NS = 1_000_000_000


@dataclass(frozen=True)
class BoardLimits:
    """What one board can do, from the firmware's files (and the line's baud rate)."""

    board: str
    ring_capacity: int
    window_readings: int
    max_readings_per_frame: int
    ack_timeout_ms: int
    max_retries: int
    hello_interval_ms: int
    baud: int

    @property
    def line_bytes_per_s(self) -> float:
        """Bytes per second the UART carries (8N1)."""
        return self.baud / BITS_PER_BYTE


def _constants(tree: ast.Module) -> dict[str, int]:
    """``NAME = 12`` and ``_NAME = const(12)`` assignments at module level."""
    out: dict[str, int] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "const":
            value = value.args[0]
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, int)
        ):
            out[target.id] = value.value
    return out


def _link_config_defaults(tree: ast.Module) -> dict[str, int]:
    """The keyword defaults of ``LinkConfig.__init__`` in ``sensorfw/link.py``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "LinkConfig":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args.args[-len(item.args.defaults) :]
                    return {
                        a.arg: d.value
                        for a, d in zip(args, item.args.defaults, strict=True)
                        if isinstance(d, ast.Constant) and isinstance(d.value, int)
                    }
    raise RigError("sensorfw/link.py has no LinkConfig.__init__ with defaults")


def _board_link_config(tree: ast.Module) -> dict[str, int]:
    """The keywords a board folder's ``link()`` passes to ``LinkConfig(...)``."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "LinkConfig"
            and node.keywords
        ):
            return {
                k.arg: k.value.value
                for k in node.keywords
                if k.arg is not None
                and isinstance(k.value, ast.Constant)
                and isinstance(k.value.value, int)
            }
    return {}


def firmware_limits(board: str = DEFAULT_BOARD, *, baud: int = DEFAULT_BAUD) -> BoardLimits:
    """The limits of the firmware's ``board`` folder (``esp32``, ``rp2040``), read from
    ``firmware/sensorfw/link.py`` and ``firmware/boards/<board>/board.py``."""
    firmware = firmware_dir()
    board_file = firmware / "boards" / board / "board.py"
    if not board_file.is_file():
        raise RigError(f"no board folder {board_file.parent} in the firmware")
    link = ast.parse((firmware / "sensorfw" / "link.py").read_text())
    folder = ast.parse(board_file.read_text())
    link_constants, board_constants = _constants(link), _constants(folder)
    config = _link_config_defaults(link) | _board_link_config(folder)
    try:
        return BoardLimits(
            board=board,
            ring_capacity=board_constants["RING_CAPACITY"],
            window_readings=config["window_readings"],
            max_readings_per_frame=link_constants["_MAX_READINGS_PER_FRAME"],
            ack_timeout_ms=config["ack_timeout_ms"],
            max_retries=config["max_retries"],
            hello_interval_ms=config["hello_interval_ms"],
            baud=baud,
        )
    except KeyError as exc:
        raise RigError(f"firmware limit {exc.args[0]} not found for board {board}") from None


def firmware_path(board: str) -> Path:
    """The board folder's file the ring size comes from (for the report)."""
    return firmware_dir() / "boards" / board / "board.py"


@dataclass
class BoardCounters:
    """What one board did (cumulative)."""

    taken: int = 0
    dropped: int = 0
    acked: int = 0
    frames: int = 0
    readings_sent: int = 0
    resends: int = 0
    unlinks: int = 0
    line_busy_s: float = 0.0
    ring_peak: int = 0


class EmulatedBoard:
    """One board on a pty master; :meth:`take` adds readings, the sender runs by itself."""

    def __init__(self, board_id: str, boot_id: int, limits: BoardLimits, master: int) -> None:
        self.board_id = board_id
        self.boot_id = boot_id
        self.limits = limits
        self._master = master
        self._conn = SensorLinkConnection(Role.BOARD)
        self._boot_ns = time.monotonic_ns()
        self._wall_offset_ms: int | None = None
        #: The ledger, indexed by seq (= value): when taken, when first on the line (0:
        #: never), whether the ring overwrote it.
        self.taken_ns = array("q")
        self.sent_ns = array("q")
        self.overwritten = bytearray()
        self._mono_ms = array("q")
        self.tail = 0  # oldest unacknowledged seq (one boot: lsn = seq)
        self.head = 0  # the next seq
        self.cursor = 0
        self.linked = False
        self.counters = BoardCounters()
        self._retries = 0
        self._ack_deadline_ms = 0
        self._line_free_ns = 0
        self._replies: deque[bytes] = deque(maxlen=8)  # firmware _OUTBOX_MAX
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._progress = asyncio.Event()

    # --- the board's clock and ring ------------------------------------------------------

    def _now_ms(self) -> int:
        return (time.monotonic_ns() - self._boot_ns) // 1_000_000

    @property
    def pending(self) -> int:
        """Readings held unacknowledged."""
        return self.head - self.tail

    def take(self, count: int, now_ns: int) -> None:
        """``count`` new readings, taken now (``Store.append`` each)."""
        mono_ms = (now_ns - self._boot_ns) // 1_000_000
        capacity = self.limits.ring_capacity
        for _ in range(count):
            if self.head - self.tail >= capacity:
                self.overwritten[self.tail] = 1
                self.tail += 1
                self.counters.dropped += 1
            self.taken_ns.append(now_ns)
            self.sent_ns.append(0)
            self.overwritten.append(0)
            self._mono_ms.append(mono_ms)
            self.head += 1
        self.counters.taken += count
        self.counters.ring_peak = max(self.counters.ring_peak, self.head - self.tail)
        self._wake.set()

    def _ack(self, seq: int) -> int:
        """Free readings up to ``seq`` at the tail (``Store.ack``); how many."""
        end = min(seq + 1, self.head)
        freed = max(0, end - self.tail)
        self.tail += freed
        self.counters.acked += freed
        return freed

    # --- receiving (``Link.handle``) -------------------------------------------------------

    def on_readable(self) -> None:
        """The pty has bytes from the hub."""
        for event in hub_events(self._conn, self._master):
            if isinstance(event, HubHello):
                self.linked = False
                self._heard()
                self._reply(self._hello())
            elif isinstance(event, Ack):
                self._heard()
                if event.boot_id == self.boot_id and self._ack(event.seq):
                    self._retries = 0
                    self._ack_deadline_ms = self._now_ms() + self.limits.ack_timeout_ms
                    self._wake.set()
                    self._progress.set()
            elif isinstance(event, Time):
                self._heard()
                self._wall_offset_ms = event.wall_ms - self._now_ms()
            elif isinstance(event, Ping):
                self._heard()
                pong = Pong(event.nonce, self.pending, self.counters.dropped, 0, 0)
                self._reply(self._conn.send(pong))
            elif isinstance(event, Config):
                self._heard()
                self._reply(self._conn.send(Config()))
            elif isinstance(event, Error):
                self._heard()

    def _heard(self) -> None:
        if not self.linked:
            self.linked = True
            self.cursor = self.tail
            self._retries = 0
            self._wake.set()

    def _reply(self, frame: bytes) -> None:
        self._replies.append(frame)
        self._wake.set()

    def _hello(self) -> bytes:
        hello = Hello(
            PROTOCOL_VERSION,
            self.board_id,
            self.boot_id,
            "e2e-bench",
            (SensorRef(BENCH_KIND, 0),),
            int(Capability.TIME | Capability.CONFIG),
            MAX_FRAME_BYTES,
            0,
        )
        return self._conn.send(hello)

    def on_writable(self) -> None:
        """The pty has room again."""
        self._writable.set()

    # --- sending (``Link.tx_task``) --------------------------------------------------------

    async def _line(self, frame: bytes) -> None:
        """Send ``frame`` over the UART: it reaches the pty when its last byte would have."""
        now = time.monotonic_ns()
        line_ns = len(frame) * BITS_PER_BYTE * _NS // self.limits.baud
        self._line_free_ns = max(now, self._line_free_ns) + line_ns
        self.counters.line_busy_s += line_ns / _NS
        delay_ns = self._line_free_ns - now
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / _NS)  # the UART's own pace
        view = memoryview(frame)
        while view:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                # The hub is not reading: the bytes wait in the bridge (USB flow control).
                self._writable.clear()
                loop = asyncio.get_running_loop()
                loop.add_writer(self._master, self.on_writable)
                try:
                    await self._writable.wait()
                finally:
                    loop.remove_writer(self._master)

    def _next_frame(self) -> bytes:
        """READINGS from ``cursor`` (``Link._next_frame``); advances ``cursor``."""
        first = self.cursor
        end = min(self.head, first + self.limits.max_readings_per_frame)
        offset = self._wall_offset_ms
        rows = tuple(
            ReadingRow(
                BENCH_KIND,
                0,
                self._mono_ms[seq],
                seq,
                None if offset is None else self._mono_ms[seq] + offset,
            )
            for seq in range(first, end)
        )
        frame = self._conn.send(Readings(self.boot_id, first, self.tail, rows))
        self.cursor = end
        return frame

    async def _wait(self, timeout_ms: int) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(1, timeout_ms) / 1000)

    async def run(self) -> None:
        """The sender, until cancelled."""
        limits = self.limits
        next_hello_ms = 0
        await self._line(b"\x00")  # idle delimiter: the hub resynchronises
        while True:
            while self._replies:
                await self._line(self._replies.popleft())
            now = self._now_ms()
            if not self.linked:
                if now >= next_hello_ms:
                    await self._line(self._hello())
                    next_hello_ms = now + limits.hello_interval_ms
                await self._wait(next_hello_ms - now)
                continue
            self.cursor = max(self.cursor, self.tail)
            if self.cursor < self.head and self.cursor - self.tail < limits.window_readings:
                if self.cursor == self.tail:
                    self._ack_deadline_ms = now + limits.ack_timeout_ms
                await self._send_frame()
                continue
            if self.pending == 0:
                await self._wait(limits.hello_interval_ms)
                continue
            if now >= self._ack_deadline_ms:
                self._retries += 1
                self.counters.resends += 1
                self.cursor = self.tail
                self._ack_deadline_ms = now + limits.ack_timeout_ms
                if self._retries > limits.max_retries:
                    self.linked = False
                    self.counters.unlinks += 1
                    next_hello_ms = now
                continue
            await self._wait(self._ack_deadline_ms - now)

    async def _send_frame(self) -> None:
        first = self.cursor
        frame = self._next_frame()
        end = self.cursor
        if len(frame) > MAX_FRAME_BYTES + 1:  # + the delimiter
            raise RigError(f"a READINGS frame of {len(frame)} bytes: over the link's limit")
        await self._line(frame)
        now = time.monotonic_ns()
        sent = self.sent_ns
        for seq in range(first, end):
            if sent[seq] == 0:
                sent[seq] = now
        self.counters.frames += 1
        self.counters.readings_sent += end - first

    async def wait_settled(self, timeout_s: float) -> bool:
        """Wait until every reading is acknowledged (or overwritten); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(remaining, 0.5))
        return True

    @property
    def wall_clock_set(self) -> bool:
        """True once the hub sent TIME."""
        return self._wall_offset_ms is not None
