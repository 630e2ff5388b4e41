"""One sensor board on a serial port: the hub end of the sensor link, with reconnects.

:class:`SensorBoardLink` is an async context manager owning one TaskGroup with one named task
that (re)opens the port, speaks the sans-I/O :class:`~protocols.sensorlink.SensorLinkConnection`
and hands new readings to the injected ``commit`` coroutine. The ACK for readings is written
only after ``commit`` returns (docs/protocols/sensor-link.md §5): the board frees its buffer
only for readings the hub has durably stored.

Failure policy:
- the port disappears, cannot be opened or errors: reconnect with jittered exponential
  backoff (``reconnect_initial_s`` doubling up to ``reconnect_max_s``); the port spec is
  resolved again each time, so a board that re-enumerates elsewhere is found by serial number;
- ``commit`` raises: the readings are not acknowledged (the board resends them), the tracker is
  rolled back and the exception propagates out of the context manager for the supervisor.

``commit`` must be idempotent on ``(board_id, boot_id, seq)``: after a hub restart the board
resends readings whose ACK was lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from drivers._aio import Lifecycle, reraise_if_cancelling
from drivers.errors import DeviceUnavailableError
from drivers.serial._pyserial import SerialException, open_serial
from drivers.serial.discovery import resolve_port
from protocols.sensorlink import (
    BadFrame,
    BadFrameReason,
    Config,
    DeliveryTracker,
    Error,
    Hello,
    HubHello,
    LinkCounters,
    Message,
    Ping,
    Pong,
    Readings,
    Reboot,
    SensorLinkConnection,
    SequencedReading,
    Time,
)

_log = logging.getLogger(__name__)

CommitFn = Callable[[Sequence[SequencedReading]], Awaitable[None]]
WallClockFn = Callable[[], int | None]

#: Bytes read from the port but not yet handled before reading pauses (backpressure).
MAX_PENDING_BYTES = 64 * 1024


def _no_wall_clock() -> int | None:
    return None


class _Pipe(asyncio.Protocol):
    """asyncio protocol that hands chunks to one reader coroutine, with a bounded buffer."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._ready = asyncio.Event()
        self._lost = False
        self._paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._ready.set()
        if len(self._buf) > MAX_PENDING_BYTES and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._ready.set()

    async def read(self, timeout_s: float) -> bytes | None:
        """Next chunk; ``None`` after ``timeout_s`` of silence.

        Raises:
            ConnectionError: the port closed (unplugged).
        """
        if not self._buf and not self._lost:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                reraise_if_cancelling()
                return None
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._ready.clear()
            if self._paused and self.transport:
                self._paused = False
                self.transport.resume_reading()
            return data
        raise ConnectionError("serial port closed")


class SensorBoardLink(Lifecycle):
    """The hub side of one sensor board's link.

    Args:
        port: ``serial:/dev/ttyACM0``, a plain path, or ``serial:usb:SERIAL``.
        commit: stores readings durably; the ACK is sent only after it returns.
        wall_clock_ms: the hub's Unix time in ms, or ``None`` while the hub clock is not
            synced (then no TIME is sent and readings carry only board monotonic time).
        keepalive_s: PING after this much silence (and TIME, when synced).
    """

    has_background = True

    def __init__(
        self,
        port: str,
        commit: CommitFn,
        *,
        wall_clock_ms: WallClockFn = _no_wall_clock,
        baudrate: int = 115200,
        keepalive_s: float = 10.0,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 5.0,
        tracker: DeliveryTracker | None = None,
    ) -> None:
        self.port = port
        self._commit = commit
        self._wall_clock_ms = wall_clock_ms
        self._baudrate = baudrate
        self._keepalive_s = keepalive_s
        self._backoff = (reconnect_initial_s, reconnect_max_s)
        self.tracker = tracker or DeliveryTracker()
        self.hello: Hello | None = None
        self.board_config: Config | None = None
        self.last_pong: Pong | None = None
        self.last_error: Error | None = None
        self.connected = False
        self.connects = 0
        self.delivered = 0
        self.counters = LinkCounters()
        self.bad_frame_reasons: Counter[BadFrameReason] = Counter()
        self._conn: SensorLinkConnection | None = None
        self._transport: asyncio.Transport | None = None
        self._changed = asyncio.Condition()
        self._nonce = 0

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Nothing before the supervisor starts (it opens the port)."""

    def background(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """The supervisor: open the port, run the link, reopen it with backoff."""
        return [group.create_task(self._supervise(), name=f"sensorlink:{self.port}")]

    async def stop(self) -> None:
        """Close the port (once the supervisor has ended)."""
        self._close_transport()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds, re-checked on every link event.

        Raises:
            TimeoutError: it did not hold within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    # --- requests ----------------------------------------------------------------------
    def send(self, message: Message) -> None:
        """Send a hub message now.

        Raises:
            DeviceUnavailableError: the board is not connected.
        """
        if self._conn is None or self._transport is None or self._transport.is_closing():
            raise DeviceUnavailableError(self.port, "not connected; check the cable")
        self._transport.write(self._conn.send(message))

    def _write(self, message: Message) -> None:
        """Internal send: a frame for a port that just closed is dropped (the board will ask
        again after the reconnect), so bookkeeping after it still runs."""
        t = self._transport
        if self._conn is not None and t is not None and not t.is_closing():
            t.write(self._conn.send(message))

    def ping(self) -> int:
        """Send PING; return its nonce (compare with ``last_pong.nonce``)."""
        self._nonce = (self._nonce + 1) & 0xFFFFFFFF
        self.send(Ping(self._nonce))
        return self._nonce

    def configure(self, config: Config) -> None:
        """Send CONFIG; the board answers with its whole CONFIG or an ERROR."""
        self.send(config)

    def reboot(self) -> None:
        """Ask the board to flush its log and reset."""
        self.send(Reboot())

    # --- internals ---------------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _supervise(self) -> None:
        initial, maximum = self._backoff
        delay = initial
        while True:
            connects = self.connects
            try:
                device = await resolve_port(self.port)
                await self._session(device)
            except (OSError, SerialException, DeviceUnavailableError) as exc:
                _log.info("sensor board link down (%s); reconnecting", type(exc).__name__)
            finally:
                self.connected = False
                self._close_transport()
                await self._notify()
            if self.connects != connects:
                delay = initial  # the port opened: start the backoff over
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter only
            delay = min(delay * 2, maximum)

    async def _session(self, device: str) -> None:
        pipe = _Pipe()
        transport, _ = await open_serial(device, lambda: pipe, baudrate=self._baudrate)
        self._transport = transport
        conn = self._conn = SensorLinkConnection()
        self.counters = conn.counters
        self.connected = True
        self.connects += 1
        _log.info("sensor board port open")
        self._greet()
        await self._notify()
        while True:
            data = await pipe.read(self._keepalive_s)
            if data is None:
                self._keepalive()
                continue
            await self._handle(conn.receive_data(data))

    def _greet(self) -> None:
        """HELLO, after a TIME when the hub's clock is synchronised: any valid hub frame links
        the board (spec §5), and one that links on TIME stamps even its backlog (§3.3)."""
        wall = self._wall_clock_ms()
        if wall is not None:
            self._write(Time(wall))
        self._write(HubHello())

    def _keepalive(self) -> None:
        self._nonce = (self._nonce + 1) & 0xFFFFFFFF
        self._write(Ping(self._nonce))
        wall = self._wall_clock_ms()
        if wall is not None:
            self._write(Time(wall))

    async def _handle(self, events: Sequence[object]) -> None:
        batch: list[SequencedReading] = []
        last: dict[int, int] = {}
        for ev in events:
            if isinstance(ev, Readings):
                if self.hello is None:
                    self._greet()
                    continue
                accepted = self.tracker.accept(self.hello.board_id, ev)
                if accepted.reack is not None:
                    self._write(accepted.reack)
                if accepted.new:
                    batch.extend(accepted.new)
                    last[ev.boot_id] = accepted.new[-1].seq
            elif isinstance(ev, Hello):
                if self.hello is None or self.hello.boot_id != ev.boot_id:
                    _log.info("sensor board announced a new boot")
                self.hello = ev
                self._keepalive()
            elif isinstance(ev, Pong):
                self.last_pong = ev
            elif isinstance(ev, Config):
                self.board_config = ev
            elif isinstance(ev, BadFrame):
                self.bad_frame_reasons[ev.reason] += 1
                _log.debug("bad frame: %s", ev.reason.value)
            elif isinstance(ev, Error):
                self.last_error = ev
                _log.warning("sensor board replied ERROR code %d to type %d", ev.code, ev.about)
            else:
                _log.debug("sensor link event %r", type(ev).__name__)
        if batch:
            assert self.hello is not None
            board_id = self.hello.board_id
            try:
                await self._commit(batch)
            except BaseException:
                for boot in last:
                    self.tracker.rollback(board_id, boot)
                raise
            self.delivered += len(batch)
            for boot, seq in last.items():
                self._write(self.tracker.committed(board_id, boot, seq))
        await self._notify()
