"""The pipeline's hot paths give what their plain definitions give (``narhub bench pipeline``).

:func:`gateway.validate.validate` checks the common case inline and
:func:`gateway.pipeline.readings_from_event` builds each Reading from a tuple of its fields;
these tests hold both to the pure functions and the named-field constructor they stand for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import struct
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble import ClockObservation, MeasurementEvent
from gateway import pipeline as pipeline_module
from gateway.outbox import AsyncOutbox
from gateway.pipeline import Pipeline, readings_from_event
from gateway.reading import Reading
from gateway.validate import (
    MIN_PLAUSIBLE_WALL_MS,
    PLAUSIBLE,
    clock_flags,
    validate,
    value_flags,
)
from protocols.gatt import (
    GLUCOSE_MEASUREMENT,
    HEART_RATE_MEASUREMENT,
    PLX_CONTINUOUS_MEASUREMENT,
    DateTime,
    GlucoseMeasurement,
    GlucoseType,
    MedFloat,
    SampleLocation,
    decode,
    encode,
)

NOW_MS = 1_763_800_000_000  # 2025-11-22
_HUB_LOCAL = dt.datetime.fromtimestamp(NOW_MS / 1000)

_UNKNOWN_CODE = 999_999


@st.composite
def _readings(draw: st.DrawFn) -> Reading:
    """Readings around the plausibility bounds of their code and unit, and some others."""
    code = draw(st.sampled_from([*PLAUSIBLE, _UNKNOWN_CODE]))
    ranges = PLAUSIBLE.get(code, {})
    unit = draw(st.sampled_from([*ranges, "x"]))
    edges = [b for bounds in ranges.values() for b in bounds] or [Decimal(0)]
    step = draw(st.sampled_from([Decimal(0), Decimal("0.1"), Decimal("-0.1"), Decimal(1)]))
    value = draw(
        st.sampled_from([draw(st.sampled_from(edges)) + step, None])
        | st.decimals(-1000, 10_000, places=2)
    )
    device_time = draw(
        st.sampled_from(
            [
                None,
                dt.datetime(1999, 12, 31),
                _HUB_LOCAL,
                _HUB_LOCAL + dt.timedelta(hours=3),
            ]
        )
    )
    return Reading(
        stream=f"dev/{code}",
        device="dev",
        mdc_code=code,
        unit=unit,
        value=value,
        special=draw(st.sampled_from([None, "nan", "weird"])) if value is None else None,
        hub_wall_ms=draw(st.sampled_from([1_000, MIN_PLAUSIBLE_WALL_MS - 1, NOW_MS])),
        hub_mono_ns=0,
        device_time=device_time,
        flags=draw(st.sampled_from([frozenset(), frozenset({"implausible"}), frozenset({"x"})])),
    )


@settings(max_examples=300, deadline=None)
@given(_readings(), st.sampled_from([60.0, 7200.0]))
def test_validate_gives_what_the_flag_functions_give(reading: Reading, ahead_s: float) -> None:
    flags = value_flags(reading)
    if reading.hub_wall_ms < MIN_PLAUSIBLE_WALL_MS or reading.device_time is not None:
        flags |= clock_flags(reading, max_device_ahead_s=ahead_s)
    checked = validate(reading, max_device_ahead_s=ahead_s)
    if flags <= reading.flags:
        assert checked is reading
    else:
        assert checked == reading._replace(flags=reading.flags | flags)


def _complete(readings: list[Reading]) -> None:
    for r in readings:
        assert type(r) is Reading
        assert len(r) == len(Reading._fields)
        assert Reading(**r._asdict()) == r


def test_readings_from_events_are_complete_readings() -> None:
    plx_raw = bytes([0]) + struct.pack("<HH", 97, 60)
    hr_raw = struct.pack("<BBHH", 0x10, 72, 600, 610)
    stamp = dt.datetime(2025, 11, 22, 8, 30)
    glucose = GlucoseMeasurement(
        sequence_number=7,
        base_time=DateTime.from_datetime(stamp),
        concentration=MedFloat(Decimal("0.000055")),  # kg/L: 5.5 mg/dL
        type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )
    clock = ClockObservation(stamp + dt.timedelta(seconds=40), stamp, 40.0)
    events = [
        MeasurementEvent(
            "dev",
            PLX_CONTINUOUS_MEASUREMENT,
            plx_raw,
            decode(PLX_CONTINUOUS_MEASUREMENT, plx_raw),
            None,
            NOW_MS,
            1,
        ),
        MeasurementEvent(
            "dev",
            HEART_RATE_MEASUREMENT,
            hr_raw,
            decode(HEART_RATE_MEASUREMENT, hr_raw),
            None,
            NOW_MS,
            3,
        ),
        MeasurementEvent(
            "dev",
            GLUCOSE_MEASUREMENT,
            encode(glucose),
            glucose,
            None,
            NOW_MS,
            4,
            device_time=stamp,
            clock=clock,
            sequence_number=7,
        ),
    ]
    plx, hr, (gl,) = (readings_from_event(e) for e in events)
    for readings in (plx, hr, [gl]):
        _complete(readings)
    assert [(r.stream, r.unit, r.value, r.continuous) for r in plx] == [
        ("dev/150456", "%", Decimal(97), True),
        ("dev/149530", "/min", Decimal(60), True),
    ]
    assert [r.value for r in hr] == [Decimal(72), Decimal("585.9375"), Decimal("595.703125")]
    assert (gl.device_time, gl.clock_offset_ms) == (stamp, 40_000)
    assert gl.source_key is not None
    assert gl.source_key.startswith("ble-seq/dev/7/")
    assert "device-clock-offset-s:40" in gl.flags
    assert not gl.continuous


def test_an_event_whose_mapping_fails_costs_only_itself(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect in the map step for one event must not lose its batch (docs/pipeline.md)."""
    address = "C4:7F:51:0A:9B:3E"
    raw = bytes([0]) + struct.pack("<HH", 97, 62)
    good = MeasurementEvent(
        address,
        PLX_CONTINUOUS_MEASUREMENT,
        raw,
        decode(PLX_CONTINUOUS_MEASUREMENT, raw),
        None,
        NOW_MS,
        1,
    )
    poison = dataclasses.replace(good, hub_mono_ns=2)

    def defective(event: MeasurementEvent) -> list[Reading]:
        if event is poison:  # fault injection at the map step's seam: a defect for one event
            raise ZeroDivisionError
        return readings_from_event(event)

    monkeypatch.setattr(pipeline_module, "readings_from_event", defective)
    pipeline = Pipeline(AsyncOutbox.__new__(AsyncOutbox))  # the map step only
    with caplog.at_level(logging.ERROR, logger="gateway.pipeline"):
        readings = pipeline.from_events([good, poison, good])
    assert [r.value for r in readings] == [Decimal(97), Decimal(62)] * 2
    assert pipeline.unmappable_events == 1
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert f"{PLX_CONTINUOUS_MEASUREMENT:#06x}" in caplog.text
    assert address not in caplog.text
