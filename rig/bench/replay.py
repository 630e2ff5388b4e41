"""A replay board: a sensor board on a pty that sends given readings as sensor-link frames
at a speed-up, the way a board sends them, and waits for the hub's ACKs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from protocols.sensorlink import (
    PROTOCOL_VERSION,
    Ack,
    Event,
    Hello,
    HubHello,
    ReadingRow,
    Readings,
    Role,
    SensorLinkConnection,
    SensorRef,
)
from rig.bench.waits import wait_until

BOARD_ID = "footprint-replay"
_BOOT_ID = 0x0F007001
#: Readings per READINGS frame (a frame is at most 512 bytes).
_PER_FRAME = 12


def hub_events(conn: SensorLinkConnection, master: int) -> list[Event]:
    """The board end's read of its UART: what the hub wrote to the pty ``master``, as events
    (none when there is nothing to read or the pty is gone)."""
    try:
        data = os.read(master, 4096)
    except (BlockingIOError, OSError):
        return []
    return conn.receive_data(data)


class ReplayError(RuntimeError):
    """The hub did not acknowledge what the replay board sent in time."""


@dataclass
class ReplayBoard:
    """The board end of the sensor link on a pty, sending the slice at ``speed``."""

    speed: float
    master: int
    sent: int = 0
    acked: int = -1
    first_ack_at: float | None = None
    _conn: SensorLinkConnection = field(default_factory=lambda: SensorLinkConnection(Role.BOARD))
    linked: asyncio.Event = field(default_factory=asyncio.Event)
    _acked_changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                # The pty buffer is full: the hub is behind. Wait for it (bounded by the
                # benchmark's drain timeout), as a board's UART would.
                time.sleep(0.001)

    def on_readable(self) -> None:
        for event in hub_events(self._conn, self.master):
            if isinstance(event, HubHello):
                sensors = tuple(SensorRef(1 + n // 256, n % 256) for n in range(8))
                hello = Hello(PROTOCOL_VERSION, BOARD_ID, _BOOT_ID, "replay", sensors, 0, 512, 0)
                self._write(self._conn.send(hello))
                self.linked.set()
            elif isinstance(event, Ack) and event.boot_id == _BOOT_ID and event.seq > self.acked:
                self.acked = event.seq
                if self.first_ack_at is None:
                    self.first_ack_at = time.monotonic()
                self._acked_changed.set()

    def send(self, rows: Sequence[ReadingRow]) -> None:
        for i in range(0, len(rows), _PER_FRAME):
            part = tuple(rows[i : i + _PER_FRAME])
            seq = self.sent
            self._write(self._conn.send(Readings(_BOOT_ID, seq, self.acked + 1, part)))
            self.sent += len(part)

    async def wait_acked(self, count: int, timeout_s: float) -> None:
        if not await wait_until(lambda: self.acked + 1 >= count, self._acked_changed, timeout_s):
            raise ReplayError(f"hub acknowledged {self.acked + 1} of {count} readings")

    async def play(self, rows: Sequence[ReadingRow], on_second: Callable[[], object]) -> None:
        """Send ``rows`` at their times / speed; ``on_second()`` once per real second."""
        start = time.monotonic()
        base_ms = rows[0].mono_ms if rows else 0
        next_sample = start + 1.0
        i = 0
        while i < len(rows):
            due = start + (rows[i].mono_ms - base_ms) / 1000 / self.speed
            now = time.monotonic()
            if now >= next_sample:
                on_second()
                next_sample += 1.0
            if due > now:
                # A load generator's schedule (not synchronisation): wake at the next reading.
                await asyncio.sleep(min(due, next_sample) - now)
                continue
            j = i
            while j < len(rows) and start + (rows[j].mono_ms - base_ms) / 1000 / self.speed <= now:
                j += 1
            self.send(rows[i:j])
            i = j
