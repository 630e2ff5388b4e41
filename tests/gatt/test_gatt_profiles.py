"""Vectors for thermometer, scale, pulse oximeter, glucose, heart rate, time and device
characteristics, value by value, each with its source."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from protocols import gatt as g
from protocols.gatt import weight as ws

# --- Health Thermometer -------------------------------------------------------------------


def test_temperature_nordic() -> None:
    # Nordic Android-BLE-Common-Library ht/TemperatureMeasurementDataCallbackTest.
    data = bytes([0x06, 0xB0, 0x0E, 0x00, 0xFE, 0xDC, 0x07, 0x0C, 0x05, 0x0B, 0x32, 0x1B, 0x04])
    m = g.decode(0x2A1C, data)
    assert isinstance(m, g.TemperatureMeasurement)
    assert str(m.temperature.value) == "37.60"
    assert m.unit is g.TemperatureUnit.CELSIUS
    assert m.time_stamp == g.DateTime(2012, 12, 5, 11, 50, 27)
    assert m.temperature_type is g.TemperatureType.FINGER
    assert g.encode(m) == data
    (o,) = g.to_observations(m)
    assert o.mdc_code == 188432  # MDC_TEMP_FINGER
    assert o.loinc == "8310-5"
    assert o.unit == "Cel"
    assert o.body_site == "finger"
    assert o.timestamp == dt.datetime(2012, 12, 5, 11, 50, 27)
    # Nordic onInvalidDataReceived: the type byte is missing.
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A1C, data[:-1])
    assert info.value.offset == 12


def test_intermediate_temperature_is_display_only() -> None:
    m = g.decode(0x2A1E, bytes([0x01, 0x6C, 0x03, 0x00, 0xFF]))
    assert isinstance(m, g.TemperatureMeasurement)
    assert m.intermediate
    assert m.unit is g.TemperatureUnit.FAHRENHEIT
    assert str(m.temperature.value) == "87.6"
    assert g.to_observations(m) == []


def test_temperature_type_characteristic() -> None:
    # Temperature Type 0x2A1D (GSS 3.218): 6 = mouth; 0 and 10 are reserved.
    assert g.decode(0x2A1D, b"\x06") == g.TemperatureTypeValue(g.TemperatureType.MOUTH)
    for reserved in (b"\x00", b"\x0a"):
        with pytest.raises(g.DecodeError):
            g.decode(0x2A1D, reserved)


def test_thermometer_simulator_api_still_works() -> None:
    # drivers/ble/sim/thermometer.py builds its indications this way.
    m = g.TemperatureMeasurement(g.MedFloat.of("37.2"), temperature_type=g.TemperatureType.MOUTH)
    assert g.encode(m) == bytes.fromhex("04740100ff06")
    (o,) = g.to_observations(m)
    assert (o.mdc_code, o.loinc) == (188424, "8331-1")


# --- Weight Scale ----------------------------------------------------------------------------


def test_weight_lsb_is_fixed_and_not_the_feature_resolution() -> None:
    # docs/protocols/phd.md 2.3: a real A&D UC-352BLE (0.1 kg resolution) sends 13140 -> 65.70 kg.
    m = g.decode(0x2A9D, bytes([0x00, 0x54, 0x33]))
    assert isinstance(m, g.WeightMeasurement)
    assert m.weight == Decimal("65.70")
    assert m.weight != Decimal("131.4")  # SpeziBluetooth's resolution-scaled reading
    (o,) = g.to_observations(m)
    assert (o.mdc_code, o.loinc, o.unit, o.value) == (188736, "29463-7", "kg", Decimal("65.7"))


def test_weight_spezi_lsb_values() -> None:
    # SpeziBluetooth WeightScaleTests: raw 120 -> 0.6 kg (SI) and 1.2 lb (imperial) at the
    # wire LSB; height 1700 -> 1.7 m and 60 -> 6 in.
    si = g.decode(0x2A9D, bytes([0x08, 120, 0, 230, 0]) + (1700).to_bytes(2, "little"))
    assert isinstance(si, g.WeightMeasurement)
    assert (si.weight, si.bmi_kg_m2, si.height) == (Decimal("0.6"), Decimal("23.0"), Decimal("1.7"))
    imperial = g.decode(0x2A9D, bytes([0x09, 120, 0, 230, 0, 60, 0]))
    assert isinstance(imperial, g.WeightMeasurement)
    assert (imperial.weight, imperial.height) == (Decimal("1.2"), Decimal(6))
    by_code = {o.mdc_code: o for o in g.to_observations(si)}
    assert (by_code[188740].value, by_code[188740].unit) == (Decimal("170.0"), "cm")
    assert (by_code[188752].unit, by_code[188752].loinc) == ("kg/m2", "39156-5")
    assert {o.unit for o in g.to_observations(imperial)} == {"[lb_av]", "[in_i]", "kg/m2"}


def test_weight_measurement_unsuccessful() -> None:
    # GSS 3.252: 0xFFFF = "Measurement Unsuccessful"; BMI/height must then be absent.
    m = g.decode(0x2A9D, bytes([0x04, 0xFF, 0xFF, 0x03]))
    assert isinstance(m, g.WeightMeasurement)
    assert m.weight is None
    assert m.user_id == 3
    (o,) = g.to_observations(m)
    assert (o.value, o.special) == (None, "nan")
    assert "measurement-unsuccessful" in o.flags
    with pytest.raises(g.DecodeError):
        g.decode(0x2A9D, bytes([0x08, 0xFF, 0xFF, 0, 0, 0, 0]))


def test_weight_scale_feature() -> None:
    # SpeziBluetooth testWeightScaleFeatureStrings: rawValue 0x07 = time stamp, users, BMI.
    m = g.decode(0x2A9E, bytes([0x07, 0, 0, 0]))
    assert m == g.WeightScaleFeature(True, True, True)
    # weight resolution 3 (0.1 kg / 0.2 lb), height resolution 3 (1 mm / 0.1 in)
    raw = (3 << 3 | 3 << 7).to_bytes(4, "little")
    f = g.decode(0x2A9E, raw)
    assert isinstance(f, g.WeightScaleFeature)
    assert f.weight_resolution_value(g.WeightUnitSystem.SI) == Decimal("0.1")
    assert f.weight_resolution_value(g.WeightUnitSystem.IMPERIAL) == Decimal("0.2")
    assert f.height_resolution_value(g.WeightUnitSystem.SI) == Decimal("0.001")
    for bad in ((8 << 3), (4 << 7), (1 << 10)):
        with pytest.raises(g.DecodeError):
            g.decode(0x2A9E, bad.to_bytes(4, "little"))
    assert ws.MEASUREMENT_UNSUCCESSFUL == 0xFFFF


# --- Pulse oximeter (StanfordSpezi/SpeziBluetooth PLXTests.swift) ----------------------------


def test_plx_continuous_very_simple() -> None:
    m = g.decode(0x2A5F, bytes([0, 232, 243, 132, 243]))
    assert isinstance(m, g.PlxContinuousMeasurement)
    assert str(m.spo2_percent.value) == "100.0"
    assert str(m.pulse_rate_bpm.value) == "90.0"
    plain = g.decode(0x2A5F, bytes([0, 100, 0, 90, 0]))
    assert plain == m  # equal values, different precision on the wire
    assert g.encode(plain) != g.encode(m)


def test_plx_continuous_simple() -> None:
    data = bytes([28, 95, 0, 90, 0, 32, 0, 0, 0, 0, 87, 240])
    m = g.decode(0x2A5F, data)
    assert isinstance(m, g.PlxContinuousMeasurement)
    assert m.spo2_percent.value == 95
    assert m.pulse_rate_bpm.value == 90
    assert m.measurement_status == g.PlxMeasurementStatus.MEASUREMENT_ONGOING
    assert m.device_and_sensor_status == g.PlxDeviceAndSensorStatus(0)
    assert m.pulse_amplitude_index_percent is not None
    assert str(m.pulse_amplitude_index_percent.value) == "8.7"
    assert g.encode(m) == data


def test_plx_continuous_full() -> None:
    data = bytes(
        [31, 222, 243, 202, 243, 202, 243, 90, 245, 212, 243, 178, 242, 32, 1, 0, 0, 0, 122, 227]
    )
    m = g.decode(0x2A5F, data)
    assert isinstance(m, g.PlxContinuousMeasurement)
    values = [
        m.spo2_percent,
        m.pulse_rate_bpm,
        m.spo2_fast_percent,
        m.pulse_rate_fast_bpm,
        m.spo2_slow_percent,
        m.pulse_rate_slow_bpm,
        m.pulse_amplitude_index_percent,
    ]
    assert [str(v.value) for v in values if v] == [
        "99.0",
        "97.0",
        "97.0",
        "137.0",
        "98.0",
        "69.0",
        "8.90",
    ]
    assert m.measurement_status == (
        g.PlxMeasurementStatus.MEASUREMENT_ONGOING | g.PlxMeasurementStatus.FULLY_QUALIFIED_DATA
    )
    assert g.encode(m) == data
    modalities = [o.modality for o in g.to_observations(m)]
    assert modalities == [None, None, 150580, 150580, 150584, 150584, None]


def test_plx_spot_check() -> None:
    data = bytes([15, 172, 243, 190, 245, 232, 7, 11, 29, 23, 8, 57, 32, 64, 34, 0, 0, 102, 227])
    m = g.decode(0x2A5E, data)
    assert isinstance(m, g.PlxSpotCheckMeasurement)
    assert str(m.spo2_percent.value) == "94.0"
    assert str(m.pulse_rate_bpm.value) == "147.0"
    assert m.time_stamp == g.DateTime(2024, 11, 29, 23, 8, 57)
    assert m.measurement_status == (
        g.PlxMeasurementStatus.MEASUREMENT_ONGOING
        | g.PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED
    )
    assert m.device_and_sensor_status == (
        g.PlxDeviceAndSensorStatus.EQUIPMENT_MALFUNCTION_DETECTED
        | g.PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
    )
    assert m.pulse_amplitude_index_percent is not None
    assert str(m.pulse_amplitude_index_percent.value) == "8.70"
    assert not m.device_clock_not_set
    assert g.encode(m) == data
    spo2 = g.to_observations(m)[0]
    assert (spo2.mdc_code, spo2.loinc, spo2.unit, spo2.modality) == (150456, "2708-6", "%", 150588)
    assert {"questionable-measurement-detected", "low-perfusion-detected"} <= spo2.flags


def test_plx_features() -> None:
    data = bytes([163, 0, 64, 16, 128, 1, 0])
    m = g.decode(0x2A60, data)
    assert isinstance(m, g.PlxFeatures)
    assert m.supported_features == (
        g.PlxSupportedFeatures.MEASUREMENT_STATUS
        | g.PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS
        | g.PlxSupportedFeatures.SPO2PR_SLOW
        | g.PlxSupportedFeatures.MULTIPLE_BONDS
    )
    assert m.measurement_status_support == (
        g.PlxMeasurementStatus.CALIBRATION_ONGOING | g.PlxMeasurementStatus.EARLY_ESTIMATED_DATA
    )
    assert m.device_and_sensor_status_support == (
        g.PlxDeviceAndSensorStatus.NONPULSATILE_SIGNAL_DETECTED
        | g.PlxDeviceAndSensorStatus.QUESTIONABLE_PULSE_DETECTED
    )
    assert g.encode(m) == data


def test_plx_reserved_status_bits_are_rejected() -> None:
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A5F, bytes([0x04, 95, 0, 90, 0, 0x01, 0x00]))
    assert info.value.offset == 5


# --- Glucose (Nordic GlucoseMeasurementDataCallbackTest and friends) -------------------------

NORDIC_GLUCOSE = bytes(
    [0x1B, 1, 0, 0xE3, 0x07, 2, 27, 11, 10, 30, 0xFB, 0xFF, 30, 0, 0x12, 0b101, 0b1]
)


def test_glucose_nordic() -> None:
    m = g.decode(0x2A18, NORDIC_GLUCOSE)
    assert isinstance(m, g.GlucoseMeasurement)
    assert m.sequence_number == 1
    assert m.base_time == g.DateTime(2019, 2, 27, 11, 10, 30)
    assert m.time_offset_min == -5
    assert m.user_facing_time == dt.datetime(2019, 2, 27, 11, 5, 30)
    assert m.concentration == g.MedFloat.of(30)
    assert m.concentration_unit is g.GlucoseConcentrationUnit.KG_PER_L
    assert m.type is g.GlucoseType.CAPILLARY_PLASMA  # low nibble of 0x12
    assert m.sample_location is g.SampleLocation.FINGER  # high nibble
    # 0x0105: battery low, *sample size insufficient* (Nordic's comment says "Device Fault";
    # docs/protocols/phd.md 6.3), temperature too low.
    assert m.sensor_status_annunciation == (
        g.GlucoseSensorStatus.DEVICE_BATTERY_LOW
        | g.GlucoseSensorStatus.SAMPLE_SIZE_INSUFFICIENT
        | g.GlucoseSensorStatus.TEMPERATURE_TOO_LOW
    )
    assert g.GlucoseSensorStatus.GENERAL_DEVICE_FAULT not in m.sensor_status_annunciation
    assert m.context_information_follows
    assert g.encode(m) == NORDIC_GLUCOSE


def test_glucose_nordic_invalid_missing_time_offset() -> None:
    data = bytes([0x1B, 0, 0, 0xE2, 0x07, 4, 26, 11, 9, 30, 30, 0, 0x12, 0b101, 0b1])
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A18, data)
    assert "truncated" in info.value.reason


def test_glucose_real_meter_mg_dl_and_mmol_l() -> None:
    # docs/protocols/phd.md 2.5: real meters send 0xB06F = 111e-5 kg/L = 111 mg/dL.
    data = bytes([0x02, 5, 0, 0xE8, 0x07, 6, 1, 7, 30, 0, 0x6F, 0xB0, 0xF1])
    m = g.decode(0x2A18, data)
    assert isinstance(m, g.GlucoseMeasurement)
    (o,) = g.to_observations(m)
    assert (o.mdc_code, o.loinc, o.unit, str(o.value)) == (160184, "41653-7", "mg/dL", "111")
    assert o.body_site == "not-available"
    assert o.sequence_number == 5
    mmol = g.decode(0x2A18, bytes([0x06, 5, 0, 0xE8, 0x07, 6, 1, 7, 30, 0, 0x37, 0xC0, 0x11]))
    (o,) = g.to_observations(mmol)  # type: ignore[arg-type]
    assert (o.unit, o.loinc, str(o.value)) == ("mmol/L", "14743-9", "5.5")


def test_glucose_control_solution_is_flagged() -> None:
    data = bytes([0x02, 9, 0, 0xE8, 0x07, 6, 1, 7, 30, 0, 0x6F, 0xB0, 0x4A])
    m = g.decode(0x2A18, data)
    assert isinstance(m, g.GlucoseMeasurement)
    assert m.is_control_solution
    (o,) = g.to_observations(m)
    assert (o.mdc_code, o.loinc) == (160208, None)
    assert "control-solution" in o.flags


def test_glucose_context_nordic_fields() -> None:
    # Field values of Nordic GlucoseMeasurementContextDataCallbackTest ..._full, with Extended
    # Flags 0 and hand-built SFLOATs (100 kg carbohydrate, 123.4 L medication, HbA1c 34.5 %).
    data = bytes([0xFF, 0, 0, 0x00, 3, 0x64, 0x00, 4, 0x12, 60, 0, 50, 4, 0xD2, 0xF4, 0x59, 0xF1])
    m = g.decode(0x2A34, data)
    assert isinstance(m, g.GlucoseMeasurementContext)
    assert m.carbohydrate_id is g.CarbohydrateId.DINNER
    assert m.carbohydrate_kg == g.MedFloat.of(100)
    assert m.meal is g.Meal.CASUAL
    assert m.tester is g.Tester.HEALTH_CARE_PROFESSIONAL
    assert m.health is g.Health.MINOR_HEALTH_ISSUES
    assert (m.exercise_duration_s, m.exercise_intensity_percent) == (60, 50)
    assert m.medication_id is g.MedicationId.LONG_ACTING_INSULIN
    assert m.medication == g.MedFloat.of("123.4")
    assert m.medication_unit is g.MedicationUnit.LITERS
    assert m.hba1c_percent == g.MedFloat.of("34.5")
    assert g.encode(m) == data
    by_code = {o.mdc_code: o for o in g.to_observations(m)}
    assert by_code[160220].unit == "%"
    assert by_code[160220].loinc == "4548-4"
    assert by_code[8417864].coded_value == 8417880  # MDC_CTXT_GLU_MEAL_CASUAL
    assert by_code[8417884].coded_value == 8417892  # MDC_CTXT_GLU_TESTER_HCP


def test_glucose_context_strictness_versus_nordic() -> None:
    # Nordic ignores Extended Flags 0xB3 and a 17-byte buffer holding a 3-byte value; strict
    # decoding rejects both (reserved bits, trailing bytes).
    full = bytes([0xFF, 0, 0, 0xB3, 3, 0x64, 0x00, 4, 0x12, 60, 0, 50, 4, 0xD2, 0xF4, 0x59, 0xF1])
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A34, full)
    assert info.value.offset == 3
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A34, bytes([0x00, 1, 0]) + bytes(14))
    assert info.value.offset == 3
    assert g.decode(0x2A34, bytes([0x00, 1, 0])) == g.GlucoseMeasurementContext(1)


def test_glucose_feature_nordic() -> None:
    m = g.decode(0x2A51, bytes([0b11110000, 0b00000011]))
    assert isinstance(m, g.GlucoseFeature)
    present = {bit for bit in g.GlucoseFeatureBits if bit in m.features}
    assert present == {
        g.GlucoseFeatureBits.SENSOR_STRIP_TYPE_ERROR_DETECTION,
        g.GlucoseFeatureBits.SENSOR_RESULT_HIGH_LOW_DETECTION,
        g.GlucoseFeatureBits.SENSOR_TEMPERATURE_HIGH_LOW_DETECTION,
        g.GlucoseFeatureBits.SENSOR_READ_INTERRUPT_DETECTION,
        g.GlucoseFeatureBits.GENERAL_DEVICE_FAULT,
        g.GlucoseFeatureBits.TIME_FAULT,
    }
    with pytest.raises(g.DecodeError):
        g.decode(0x2A51, b"")  # Nordic onInvalidDataReceived


# --- Heart rate (Nordic hr/HeartRateMeasurementDataCallbackTest) ----------------------------


@pytest.mark.parametrize(
    ("data", "bpm", "contact", "energy", "rr"),
    [
        (bytes([0, 85]), 85, g.SensorContact.NOT_SUPPORTED, None, None),
        (bytes([0x4, 0xFF]), 255, g.SensorContact.NOT_DETECTED, None, None),
        (bytes([0b11110, 85, 50, 0, 33, 0]), 85, g.SensorContact.DETECTED, 50, (33,)),
        (
            bytes([0b11111, 1, 1, 50, 1, 1, 0, 2, 1, 0xFF, 0xFF]),
            257,
            g.SensorContact.DETECTED,
            306,
            (1, 258, 65535),
        ),
    ],
)
def test_heart_rate_nordic(
    data: bytes,
    bpm: int,
    contact: g.SensorContact,
    energy: int | None,
    rr: tuple[int, ...] | None,
) -> None:
    m = g.decode(0x2A37, data)
    assert isinstance(m, g.HeartRateMeasurement)
    assert (m.heart_rate_bpm, m.sensor_contact, m.energy_expended_kj) == (bpm, contact, energy)
    assert m.rr_intervals_1024th_s == rr
    assert g.encode(m) == data


def test_heart_rate_nordic_invalid_and_observations() -> None:
    # Nordic onInvalidDataReceived: RR flag set but no RR-Interval.
    with pytest.raises(g.DecodeError):
        g.decode(0x2A37, bytes([0b10111, 1, 1]))
    m = g.decode(0x2A37, bytes([0x10, 60, 0x00, 0x04]))  # RR 1024/1024 s
    assert isinstance(m, g.HeartRateMeasurement)
    observations = g.to_observations(m)
    assert [(o.mdc_code, o.unit, o.value) for o in observations] == [
        (147842, "/min", Decimal(60)),
        (147240, "ms", Decimal(1000)),
    ]


# --- Time and device characteristics ---------------------------------------------------------


def test_date_time_nordic() -> None:
    # Nordic DateTimeDataCallbackTest: today, date not known, too short, empty.
    m = g.decode(0x2A08, bytes([0xE2, 0x07, 4, 17, 15, 51, 0]))
    assert m == g.DateTime(2018, 4, 17, 15, 51, 0)
    unknown = g.decode(0x2A08, bytes([0, 0, 0, 0, 18, 26, 32]))
    assert isinstance(unknown, g.DateTime)
    assert not unknown.date_known
    assert unknown.to_datetime() is None
    for bad in (bytes([0xE2, 0x07, 4, 17, 15, 51]), b""):
        with pytest.raises(g.DecodeError):
            g.decode(0x2A08, bad)


def test_current_time_cts_write_vector() -> None:
    # docs/protocols/phd.md 2.8; vector cts-write-derived (SpeziBluetooth CurrentTimeTests values):
    # 2024-06-06 12:04:44, Thursday, 128/256 s.
    data = bytes.fromhex("e80706060c042c048000")
    m = g.decode(0x2A2B, data)
    assert isinstance(m, g.CurrentTime)
    assert m.day_date_time.date_time == g.DateTime(2024, 6, 6, 12, 4, 44)
    assert m.day_date_time.day_of_week is g.DayOfWeek.THURSDAY
    assert m.fractions256 == 128
    assert m.to_datetime() == dt.datetime(2024, 6, 6, 12, 4, 44, 500000)
    write = g.CurrentTime.from_datetime(
        dt.datetime(2024, 6, 6, 12, 4, 44, 500000), g.AdjustReason(0)
    )
    assert g.encode(write) == data
    with pytest.raises(g.DecodeError):
        g.decode(0x2A2B, data[:-1] + b"\x10")  # reserved adjust reason bit 4


def test_day_date_time() -> None:
    data = bytes.fromhex("d5070c1b0c1f2802")  # 2005-12-27 12:31:40 Tuesday (Spezi testDayDateTime)
    m = g.decode(0x2A0A, data)
    assert m == g.DayDateTime(g.DateTime(2005, 12, 27, 12, 31, 40), g.DayOfWeek.TUESDAY)
    with pytest.raises(g.DecodeError):
        g.decode(0x2A0A, data[:-1] + b"\x08")


def test_battery_level() -> None:
    assert g.decode(0x2A19, b"\x64") == g.BatteryLevel(100)
    (o,) = g.to_observations(g.BatteryLevel(42))
    assert (o.mdc_code, o.unit, o.value) == (67996, "%", Decimal(42))
    with pytest.raises(g.DecodeError):
        g.decode(0x2A19, b"\x65")


def test_device_information_strings() -> None:
    m = g.decode(0x2A29, b"A&D Medical\x00\x00")
    assert m == g.DeviceInformationString(g.MANUFACTURER_NAME, "A&D Medical")
    assert g.decode("2A24", b"UA-651BLE") == g.DeviceInformationString(g.MODEL_NUMBER, "UA-651BLE")
    with pytest.raises(g.DecodeError) as info:
        g.decode(0x2A26, b"BLP\xff008")
    assert info.value.offset == 3


def test_unknown_characteristic_and_bad_uuid() -> None:
    with pytest.raises(g.DecodeError):
        g.decode(0x2A00, b"\x00")
    with pytest.raises(g.DecodeError):
        g.decode("not-a-uuid", b"\x00")
