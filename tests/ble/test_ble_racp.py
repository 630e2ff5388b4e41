"""RACP downloads: only new records, cursor advanced only after commit, resume after a drop."""

from __future__ import annotations

from pathlib import Path

from ble_rig import Collector, running

from drivers.ble import MemoryRecordCursorStore
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.radio import SimRadio
from gateway.record_cursor_store import SqliteRecordCursorStore
from protocols.gatt import GLUCOSE_MEASUREMENT, GLUCOSE_MEASUREMENT_CONTEXT, RacpOperator


async def test_drop_in_the_middle_of_a_download_then_resume_gives_every_record_once(
    tmp_path: Path,
) -> None:
    radio = SimRadio()
    meter = EmulatedGlucoseMeter(radio, "C0:00:00:00:02:01", seed=21, stored_records=200)
    meter.faults.drop_after_records = 70
    cursors = SqliteRecordCursorStore(tmp_path / "cursors.sqlite3")
    try:
        async with running(radio, [("glucose", meter)], cursors=cursors) as (central, got):
            await got.wait_for(lambda: central.cursors_committed(meter.address) == 199)
        assert meter.stats.drops == 1
        assert central.status[meter.address].failures.get("link-lost") == 1
        seqs = [e.sequence_number for e in got.of(GLUCOSE_MEASUREMENT)]
        assert sorted(seqs) == list(range(200))
        assert len(seqs) == len(set(seqs)) == 200  # every record exactly once
        contexts = [e.sequence_number for e in got.of(GLUCOSE_MEASUREMENT_CONTEXT)]
        assert len(contexts) == len(set(contexts))
        # The resumed request started right after the last committed record.
        resumed = meter.racp.requests[1]
        assert resumed.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO
        assert isinstance(resumed.minimum, int)
        assert 60 <= resumed.minimum <= 71
        assert await cursors.load(meter.address) == 199  # persisted
    finally:
        cursors.close()


async def test_next_session_downloads_only_new_records() -> None:
    radio = SimRadio()
    meter = EmulatedGlucoseMeter(radio, "C0:00:00:00:02:02", seed=22, stored_records=30)
    cursors = MemoryRecordCursorStore()
    cursors.cursors[meter.address] = 24  # committed in an earlier run of the hub
    async with running(radio, [("glucose", meter)], cursors=cursors) as (central, got):
        await got.wait_for(lambda: central.cursors_committed(meter.address) == 29)
        new = meter.add_record()
        await got.wait_for(lambda: central.cursors_committed(meter.address) == new)
    assert [e.sequence_number for e in got.of(GLUCOSE_MEASUREMENT)] == [25, 26, 27, 28, 29, 30]


async def test_cursor_is_not_advanced_before_the_pipeline_commits() -> None:
    radio = SimRadio()
    meter = EmulatedGlucoseMeter(radio, "C0:00:00:00:02:03", seed=23, stored_records=10)
    cursors = MemoryRecordCursorStore()
    collector = Collector(ack=False)
    async with running(radio, [("glucose", meter)], cursors=cursors, collector=collector) as (
        central,
        got,
    ):
        await got.wait_for(lambda: len(got.of(GLUCOSE_MEASUREMENT)) == 10)
        assert cursors.commits == 0
        assert meter.address not in cursors.cursors
        for event in got.events[:5]:
            event.acknowledge()
        assert meter.address not in cursors.cursors  # still not: acks arrive in order
        for event in got.events:
            event.acknowledge()
        await got.wait_for(lambda: central.cursors_committed(meter.address) == 9)
    assert cursors.cursors[meter.address] == 9
