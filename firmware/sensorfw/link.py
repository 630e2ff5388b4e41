"""The board end of the sensor link (sensor-link.md §5): HELLO, go-back-N READINGS, ACK.

One task reads and handles hub frames, one task writes. Only the writer touches the stream;
replies are queued in a small bounded outbox (oldest reply dropped when full: every reply is
also produced again by the hub's next request).
"""

import asyncio

from micropython import const

from sensorfw import frame, proto

_OUTBOX_MAX = const(8)
_MAX_READINGS_PER_FRAME = const(16)


class LinkConfig:
    def __init__(
        self,
        hello_interval_ms: int = 1000,
        ack_timeout_ms: int = 1000,
        max_retries: int = 5,
        window_readings: int = 64,
        read_size: int = 1,
    ) -> None:
        self.hello_interval_ms = hello_interval_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.max_retries = max_retries
        self.window_readings = window_readings
        self.read_size = read_size


class Link:
    def __init__(self, app: object, reader: object, writer: object, cfg: LinkConfig) -> None:
        self.app = app
        self.store = app.store  # type: ignore[attr-defined]
        self.clock = app.clock  # type: ignore[attr-defined]
        self._reader = reader
        self._writer = writer
        self.cfg = cfg
        self.frames = frame.FrameReader()
        self.unknown = 0
        self.linked = False
        self.cursor = 0
        self.retries = 0
        self.outbox: list = []
        self.wake = asyncio.Event()
        self.frames_sent = 0

    # --- receive ---------------------------------------------------------------------
    async def rx_task(self) -> None:
        read = self._reader.read  # type: ignore[attr-defined]
        n = self.cfg.read_size
        while True:
            data = await read(n)
            if not data:
                await asyncio.sleep_ms(50)
                continue
            for payload in self.frames.feed(data):
                self.handle(payload)

    def _reply(self, payload: bytes) -> None:
        if len(self.outbox) >= _OUTBOX_MAX:
            self.outbox.pop(0)
        self.outbox.append(payload)
        self.wake.set()

    def _heard(self) -> None:
        if not self.linked:
            self.linked = True
            self.cursor = self.store.tail
            self.retries = 0
            self.wake.set()

    def handle(self, payload: bytes) -> None:
        try:
            t, f = proto.decode(payload)
        except ValueError:
            self.frames.bad_frames += 1
            return
        if f is None:
            self.unknown += 1
            return
        app = self.app
        if t == proto.HELLO:
            if f["version"] != proto.PROTOCOL_VERSION:
                self._reply(proto.encode_error(proto.ERR_UNSUPPORTED_VERSION, t))
                return
            self.linked = False
            self._heard()
            self._reply(app.hello_payload())  # type: ignore[attr-defined]
        elif t == proto.ACK:
            self._heard()
            if self.store.ack(f["boot_id"], f["seq"]):
                self.retries = 0
                self.ack_deadline_ms = self.clock.mono_ms() + self.cfg.ack_timeout_ms
                self.wake.set()
        elif t == proto.TIME:
            self._heard()
            self.clock.set_wall_ms(f["wall_ms"])
        elif t == proto.CONFIG:
            self._heard()
            code = app.apply_config(f["intervals_ms"], f["thresholds"])  # type: ignore[attr-defined]
            if code:
                self._reply(proto.encode_error(code, t))
            else:
                self._reply(app.config_payload())  # type: ignore[attr-defined]
        elif t == proto.PING:
            self._heard()
            self._reply(
                proto.encode_pong(
                    f["nonce"],
                    self.store.count,
                    self.store.dropped,
                    self.frames.bad_frames,
                    self.unknown,
                )
            )
        elif t == proto.REBOOT:
            app.reboot_requested = True  # type: ignore[attr-defined]
            self.wake.set()
        elif t == proto.ERROR:
            self._heard()

    # --- transmit --------------------------------------------------------------------
    async def _write(self, data: bytes | bytearray) -> None:
        w = self._writer
        w.write(data)  # type: ignore[attr-defined]
        await w.drain()  # type: ignore[attr-defined]
        self.frames_sent += 1

    def _next_frame(self) -> bytes:
        """READINGS payload for the readings from ``cursor``; advances ``cursor``."""
        store = self.store
        lsn = self.cursor
        boot, first_seq = store.boot_and_seq(lsn)
        base = store.base_seq(boot, lsn)
        rows = []
        end = min(store.head, lsn + _MAX_READINGS_PER_FRAME)
        # A reading of this boot taken before the first TIME is dated now that the clock is
        # known (its mono_ms plus the TIME offset, spec 3.3): a backlog read at once is then
        # spread over the times it was taken, not left for the hub to date on arrival.
        this_boot = boot == store.boot_id
        while lsn < end:
            b, _s, kind, index, mono, value, wall = store.record(lsn)
            if b != boot:
                break
            if wall is None and this_boot:
                wall = self.clock.wall_ms(mono)
            row = [kind, index, mono, value]
            if wall is not None:
                row.append(wall)
            rows.append(row)
            lsn += 1
        payload = proto.encode_readings(boot, first_seq, base, rows)
        self.cursor = lsn
        return payload

    async def _wait(self, timeout_ms: int) -> None:
        self.wake.clear()
        try:
            await asyncio.wait_for_ms(self.wake.wait(), max(1, timeout_ms))
        except asyncio.TimeoutError:
            pass

    async def tx_task(self) -> None:
        cfg = self.cfg
        store = self.store
        clock = self.clock
        next_hello_ms = 0
        self.ack_deadline_ms = 0
        await self._write(b"\x00")  # idle delimiter: the hub resyncs on our first frame
        while True:
            while self.outbox:
                await self._write(frame.encode_frame(self.outbox.pop(0)))
            if self.app.reboot_requested:  # type: ignore[attr-defined]
                return
            now = clock.mono_ms()
            if not self.linked:
                if now >= next_hello_ms:
                    await self._write(frame.encode_frame(self.app.hello_payload()))  # type: ignore[attr-defined]
                    next_hello_ms = now + cfg.hello_interval_ms
                await self._wait(next_hello_ms - now)
                continue
            if self.cursor < store.tail:
                self.cursor = store.tail
            if self.cursor < store.head and self.cursor - store.tail < cfg.window_readings:
                if self.cursor == store.tail:
                    self.ack_deadline_ms = now + cfg.ack_timeout_ms
                await self._write(frame.encode_frame(self._next_frame()))
                continue
            if store.count == 0:
                await self._wait(cfg.hello_interval_ms)
                continue
            if now >= self.ack_deadline_ms:
                self.retries += 1
                self.cursor = store.tail
                self.ack_deadline_ms = now + cfg.ack_timeout_ms
                if self.retries > cfg.max_retries:
                    self.linked = False
                    next_hello_ms = now
                continue
            await self._wait(self.ack_deadline_ms - now)
