"""What the hub ships about a device beside its measurements (docs/pipeline.md, "Device
facts"): Device Information strings as readings, the session's clock read as flags, and a
compound measurement's components at one priority."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble import ClockObservation, MeasurementEvent
from gateway.outbox import AsyncOutbox, Outbox
from gateway.pipeline import Pipeline, PipelineSettings, readings_from_event
from gateway.thresholds import Threshold
from gateway.validate import FLAG_UNKNOWN_SPECIAL, validate
from protocols import gatt
from protocols.uplink import BatchHeader, Priority, encode_body
from protocols.uplink.body import decode_body
from protocols.uplink.device_facts import (
    FLAG_DEVICE_INFO,
    MDC_ID_MODEL_MANUFACTURER,
    MDC_ID_PROD_SPEC_FW,
    clock_read,
    is_device_info,
)

CUFF = "C0:FF:EE:00:0D:02"
T_MS = 1_795_000_000_000
#: BLS 1.1 3.1: time stamp and pulse present, 185/95/125 mmHg, 2026-11-22 08:30:00, pulse 70.
BP = bytes([0x06, 0xB9, 0, 0x5F, 0, 0x7D, 0, 0xEA, 0x07, 11, 22, 8, 30, 0, 0x46, 0])


def _event(
    characteristic: int, raw: bytes, clock: ClockObservation | None = None
) -> MeasurementEvent:
    measurement = gatt.decode(characteristic, raw)
    stamp = getattr(getattr(measurement, "time_stamp", None), "to_datetime", None)
    device_time = stamp() if stamp else None
    return MeasurementEvent(
        CUFF, characteristic, raw, measurement, None, T_MS, 7, device_time=device_time, clock=clock
    )


@pytest.mark.parametrize(
    ("characteristic", "code", "text"),
    [
        (0x2A29, MDC_ID_MODEL_MANUFACTURER, "A&D Medical"),
        (0x2A26, MDC_ID_PROD_SPEC_FW, "BLP008_d017"),
    ],
)
def test_a_device_information_string_is_one_device_information_reading(
    characteristic: int, code: int, text: str
) -> None:
    (reading,) = readings_from_event(_event(characteristic, text.encode()))
    assert (reading.mdc_code, reading.special, reading.value) == (code, text, None)
    assert reading.flags == {FLAG_DEVICE_INFO}
    assert reading.priority == Priority.CLINICAL  # travels with the session's measurements
    # Its text is no unknown special value.
    assert FLAG_UNKNOWN_SPECIAL not in validate(reading).flags
    assert is_device_info(reading.to_wire())


def test_an_empty_device_information_string_says_nothing() -> None:
    assert readings_from_event(_event(0x2A24, b"\x00\x00")) == []


@given(st.text(min_size=1, max_size=64).filter(lambda t: "\x00" not in t))
def test_device_information_text_survives_a_batch(text: str) -> None:
    (reading,) = readings_from_event(_event(0x2A29, text.encode()))
    header = BatchHeader("hub-a", "boot", 1, T_MS, Priority.CLINICAL, 1)
    (wire,) = decode_body(encode_body(header, [reading.to_wire()]), "hub-a").readings
    assert wire.special == text
    assert is_device_info(wire)


def test_a_stamped_reading_carries_its_sessions_clock_read() -> None:
    hub_time = dt.datetime(2026, 11, 22, 8, 29, 20)  # naive local, as the session reads it
    clock = ClockObservation(dt.datetime(2026, 11, 22, 8, 30), hub_time, 40.0)
    readings = readings_from_event(_event(0x2A35, BP, clock))
    reads = {clock_read(r.flags) for r in readings}
    assert len(reads) == 1
    (read,) = reads
    assert read is not None
    assert read.offset_s == 40
    assert read.read_ms == round(hub_time.timestamp() * 1000)
    # No clock read in the session: no clock flags.
    assert all(clock_read(r.flags) is None for r in readings_from_event(_event(0x2A35, BP)))


async def test_an_alerted_component_takes_its_measurements_other_components_along(
    tmp_path: Path,
) -> None:
    """A systolic threshold alerts the systolic reading; diastolic and mean are the same
    compound Observation at the region, so they leave in the same (alert) batch. The pulse is
    its own Observation and stays clinical."""
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3"))
    try:
        settings = PipelineSettings(thresholds=(Threshold(150021, "mm[Hg]", above=Decimal(180)),))
        pipeline = Pipeline(outbox, settings)
        readings = pipeline.process(pipeline.from_events([_event(0x2A35, BP)]))
    finally:
        outbox.close()
    priorities = {r.mdc_code: r.priority for r in readings}
    assert priorities == {
        150021: Priority.ALERT,
        150022: Priority.ALERT,
        150023: Priority.ALERT,
        149546: Priority.CLINICAL,
    }
    # Only the crossed reading says so.
    assert [r.mdc_code for r in readings if "threshold-above" in r.flags] == [150021]
