"""Blood Pressure Service vectors, value by value, with their sources."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from protocols import gatt as g
from protocols.gatt import observation as obs

# NordicSemiconductor/Android-BLE-Common-Library,
# ble-common/src/test/.../bps/BloodPressureMeasurementDataCallbackTest.java
NORDIC_FULL = bytes.fromhex("1e8a00580078000000041114293b3c00012700")
NORDIC_SOME = bytes([0x15, 0xBD, 0xF0, 0x0B, 0x00, 0x9F, 0xF0, 0x3C, 0x00, 0x12, 0x00])
NORDIC_MINIMAL = bytes([0x00, 0xBD, 0xF0, 0x0B, 0x00, 0x9F, 0xF0])


def test_nordic_full() -> None:
    m = g.decode(0x2A35, NORDIC_FULL)
    assert isinstance(m, g.BloodPressureMeasurement)
    assert str(m.systolic.value) == "138"
    assert str(m.diastolic.value) == "88"
    assert str(m.mean_arterial_pressure.value) == "120"
    assert m.unit is g.PressureUnit.MMHG
    assert m.pulse_rate_bpm is not None
    assert m.pulse_rate_bpm.value == 60
    assert m.user_id == 1
    status = m.measurement_status
    assert status is not None
    assert status.body_movement_detected
    assert status.cuff_too_loose
    assert status.irregular_pulse_detected
    assert status.pulse_rate_range is g.PulseRateRange.WITHIN_RANGE
    assert status.improper_measurement_position
    # Year 0 = "not known" (GSS 3.70): kept as sent, never an absolute timestamp.
    assert m.time_stamp == g.DateTime(0, 4, 17, 20, 41, 59)
    assert m.time_stamp.to_datetime() is None
    assert g.encode(m) == NORDIC_FULL
    observations = g.to_observations(m)
    assert all(o.timestamp is None for o in observations)
    assert all("device-time-unknown" in o.flags for o in observations)


def test_nordic_some_kpa() -> None:
    m = g.decode("2A35", NORDIC_SOME)
    assert isinstance(m, g.BloodPressureMeasurement)
    assert str(m.systolic.value) == "18.9"
    assert str(m.diastolic.value) == "11"
    assert str(m.mean_arterial_pressure.value) == "15.9"
    assert m.unit is g.PressureUnit.KPA
    assert m.pulse_rate_bpm == g.MedFloat.of(60)
    assert m.user_id is None
    assert m.time_stamp is None
    status = m.measurement_status
    assert status is not None
    assert not status.body_movement_detected
    assert status.cuff_too_loose
    assert not status.irregular_pulse_detected
    assert status.pulse_rate_range is g.PulseRateRange.BELOW_LOWER_LIMIT
    assert not status.improper_measurement_position
    assert g.encode(m) == NORDIC_SOME
    units = {o.unit for o in g.to_observations(m)}
    assert units == {"kPa", "/min"}


def test_nordic_minimal_all_uuid_spellings() -> None:
    for spelling in (0x2A35, "2a35", "0x2A35", "00002a35-0000-1000-8000-00805f9b34fb"):
        m = g.decode(spelling, NORDIC_MINIMAL)
        assert isinstance(m, g.BloodPressureMeasurement)
        assert m.pulse_rate_bpm is None
        assert m.measurement_status is None
        assert m.user_id is None


@pytest.mark.parametrize(
    ("data", "offset", "fragment"),
    [
        (
            bytes([1, 2, 3, 4, 5, 6]),
            5,
            "truncated SFLOAT 3",
        ),  # Nordic onInvalidDataReceived_toShort
        (bytes([3, 2, 3, 4, 5, 6, 7]), 7, "truncated Time Stamp"),  # Nordic ..._noTimestamp
        (NORDIC_MINIMAL + b"\x00", 7, "1 trailing bytes"),
        (bytes([0x20]) + NORDIC_MINIMAL[1:], 0, "reserved flag bits"),
        (NORDIC_FULL[:17] + b"\x18\x00", 17, "pulse rate range 3"),
        (NORDIC_FULL[:17] + b"\x40\x00", 17, "reserved Measurement Status"),
        (NORDIC_FULL[:9] + b"\x0d" + NORDIC_FULL[10:], 9, "month 13"),
        (b"", 0, "Flags"),
    ],
)
def test_invalid_values_name_offset_and_reason(data: bytes, offset: int, fragment: str) -> None:
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A35, data)
    assert info.value.characteristic == 0x2A35
    assert info.value.offset == offset
    assert fragment in info.value.reason


def test_biased_exponent_trap() -> None:
    # bluetooth-sig-python decodes 78 80 as 120 mmHg; under 11073-20601 it is 1.20e-6
    # (docs/protocols/phd.md 1.3, vector bpm-biased-exponent-trap).
    m = g.decode(0x2A35, bytes([0x00, 0x78, 0x80, 0x50, 0x00, 0x5A, 0x00]))
    assert isinstance(m, g.BloodPressureMeasurement)
    assert m.systolic.value == Decimal("1.2E-6")
    assert m.diastolic.value == 80


def test_all_nan_failed_reading_becomes_special_observations() -> None:
    # A&D UA-651BLE reports failed readings with every SFLOAT = NaN (docs/protocols/phd.md 2.1);
    # constructed here with the published layout (flags: time stamp + pulse rate).
    # flags 0x06 | sys, dia, MAP = NaN | 2024-05-01 08:30:00 | pulse = NaN
    data = bytes.fromhex("06" + "ff07" * 3 + "e8070501081e00" + "ff07")
    m = g.decode(0x2A35, data)
    assert isinstance(m, g.BloodPressureMeasurement)
    assert m.systolic.special is g.Special.NAN
    observations = g.to_observations(m)
    assert [o.special for o in observations] == ["nan"] * 4
    assert all(o.value is None for o in observations)
    assert observations[0].timestamp == dt.datetime(2024, 5, 1, 8, 30, 0)


def test_observations_codes_units_and_flags() -> None:
    m = g.BloodPressureMeasurement(
        systolic=g.MedFloat.of("128"),
        diastolic=g.MedFloat.of("82"),
        mean_arterial_pressure=g.MedFloat.of("97"),
        time_stamp=g.DateTime(2025, 3, 4, 7, 15, 0),
        pulse_rate_bpm=g.MedFloat.of("71"),
        user_id=2,
        measurement_status=g.BloodPressureMeasurementStatus.of(
            irregular_pulse_detected=True,
            pulse_rate_range=g.PulseRateRange.EXCEEDS_UPPER_LIMIT,
        ),
    )
    by_code = {o.mdc_code: o for o in g.to_observations(m)}
    assert set(by_code) == {150021, 150022, 150023, 149546}
    assert by_code[150021].loinc == "8480-6"
    assert by_code[150022].loinc == "8462-4"
    assert by_code[150023].loinc is None
    assert by_code[149546].loinc == "8867-4"
    assert by_code[149546].unit == "/min"
    assert by_code[150021].unit == "mm[Hg]"
    assert by_code[150021].value == 128
    assert by_code[150021].user_id == 2
    assert by_code[150021].timestamp == dt.datetime(2025, 3, 4, 7, 15)
    assert {"irregular-pulse-detected", "pulse-rate-exceeds-upper-limit"} <= by_code[149546].flags
    assert "component-of:150020" in by_code[150022].flags
    assert "component-of:150020" not in by_code[149546].flags
    assert obs.MDC_TABLE[obs.MDC_PRESS_BLD_NONINV][1] == "85354-9"


def test_zero_mean_arterial_pressure_is_not_provided() -> None:
    # Beurer BM85 sends MAP = 0 in the mandatory field (docs/protocols/phd.md 2.1).
    m = g.BloodPressureMeasurement(g.MedFloat.of(120), g.MedFloat.of(80), g.MedFloat.of(0))
    assert [o.mdc_code for o in g.to_observations(m)] == [150021, 150022]


def test_intermediate_cuff_pressure_nordic_zeroes_and_display_only() -> None:
    # Nordic's ICP test data puts 0x0000 where the GSS asks for NaN; both are accepted and kept.
    data = bytes([0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00])
    m = g.decode(0x2A36, data)
    assert isinstance(m, g.IntermediateCuffPressure)
    assert m.current_cuff_pressure.value == 100
    assert m.unused_diastolic.value == 0
    assert g.encode(m) == data
    assert g.to_observations(m) == []
    default = g.IntermediateCuffPressure(g.MedFloat.of(56))
    assert g.encode(default)[3:7] == bytes.fromhex("ff07ff07")


def test_blood_pressure_feature_spezi_all_nine_bits() -> None:
    # SpeziBluetooth BloodPressureTests.testBloodPressureFeature: all nine features = 0x01FF.
    m = g.decode(0x2A49, bytes([0xFF, 0x01]))
    assert isinstance(m, g.BloodPressureFeature)
    assert m.features == 0x01FF
    assert g.BloodPressureFeatureBits.USER_FACING_TIME in m.features
    assert g.BloodPressureFeatureBits.E2E_CRC in m.features
    with pytest.raises(g.DecodeError):
        g.decode(0x2A49, bytes([0xFF, 0x03]))
