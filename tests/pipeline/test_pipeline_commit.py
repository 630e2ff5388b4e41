"""One commit path for every source: BLE events and sensor-board readings through the same
stages into the outbox (gateway/pipeline.py), acknowledged only after the commit, nothing
lost when a commit's caller is cancelled or a shutdown finds windows open."""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.ble import MeasurementEvent
from gateway.aggregate import ReductionRule
from gateway.board_source import NARHUB_PRIVATE_BASE, board_readings
from gateway.dedup import board_key
from gateway.outbox import AsyncOutbox, Outbox
from gateway.pipeline import Pipeline, PipelineSettings
from gateway.reading import Reading
from gateway.thresholds import Threshold
from protocols.gatt import PLX_CONTINUOUS_MEASUREMENT, decode
from protocols.sensorlink import SequencedReading
from protocols.uplink import Priority

NOW_MS = 1_763_800_000_000  # 2025-11-22
AIR_TEMPERATURE = NARHUB_PRIVATE_BASE + 1
SPO2 = 150456


def _board(seq: int, value: int, kind: int = 1) -> list[Reading]:
    """One board reading (kind 1: air temperature in 0.01 Cel)."""
    return board_readings(
        [SequencedReading("b1", 7, seq, kind, 0, seq * 1000, value, NOW_MS + seq)],
        hub_wall_ms=NOW_MS,
    )


def _plx_event(spo2: int) -> MeasurementEvent:
    raw = bytes([0]) + struct.pack("<HH", spo2, 60)
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    return MeasurementEvent(
        "C4:7F:51:0A:9B:3E",
        PLX_CONTINUOUS_MEASUREMENT,
        raw,
        decode(PLX_CONTINUOUS_MEASUREMENT, raw),
        None,
        NOW_MS,
        1,
        stored=True,
        ack=ack,
    )


def _pipeline(tmp_path: Path, **kwargs: object) -> tuple[Pipeline, AsyncOutbox, list[Reading]]:
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3"), commit_window_s=0.01)
    stored: list[Reading] = []
    settings = PipelineSettings(
        thresholds=(
            Threshold(AIR_TEMPERATURE, "Cel", None, Decimal(30)),
            Threshold(SPO2, "%", Decimal(90), None),
        ),
        **kwargs,  # type: ignore[arg-type]
    )
    return Pipeline(outbox, settings, on_stored=stored.extend), outbox, stored


def _priorities(outbox: AsyncOutbox) -> dict[str, int]:
    return {k: v for k, v in outbox.outbox.depth_by_priority().items() if v}


async def test_board_readings_and_ble_events_take_the_same_stages(tmp_path: Path) -> None:
    pipeline, outbox, stored = _pipeline(tmp_path)
    try:
        assert await pipeline.commit(_board(0, 3150)) == 1  # 31.50 Cel: above the limit
        event = _plx_event(85)  # SpO2 85 %: below the limit
        assert event.ack is not None
        assert await pipeline.commit_events([event]) == 2
        assert event.ack.done()  # acknowledged after the commit, not before
        assert [r.priority for r in stored] == [Priority.ALERT, Priority.ALERT, Priority.CLINICAL]
        assert _priorities(outbox) == {"alert": 2, "clinical": 1}
        # A board resending after a lost ACK: the same key, stored once.
        assert stored[0].source_key == board_key("b1", 7, 0)
        assert await pipeline.commit(_board(0, 3150)) == 0
    finally:
        outbox.close()


class _FullDisk:
    """The outbox's ``add`` (the pipeline's one seam to the store) on a full disk."""

    async def add(self, readings: list[Reading]) -> int:
        raise sqlite3.OperationalError("database or disk is full")


async def test_events_are_not_acknowledged_when_the_commit_fails() -> None:
    stored: list[Reading] = []
    pipeline = Pipeline(_FullDisk(), on_stored=stored.extend)  # type: ignore[arg-type]
    event = _plx_event(97)
    assert event.ack is not None
    with pytest.raises(sqlite3.OperationalError):
        await pipeline.commit_events([event])
    assert not event.ack.done()  # the central keeps the record for the next session
    assert stored == []


async def test_flush_waits_for_the_commit_of_a_cancelled_caller(tmp_path: Path) -> None:
    """Live notifications are never sent again: events taken from the central's queue are
    committed even when the task that took them is cancelled (a shutdown)."""
    pipeline, outbox, stored = _pipeline(tmp_path)
    try:
        event = _plx_event(97)
        assert event.ack is not None
        commit = asyncio.create_task(pipeline.commit_events([event]))
        await asyncio.sleep(0)  # the events have left the queue: the commit is under way
        commit.cancel()
        await asyncio.gather(commit, return_exceptions=True)
        assert commit.cancelled()
        await pipeline.flush()  # at shutdown, once the sources have stopped
        assert outbox.outbox.unbatched_count() == 2  # SpO2 and pulse, stored all the same
        assert len(stored) == 2
        assert not event.ack.done()  # but not acknowledged to the cancelled caller
    finally:
        outbox.close()


async def test_flush_stores_the_open_windows(tmp_path: Path) -> None:
    pipeline, outbox, stored = _pipeline(
        tmp_path, reduction=(ReductionRule(AIR_TEMPERATURE, window_s=3600),)
    )
    try:
        assert await pipeline.commit(_board(1, 2150)) == 0  # held: the hour is not over
        await pipeline.flush()
        assert outbox.outbox.unbatched_count() == 4  # min, mean, max, count of the window
        assert [r.stream.rsplit("/", 1)[1] for r in stored] == ["min", "mean", "max", "count"]
    finally:
        outbox.close()
