"""The pipeline stages: validation flags, threshold alerts, dedup keys, opt-in reduction."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

from hub_records import reading as hub_reading

from drivers.ble import MeasurementEvent
from gateway.aggregate import FLAG_AGGREGATE, Reducer, ReductionRule, deadband_keeps
from gateway.dedup import is_time_key, reading_key, record_key
from gateway.pipeline import Pipeline, PipelineSettings, readings_from_event
from gateway.reading import Reading
from gateway.thresholds import FLAG_ABOVE, FLAG_BELOW, Threshold, apply_thresholds, threshold_table
from gateway.validate import (
    FLAG_DEVICE_TIME,
    FLAG_HUB_CLOCK,
    FLAG_IMPLAUSIBLE,
    FLAG_NO_VALUE,
    FLAG_UNKNOWN_SPECIAL,
    validate,
)
from protocols.gatt import PLX_CONTINUOUS_MEASUREMENT, decode
from protocols.uplink import Priority

NOW_MS = 1_763_800_000_000  # 2025-11-22


def _r(
    mdc: int = 150456,
    unit: str = "%",
    value: str | None = "97",
    *,
    special: str | None = None,
    t_ms: int = NOW_MS,
    priority: Priority = Priority.CLINICAL,
    device_time: dt.datetime | None = None,
    stream: str | None = None,
) -> Reading:
    return hub_reading(
        0,
        mdc,
        None if value is None else Decimal(value),
        unit=unit,
        stream=stream or f"dev/{mdc}",
        special=special,
        hub_wall_ms=t_ms,
        device_time=device_time,
        priority=priority,
    )


def test_implausible_clinical_values_are_flagged_never_changed() -> None:
    cases = [
        (150456, "%", "49", True),  # SpO2 below 50 %
        (150456, "%", "100", False),
        (150021, "mm[Hg]", "301", True),
        (150021, "kPa", "16.0", False),
        (150364, "Cel", "24.9", True),
        (150364, "[degF]", "98.6", False),
        (188736, "kg", "0.5", True),
        (160188, "mg/dL", "601", True),
        (160188, "mmol/L", "5.5", False),
        (147240, "ms", "585.9375", False),
        (999999, "x", "123456", False),  # unknown code: no opinion
    ]
    for mdc, unit, value, implausible in cases:
        reading = _r(mdc, unit, value)
        checked = validate(reading)
        assert (FLAG_IMPLAUSIBLE in checked.flags) is implausible, (mdc, unit, value)
        assert checked.value == reading.value
        assert str(checked.value) == value  # exactly as measured, precision kept
        assert checked.priority is reading.priority


def test_special_and_missing_values_and_clocks_are_flagged() -> None:
    assert validate(_r(value=None, special="nan")).flags == frozenset()
    assert FLAG_UNKNOWN_SPECIAL in validate(_r(value=None, special="weird")).flags
    assert FLAG_NO_VALUE in validate(_r(value=None)).flags
    assert FLAG_HUB_CLOCK in validate(_r(t_ms=1_000)).flags  # a Pi without RTC at 1970
    hub_local = dt.datetime.fromtimestamp(NOW_MS / 1000)
    future = validate(_r(device_time=hub_local + dt.timedelta(hours=3))).flags
    reset = validate(_r(device_time=dt.datetime(1999, 12, 31))).flags
    old_record = validate(_r(device_time=hub_local - dt.timedelta(days=40))).flags
    assert FLAG_DEVICE_TIME in future
    assert FLAG_DEVICE_TIME in reset
    assert old_record == frozenset()  # stored records may be old


def test_a_clean_reading_passes_validation_as_the_same_object() -> None:
    reading = _r()
    assert validate(reading) is reading


def test_thresholds_make_an_alert_and_keep_the_value() -> None:
    table = threshold_table(
        [Threshold(150456, "%", below=Decimal(90)), Threshold(150021, "mm[Hg]", above=Decimal(180))]
    )
    low = apply_thresholds(_r(value="88"), table)
    assert (low.priority, low.value, FLAG_BELOW in low.flags) == (
        Priority.ALERT,
        Decimal(88),
        True,
    )
    high = apply_thresholds(_r(150021, "mm[Hg]", "181"), table)
    assert high.priority is Priority.ALERT
    assert FLAG_ABOVE in high.flags
    fine = _r(value="90")
    assert apply_thresholds(fine, table) is fine  # not below 90
    other_unit = _r(150021, "kPa", "30")
    assert apply_thresholds(other_unit, table) is other_unit  # no conversion, no guess
    special = _r(value=None, special="nan")
    assert apply_thresholds(special, table) is special


def test_dedup_keys_identify_device_records_only() -> None:
    t = dt.datetime(2025, 11, 22, 8, 30)
    by_seq = record_key("dev", 160188, Decimal(111), sequence_number=7, device_time=t)
    by_time = record_key("dev", 150021, Decimal(128), sequence_number=None, device_time=t)
    assert by_seq is not None
    assert not is_time_key(by_seq)
    assert is_time_key(by_time)
    assert by_time != record_key("dev", 150021, Decimal(129), sequence_number=None, device_time=t)
    assert record_key("dev", 150456, Decimal(97), sequence_number=None, device_time=None) is None
    assert reading_key(_r(device_time=t), sequence_number=None) is not None


def test_a_reset_device_clock_does_not_make_a_dedup_key() -> None:
    """Two different measurements stamped 1999 by a reset clock must both be kept."""
    pipeline = Pipeline(outbox=None, settings=PipelineSettings())  # type: ignore[arg-type]
    reset = dt.datetime(1999, 1, 1)
    reading = _r(150021, "mm[Hg]", "120", device_time=reset)._replace(
        source_key=record_key("dev", 150021, Decimal(120), sequence_number=None, device_time=reset),
    )
    (out,) = pipeline.process([reading])
    assert FLAG_DEVICE_TIME in out.flags
    assert out.source_key is None


def _plx_event(i: int) -> MeasurementEvent:
    raw = bytes([0]) + struct.pack("<HH", 97, 60)
    measurement = decode(PLX_CONTINUOUS_MEASUREMENT, raw)
    return MeasurementEvent(
        "C4:7F:51:0A:9B:3E", PLX_CONTINUOUS_MEASUREMENT, raw, measurement, None, NOW_MS + i, i
    )


def test_continuous_events_become_continuous_clinical_readings_without_keys() -> None:
    readings = readings_from_event(_plx_event(0))
    assert [r.mdc_code for r in readings] == [150456, 149530]
    assert all(r.continuous and r.source_key is None for r in readings)
    assert all(r.priority is Priority.CLINICAL for r in readings)


def test_reduction_never_touches_clinical_readings() -> None:
    reducer = Reducer(
        [ReductionRule(150456, deadband=Decimal(5)), ReductionRule(150021, window_s=60)]
    )
    clinical = [_r(value="97", t_ms=NOW_MS + i) for i in range(5)]
    bp = [_r(150021, "mm[Hg]", str(120 + i), t_ms=NOW_MS + i * 1000) for i in range(3)]
    assert reducer.process(clinical + bp) == clinical + bp


def test_deadband_with_heartbeat_for_environmental_readings() -> None:
    code = 2 * 65536 + 0xF001
    reducer = Reducer([ReductionRule(code, deadband=Decimal("0.5"), heartbeat_s=600)])
    values = ["21.0", "21.2", "21.4", "21.6", "21.6", "21.6"]
    times = [0, 60, 120, 180, 240, 900]
    readings = [
        _r(code, "Cel", v, t_ms=NOW_MS + t * 1000, priority=Priority.ENVIRONMENTAL)
        for v, t in zip(values, times, strict=True)
    ]
    kept = reducer.process(readings)
    # 21.6 moved 0.6 from 21.0; the last one is the heartbeat (600 s after 180 s).
    assert [str(r.value) for r in kept] == ["21.0", "21.6", "21.6"]
    assert deadband_keeps(None, readings[0], deadband=Decimal(1), heartbeat_ms=1)


def test_window_aggregates_are_exact() -> None:
    code = 2 * 65536 + 0xF002
    reducer = Reducer([ReductionRule(code, window_s=300)])
    start = NOW_MS // 300_000 * 300_000
    values = ["40.1", "40.2", "40.4"]
    readings = [
        _r(code, "%", v, t_ms=start + i * 60_000, priority=Priority.ENVIRONMENTAL)
        for i, v in enumerate(values)
    ]
    assert reducer.process(readings) == []  # the window is still open
    nxt = _r(code, "%", "41", t_ms=start + 300_000, priority=Priority.ENVIRONMENTAL)
    out = reducer.process([nxt])
    by_name = {r.stream.rsplit("/", 1)[1]: r for r in out}
    assert str(by_name["min"].value) == "40.1"
    assert str(by_name["max"].value) == "40.4"
    assert str(by_name["mean"].value) == "40.23"  # 120.7 / 3 = 40.2333..., one more digit
    assert by_name["count"].value == 3
    assert by_name["count"].unit == "{readings}"
    assert all(FLAG_AGGREGATE in r.flags and r.effective_ms() == start for r in out)
    assert all(r.source_key is None for r in out)
    (left,) = {r.value for r in reducer.flush() if r.stream.endswith("/count")}
    assert left == 1
