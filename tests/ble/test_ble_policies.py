"""The pure policies of the CGM and GHS sessions (no radio): which records to ask for, what a
live record may do to the cursor, the session's clock; the time stamps of emulated devices
and the hub's reception times."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.ble.central import DeviceStatus
from drivers.ble.cgm_backfill import (
    CgmBackfill,
    LiveRecord,
    clock,
    cursor_key,
    session_start,
    start_time_to_write,
)
from drivers.ble.ghs_records import clock as ghs_clock
from drivers.ble.ghs_records import combined_report, elapsed_time_to_write, hub_utc
from drivers.ble.sim.device_state import DeviceClock
from protocols.gatt import CgmSessionStartTime, DateTime, RacpOperator
from protocols.gatt.elapsed_time import ElapsedTime, TimeResolution
from protocols.gatt.ghs_racp import GhsRacpOperator

START = dt.datetime(2026, 3, 1, 8, 0)


def test_first_download_asks_for_everything_then_from_the_cursor() -> None:
    assert CgmBackfill(None).request().operator is RacpOperator.ALL_RECORDS
    resumed = CgmBackfill(235).request()
    assert resumed.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO
    assert resumed.minimum == 236
    assert CgmBackfill(0xFFFF).request().operator is RacpOperator.ALL_RECORDS


def test_live_records_move_the_cursor_only_after_a_completed_download() -> None:
    policy = CgmBackfill(100)
    assert policy.live(100) is LiveRecord.DUPLICATE
    assert policy.live(95) is LiveRecord.DUPLICATE
    assert policy.live(105) is LiveRecord.EMIT  # older records may still be missing
    assert policy.stored_record_is_new(101)
    assert not policy.stored_record_is_new(100)
    policy.completed(140)
    assert policy.committed == 140
    assert policy.live(145) is LiveRecord.EMIT_AND_ACKNOWLEDGE
    assert policy.live(140) is LiveRecord.DUPLICATE
    policy.completed(None)  # nothing new committed: the cursor stays
    assert policy.committed == 140


def test_a_sensor_change_is_another_cursor() -> None:
    address = "c0:00:00:00:0c:01"
    first = cursor_key(address, START)
    assert first == cursor_key(address.upper(), START)
    assert first != cursor_key(address, START + dt.timedelta(days=10))


def test_the_session_clock_is_start_plus_offset_against_the_hub() -> None:
    hub = dt.datetime(2026, 3, 1, 12, 0, 30)
    observed = clock(START, 240, hub)
    assert observed.device_time == dt.datetime(2026, 3, 1, 12, 0)
    assert observed.offset_s == -30
    assert clock(None, 240, hub).offset_s is None


def test_the_collector_writes_its_own_time_as_the_start() -> None:
    written = start_time_to_write(dt.datetime(2026, 3, 1, 12, 0, 5))
    assert written.session_start_time == DateTime(2026, 3, 1, 12, 0, 5)
    assert session_start(CgmSessionStartTime(DateTime(0, 0, 0, 0, 0, 0))) is None


def test_ghs_combined_report_from_the_cursor() -> None:
    assert combined_report(None).operator is GhsRacpOperator.ALL_RECORDS
    request = combined_report(41)
    assert (request.operator, request.minimum) == (GhsRacpOperator.GREATER_THAN_OR_EQUAL_TO, 42)


@pytest.mark.parametrize("utc", [True, False])
def test_ghs_clock_compares_like_with_like(utc: bool) -> None:
    hub_local = dt.datetime(2026, 3, 1, 12, 0, 0)
    device = hub_utc(hub_local) if utc else hub_local
    since = (device.replace(tzinfo=None) - dt.datetime(2000, 1, 1)) + dt.timedelta(seconds=7)
    elapsed = ElapsedTime(int(since.total_seconds()), TimeResolution.SECOND, utc=utc)
    assert ghs_clock(elapsed, hub_local).offset_s == 7
    ticks = ElapsedTime(123, TimeResolution.SECOND, tick_counter=True)
    assert ghs_clock(ticks, hub_local).offset_s is None


def test_the_hub_clock_written_to_a_ghs_device_is_utc_in_its_resolution() -> None:
    like = ElapsedTime(0, TimeResolution.HUNDRED_MILLISECONDS, utc=True)
    hub_local = dt.datetime(2026, 3, 1, 12, 0, 0)
    written = elapsed_time_to_write(hub_local, like)
    assert written.utc
    assert not written.tick_counter
    assert written.to_datetime() == hub_utc(hub_local)


def test_an_emulated_device_never_stamps_two_measurements_in_one_second() -> None:
    """A device run faster than real time (a rig's ``time_scale``) still gives each
    measurement its own second: the PHD IG's identifier of a time-stamped observation is
    device, type and that second (``HL7/phd``, PhdBaseObservation notes)."""
    now = [0.0]
    clock = DeviceClock(START, monotonic=lambda: now[0])
    stamps = []
    for _ in range(5):
        stamps.append(clock.stamp())
        now[0] += 0.1  # ten measurements a second
    assert stamps == [START + dt.timedelta(seconds=i) for i in range(5)]
    now[0] = 60.0  # the schedule slows down: stamps follow the clock again
    assert clock.stamp() == START + dt.timedelta(seconds=60)
    clock.set(START)  # a central sets the clock back a minute
    assert clock.stamp() == START + dt.timedelta(seconds=1)
    assert clock.stamp() == START + dt.timedelta(seconds=2)


def test_a_device_s_events_are_received_in_distinct_milliseconds() -> None:
    """A burst of records in one millisecond gets one millisecond each (an undated reading
    is identified by its reception time); a clock stepped back over a second is followed."""
    status = DeviceStatus("glucose-x", "glucose")
    assert [status.reception_ms(5_000) for _ in range(3)] == [5_000, 5_001, 5_002]
    assert status.reception_ms(4_999) == 5_003  # a few ms back: still after the last
    assert status.reception_ms(9_000) == 9_000
    assert status.reception_ms(1_000) == 1_000  # stepped back eight seconds: followed
