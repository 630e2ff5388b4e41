"""CGM sessions on the emulated radio: session start written from the hub's clock, backfill by
time offset with a committed cursor per sensor session, a gap while out of range, a hub
restart, a sensor change, and an E2E-CRC failure (a malformed value, never a reading)."""

from __future__ import annotations

from pathlib import Path

from ble_rig import running

from drivers.ble import MeasurementEvent, MemoryRecordCursorStore
from drivers.ble.cgm_backfill import cursor_key
from drivers.ble.sim.cgm import EmulatedCgm
from drivers.ble.sim.radio import SimRadio
from gateway.record_cursor_store import SqliteRecordCursorStore
from protocols.gatt import CGM_MEASUREMENT, CgmSessionMeasurement, RacpOperator


def _offsets(events: list[MeasurementEvent], *, stored: bool | None = None) -> list[int]:
    out = []
    for e in events:
        if not isinstance(e.measurement, CgmSessionMeasurement):
            continue
        if stored is not None and e.stored != stored:
            continue
        out.extend(r.time_offset_min for r in e.measurement.measurement.records)
    return out


def _key(cgm: EmulatedCgm) -> str:
    start = cgm.session_start
    assert start is not None
    return cursor_key(cgm.address, start)


async def _records(cgm: EmulatedCgm, offsets: range) -> None:
    for offset in offsets:
        await cgm.add_record(offset)


async def test_first_connection_sets_the_session_start_and_backfills_every_record() -> None:
    radio = SimRadio()
    cgm = EmulatedCgm(radio, "C0:00:00:00:0C:01", seed=1)
    await _records(cgm, range(0, 300, 5))  # 60 records before the hub ever connected
    async with running(radio, [("cgm", cgm)], bond=frozenset({cgm.address})) as (central, got):
        await got.wait_for(lambda: cgm.session_start is not None)
        key = _key(cgm)
        await got.wait_for(lambda: central.tracker(key).committed == 295)
        info = central.status[cgm.address].cgm
        assert info is not None
        assert info.run_time_h == 12
        assert info.e2e_crc
    assert sorted(set(_offsets(got.events))) == list(range(0, 300, 5))
    stored = _offsets(got.events, stored=True)
    assert len(stored) == len(set(stored)) == 60
    first = cgm.racp.requests[0]
    assert first.operator is RacpOperator.ALL_RECORDS
    # The session's clock: the sensor's now (start + current offset) against the hub's.
    events = got.of(CGM_MEASUREMENT)
    assert events[0].clock is not None
    assert events[0].clock.offset_s is not None
    assert abs(events[0].clock.offset_s) < 120


async def test_a_gap_out_of_range_is_backfilled_from_the_cursor_without_overlap() -> None:
    radio = SimRadio()
    cgm = EmulatedCgm(radio, "C0:00:00:00:0C:02", seed=2)
    await _records(cgm, range(0, 60, 5))
    async with running(radio, [("cgm", cgm)], bond=frozenset({cgm.address})) as (central, got):
        await got.wait_for(lambda: cgm.session_start is not None)
        key = _key(cgm)
        await got.wait_for(lambda: central.tracker(key).committed == 55)
        await cgm.go_out_of_range()
        await _records(cgm, range(60, 240, 5))  # three hours away: 36 records
        before = len(cgm.racp.requests)
        cgm.come_back_in_range()
        await got.wait_for(lambda: central.tracker(key).committed == 235, timeout_s=20)
        info = central.status[cgm.address].cgm
        assert info is not None
        assert info.silence_s is not None
    resumed = cgm.racp.requests[before]
    assert resumed.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO
    assert resumed.minimum == 56
    assert sorted(set(_offsets(got.events))) == list(range(0, 240, 5))
    stored = _offsets(got.events, stored=True)
    assert len(stored) == len(set(stored))  # never a stored record twice


async def test_a_hub_restart_resumes_after_the_committed_record(tmp_path: Path) -> None:
    radio = SimRadio()
    cgm = EmulatedCgm(radio, "C0:00:00:00:0C:03", seed=3)
    await _records(cgm, range(0, 100, 5))
    cursors = SqliteRecordCursorStore(tmp_path / "cursors.sqlite3")
    try:
        async with running(radio, [("cgm", cgm)], cursors=cursors) as (central, got):
            await got.wait_for(lambda: cgm.session_start is not None)
            key = _key(cgm)
            await got.wait_for(lambda: central.tracker(key).committed == 95)
        assert await cursors.load(key) == 95
        await _records(cgm, range(100, 150, 5))
        before = len(cgm.racp.requests)
        async with running(radio, [("cgm", cgm)], cursors=cursors) as (central, again):
            await again.wait_for(lambda: central.tracker(key).committed == 145)
        request = cgm.racp.requests[before]
        assert request.minimum == 96
        assert sorted(set(_offsets(again.events, stored=True))) == list(range(100, 150, 5))
    finally:
        cursors.close()


async def test_a_sensor_change_is_a_new_session_downloaded_from_its_start() -> None:
    radio = SimRadio()
    cgm = EmulatedCgm(radio, "C0:00:00:00:0C:04", seed=4)
    await _records(cgm, range(0, 50, 5))
    cursors = MemoryRecordCursorStore()
    async with running(radio, [("cgm", cgm)], cursors=cursors) as (central, got):
        await got.wait_for(lambda: cgm.session_start is not None)
        old = _key(cgm)
        await got.wait_for(lambda: central.tracker(old).committed == 45)
        await cgm.go_out_of_range()
        cgm.change_sensor()
        await _records(cgm, range(0, 30, 5))
        cgm.come_back_in_range()
        await got.wait_for(lambda: cgm.session_start is not None and _key(cgm) != old)
        new = _key(cgm)
        await got.wait_for(lambda: central.tracker(new).committed == 25)
    assert cursors.cursors[old] == 45
    new_session = [e for e in got.events if e.clock is not None and e.stored and e.ack is not None]
    assert new_session  # the new sensor's records came through RACP
    assert cgm.racp.requests[-1].operator in (
        RacpOperator.ALL_RECORDS,
        RacpOperator.GREATER_THAN_OR_EQUAL_TO,
    )
    assert sorted(set(_offsets(got.events))) == list(range(0, 50, 5))  # 0-25 twice: 2 sessions


async def test_a_bad_e2e_crc_is_a_malformed_value_never_a_reading() -> None:
    radio = SimRadio()
    cgm = EmulatedCgm(radio, "C0:00:00:00:0C:05", seed=5)
    await _records(cgm, range(0, 20, 5))
    good = cgm.racp.records[2].pdus[0]
    char, payload, indicate = good
    cgm.racp.records[2].pdus[0] = (char, payload[:-1] + bytes([payload[-1] ^ 0xFF]), indicate)
    async with running(radio, [("cgm", cgm)]) as (central, got):
        await got.wait_for(lambda: any(e.error is not None for e in got.of(CGM_MEASUREMENT)))
        await got.wait_for(lambda: cgm.session_start is not None)
        key = _key(cgm)
        await got.wait_for(lambda: central.tracker(key).committed == 5)
        bad = [e for e in got.of(CGM_MEASUREMENT) if e.error is not None]
        assert bad[0].measurement is None
        assert type(bad[0].error).__name__ == "E2ECrcError"
        assert 10 not in _offsets(got.events)
        # Bytes hurt in transit: the record is asked for again from the cursor, and arrives.
        cgm.racp.records[2].pdus[0] = good
        await got.wait_for(lambda: central.tracker(key).committed == 15, timeout_s=20)
    assert 10 in _offsets(got.events, stored=True)
