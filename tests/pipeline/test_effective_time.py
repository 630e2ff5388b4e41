"""When a time-stamped measurement was taken: its device time stamp, corrected by the observed
device clock offset (PHD IG effective[x]), not the time the hub happened to receive it."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from drivers.ble import ClockObservation, MeasurementEvent
from gateway.pipeline import Pipeline, PipelineSettings, device_wall_ms, readings_from_event
from gateway.validate import FLAG_DEVICE_TIME
from protocols.gatt import TEMPERATURE_MEASUREMENT, decode

STAMP = dt.datetime(2026, 11, 22, 7, 30, 0)


def _local_ms(naive: dt.datetime) -> int:
    return round(naive.timestamp() * 1000)


#: The hub receives the record five hours after it was taken (a stored-record download).
RECEIVED_MS = _local_ms(STAMP) + 5 * 3_600_000


def _thermometer_event(stamp: dt.datetime, clock: ClockObservation | None) -> MeasurementEvent:
    """A real Temperature Measurement (HTS 3.1): 37.2 Cel (FLOAT 372e-1) with a time stamp."""
    raw = (
        bytes([0x02])
        + (372).to_bytes(3, "little")
        + bytes([0xFF])
        + struct.pack("<HBBBBB", stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, 0)
    )
    measurement = decode(TEMPERATURE_MEASUREMENT, raw)
    return MeasurementEvent(
        "C4:7F:51:0A:9B:3E",
        TEMPERATURE_MEASUREMENT,
        raw,
        measurement,
        None,
        RECEIVED_MS,
        1,
        device_time=stamp,
        clock=clock,
    )


def _effective(stamp: dt.datetime, clock: ClockObservation | None) -> int:
    (reading,) = readings_from_event(_thermometer_event(stamp, clock))
    pipeline = Pipeline(outbox=None, settings=PipelineSettings())  # type: ignore[arg-type]
    (checked,) = pipeline.process([reading])
    assert checked.to_wire().t_ms == checked.effective_ms()
    return checked.effective_ms()


def test_a_stored_record_keeps_the_time_it_was_taken_not_its_download_time() -> None:
    hub_now = STAMP + dt.timedelta(hours=5)
    in_sync = ClockObservation(hub_now, hub_now, 0.0)
    assert _effective(STAMP, in_sync) == _local_ms(STAMP)
    assert _effective(STAMP, None) == _local_ms(STAMP)  # no Current Time: the stamp as is


def test_the_observed_clock_offset_is_removed_in_whole_seconds() -> None:
    hub_now = STAMP + dt.timedelta(hours=5)
    # The device clock runs 90 s (and some link latency) fast.
    fast = ClockObservation(hub_now + dt.timedelta(seconds=90.4), hub_now, 90.4)
    assert _effective(STAMP, fast) == _local_ms(STAMP) - 90_000


@pytest.mark.parametrize("offset_days", [-365, 365])
def test_a_device_a_year_off_gets_the_year_corrected_until_the_hub_sets_its_clock(
    offset_days: int,
) -> None:
    hub_now = STAMP + dt.timedelta(hours=5)
    device_then = hub_now + dt.timedelta(days=offset_days)
    offset_s = (device_then - hub_now).total_seconds()
    clock = ClockObservation(device_then, hub_now, offset_s, adjusted=True)
    # Taken before the hub set the clock (a stored record, or the reading that woke it).
    for taken in (STAMP, hub_now - dt.timedelta(seconds=20)):
        old_stamp = taken + dt.timedelta(days=offset_days)
        assert device_wall_ms(old_stamp, clock, _local_ms(hub_now) + 5_000) == _local_ms(taken)
    # Taken during the connection after the hub set it: already on the hub's clock.
    after = hub_now + dt.timedelta(minutes=3)
    assert device_wall_ms(after, clock, _local_ms(after) + 800) == _local_ms(after)
    # End to end, through the pipeline's map and validation.
    assert _effective(STAMP + dt.timedelta(days=offset_days), clock) == _local_ms(STAMP)


def test_a_suspect_time_stamp_falls_back_to_the_reception_time() -> None:
    reset = dt.datetime(1999, 1, 1)
    (reading,) = readings_from_event(_thermometer_event(reset, None))
    pipeline = Pipeline(outbox=None, settings=PipelineSettings())  # type: ignore[arg-type]
    (checked,) = pipeline.process([reading])
    assert FLAG_DEVICE_TIME in checked.flags
    assert checked.effective_ms() == RECEIVED_MS


@pytest.mark.parametrize("hours_ahead", [3, 30])
def test_a_stamp_far_ahead_of_the_hub_is_suspect_and_not_used(hours_ahead: int) -> None:
    ahead = STAMP + dt.timedelta(hours=5 + hours_ahead)
    assert _effective(ahead, None) == RECEIVED_MS


@pytest.mark.parametrize(
    ("stamp", "device_clock"),
    [
        (dt.datetime(9999, 12, 31, 23, 0), STAMP - dt.timedelta(days=400)),  # corrected past 9999
        (STAMP, dt.datetime(9000, 1, 1)),  # corrected before year 1
    ],
)
def test_a_stamp_whose_correction_is_no_time_still_travels_flagged(
    stamp: dt.datetime, device_clock: dt.datetime
) -> None:
    """A device's bytes may be garbage: the map must not raise (it would lose every reading
    of the batch), the reading keeps its value and takes the reception time."""
    hub_now = STAMP + dt.timedelta(hours=5)
    clock = ClockObservation(device_clock, hub_now, (device_clock - hub_now).total_seconds())
    assert device_wall_ms(stamp, clock, RECEIVED_MS) is None
    (reading,) = readings_from_event(_thermometer_event(stamp, clock))
    pipeline = Pipeline(outbox=None, settings=PipelineSettings())  # type: ignore[arg-type]
    (checked,) = pipeline.process([reading])
    assert str(checked.value) == "37.2"
    assert checked.device_time == stamp
    assert FLAG_DEVICE_TIME in checked.flags
    assert checked.effective_ms() == RECEIVED_MS
    assert checked.source_key is None  # a key from a time stamp that is no time: not trusted


def test_an_aware_utc_stamp_is_an_instant_corrected_by_the_offset() -> None:
    # A GHS observation stamped in UTC, from a device whose Elapsed Time read 5 s ahead.
    stamp = dt.datetime(2026, 11, 22, 7, 30, 0, tzinfo=dt.UTC)
    clock = ClockObservation(stamp, dt.datetime(2026, 11, 22, 8, 0), 5.0)
    assert device_wall_ms(stamp, clock) == round(stamp.timestamp() * 1000) - 5000
    assert device_wall_ms(stamp, None) == round(stamp.timestamp() * 1000)


def test_an_aware_stamp_is_judged_as_an_instant() -> None:
    from gateway.reading import Reading
    from gateway.validate import clock_flags

    now_ms = round(dt.datetime(2026, 11, 22, 7, 31, tzinfo=dt.UTC).timestamp() * 1000)

    def reading(stamp: dt.datetime) -> Reading:
        return Reading("s", "d", 1, "1", None, "nan", now_ms, 0, device_time=stamp)

    recent = dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC)
    assert FLAG_DEVICE_TIME not in clock_flags(reading(recent), max_device_ahead_s=60)
    ahead = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
    assert FLAG_DEVICE_TIME in clock_flags(reading(ahead), max_device_ahead_s=60)
