"""A real Beurer BM85's Blood Pressure Measurements (drivers/ble/sim/quirky.py BM85_CAPTURES,
recorded from a BM85 and published with their decoded values in
derdilla/blood-pressure-monitor-fl, ``ble_measurement_data_test.dart``): refused by the strict
GSS 3.31 decoder, exact after the beurer-bpm quirk (protocols/gatt/quirks.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from drivers.ble.sim.quirky import BM85_CAPTURES
from protocols.gatt import BLOOD_PRESSURE_MEASUREMENT, BloodPressureMeasurement, decode
from protocols.gatt.quirks import correct_beurer_bpm

#: (systolic, diastolic, pulse, user, time, irregular pulse) as the source's tests expect.
EXPECTED = (
    (106, 71, 63, 0, dt.datetime(2026, 8, 11, 18, 31), False),
    (113, 73, 65, 1, dt.datetime(2026, 8, 11, 20, 56), False),
    (119, 70, 87, 1, dt.datetime(2026, 8, 11, 20, 57), False),
    (118, 80, 60, 0, dt.datetime(2026, 8, 11, 20, 27), True),
)


@pytest.mark.parametrize(("captured", "expected"), list(zip(BM85_CAPTURES, EXPECTED, strict=True)))
def test_a_recorded_bm85_measurement_is_exact_after_the_quirk(
    captured: bytes, expected: tuple[int, int, int, int, dt.datetime, bool]
) -> None:
    systolic, diastolic, pulse, user, taken, irregular = expected
    assert captured[0] == 0x56
    with pytest.raises(ValueError, match="0x2A35"):
        decode(BLOOD_PRESSURE_MEASUREMENT, captured)
    m = decode(BLOOD_PRESSURE_MEASUREMENT, correct_beurer_bpm(captured))
    assert isinstance(m, BloodPressureMeasurement)
    assert (m.systolic.value, m.diastolic.value) == (Decimal(systolic), Decimal(diastolic))
    assert m.pulse_rate_bpm is not None
    assert m.pulse_rate_bpm.value == Decimal(pulse)
    assert m.user_id == user
    assert m.time_stamp is not None
    assert m.time_stamp.to_datetime() == taken
    assert m.measurement_status is not None
    assert bool(m.measurement_status.raw & 0x0004) is irregular  # bit 2: irregular pulse
