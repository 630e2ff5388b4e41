"""MicroPython sensor boards into the outbox: the sensor link's commit is the store's commit.

:class:`drivers.serial.SensorBoardLink` acknowledges readings to a board only after the
``commit`` coroutine returns; here ``commit`` is :meth:`AsyncOutbox.add`, so a board frees its
buffer only for readings on the hub's disk. The source key ``board/boot/seq`` makes the commit
idempotent: a board that resends after a lost ACK does not create duplicates.

Environmental codes: IEEE 11073-10101 has no codes for room climate, motion, doors or bed
pads, so narhub uses private codes in the SCADA partition's private range (partition 2, terms
0xF000 + sensor kind): ``NARHUB_PRIVATE_BASE + kind`` (documented in docs/protocols/sensor-link.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from drivers.serial import SensorBoardLink
from gateway.reading import Reading
from gateway.store import AsyncOutbox
from protocols.sensorlink import SENSOR_KINDS, SequencedReading
from protocols.uplink import Priority

logger = logging.getLogger(__name__)

#: MDC partition 2 (SCADA) x 65536 + private term 0xF000 (IEEE 11073-10101 private range).
NARHUB_PRIVATE_BASE = 2 * 65536 + 0xF000


def board_readings(readings: Sequence[SequencedReading], *, hub_wall_ms: int) -> list[Reading]:
    """Hub Readings for sensor-link readings; unknown kinds keep their raw integer value."""
    out = []
    mono_ns = time.monotonic_ns()
    for r in readings:
        kind = SENSOR_KINDS.get(r.kind)
        value = (
            Reading.exact(r.value, kind.exponent) if kind is not None else Reading.exact(r.value, 0)
        )
        out.append(
            Reading(
                stream=f"{r.board_id}/{r.kind}/{r.index}",
                device=r.board_id,
                mdc_code=NARHUB_PRIVATE_BASE + r.kind,
                unit=kind.unit if kind is not None else "1",
                value=value,
                special=None,
                hub_wall_ms=hub_wall_ms,
                hub_mono_ns=mono_ns,
                priority=Priority.ENVIRONMENTAL,
                flags=frozenset() if kind is not None else frozenset({"unknown-kind"}),
                source_key=f"{r.board_id}/{r.boot_id}/{r.seq}",
                source_wall_ms=r.wall_ms,
            )
        )
    return out


async def run_board(
    port: str, store: AsyncOutbox | Callable[[Sequence[Reading]], Awaitable[int]]
) -> None:
    """Serve one board until cancelled; its link reconnects by itself after unplugging.

    ``store`` is the outbox or the pipeline's ``commit`` (stages, then the outbox); either
    returns only after the readings are committed, and only then is the board acknowledged.
    """
    add = store.add if isinstance(store, AsyncOutbox) else store

    async def commit(readings: Sequence[SequencedReading]) -> None:
        await add(board_readings(readings, hub_wall_ms=time.time_ns() // 1_000_000))

    async with SensorBoardLink(port, commit):
        await asyncio.Event().wait()
