"""Hypothesis strategies for every protocols.gatt value type (valid, encodable values)."""

from __future__ import annotations

from decimal import Decimal

from gatt_scalars import date_times, floats, opt, sfloats, u8, u16
from hypothesis import strategies as st

from protocols import gatt as g
from protocols.gatt import ghs


def _bp_status(raw: int) -> g.BloodPressureMeasurementStatus:
    return g.BloodPressureMeasurementStatus(raw)


bp_statuses = st.integers(0, 0x3F).filter(lambda r: r & 0x18 != 0x18).map(_bp_status)
pressure_units = st.sampled_from(g.PressureUnit)

#: The fields after the pressures, alike in both characteristics (GSS 3.31 and 3.125).
_bp_tail: dict[str, st.SearchStrategy[object]] = {
    "unit": pressure_units,
    "time_stamp": opt(date_times),
    "pulse_rate_bpm": opt(sfloats),
    "user_id": opt(u8),
    "measurement_status": opt(bp_statuses),
}
blood_pressure_measurements = st.builds(
    g.BloodPressureMeasurement,
    systolic=sfloats,
    diastolic=sfloats,
    mean_arterial_pressure=sfloats,
    **_bp_tail,
)
intermediate_cuff_pressures = st.builds(
    g.IntermediateCuffPressure,
    current_cuff_pressure=sfloats,
    unused_diastolic=sfloats,
    unused_mean_arterial_pressure=sfloats,
    **_bp_tail,
)
blood_pressure_features = st.builds(
    g.BloodPressureFeature, st.integers(0, 0x1FF).map(g.BloodPressureFeatureBits)
)
temperature_measurements = st.builds(
    g.TemperatureMeasurement,
    temperature=floats,
    unit=st.sampled_from(g.TemperatureUnit),
    time_stamp=opt(date_times),
    temperature_type=opt(st.sampled_from(g.TemperatureType)),
    intermediate=st.booleans(),
)
temperature_types = st.builds(g.TemperatureTypeValue, st.sampled_from(g.TemperatureType))


@st.composite
def weight_measurements(draw: st.DrawFn) -> g.WeightMeasurement:
    system = draw(st.sampled_from(g.WeightUnitSystem))
    raw = draw(st.integers(0, 0xFFFF))
    si = system is g.WeightUnitSystem.SI
    weight = None if raw == 0xFFFF else Decimal(raw * (5 if si else 1)).scaleb(-3 if si else -2)
    bmi = height = None
    if weight is not None and draw(st.booleans()):
        bmi = Decimal(draw(u16)).scaleb(-1)
        height = Decimal(draw(u16)).scaleb(-3 if si else -1)
    return g.WeightMeasurement(weight, system, draw(opt(date_times)), draw(opt(u8)), bmi, height)


weight_scale_features = st.builds(
    g.WeightScaleFeature,
    time_stamp_supported=st.booleans(),
    multiple_users_supported=st.booleans(),
    bmi_supported=st.booleans(),
    weight_resolution=st.sampled_from(g.WeightResolution),
    height_resolution=st.sampled_from(g.HeightResolution),
)
plx_ms = st.integers(0, 0x7FF).map(lambda r: g.PlxMeasurementStatus(r << 5))
plx_dss = st.integers(0, 0xFFFF).map(g.PlxDeviceAndSensorStatus)
plx_spot_checks = st.builds(
    g.PlxSpotCheckMeasurement,
    spo2_percent=sfloats,
    pulse_rate_bpm=sfloats,
    time_stamp=opt(date_times),
    measurement_status=opt(plx_ms),
    device_and_sensor_status=opt(plx_dss),
    pulse_amplitude_index_percent=opt(sfloats),
    device_clock_not_set=st.booleans(),
)


@st.composite
def plx_continuous(draw: st.DrawFn) -> g.PlxContinuousMeasurement:
    fast = draw(opt(st.tuples(sfloats, sfloats))) or (None, None)
    slow = draw(opt(st.tuples(sfloats, sfloats))) or (None, None)
    return g.PlxContinuousMeasurement(
        draw(sfloats),
        draw(sfloats),
        fast[0],
        fast[1],
        slow[0],
        slow[1],
        draw(opt(plx_ms)),
        draw(opt(plx_dss)),
        draw(opt(sfloats)),
    )


@st.composite
def plx_features(draw: st.DrawFn) -> g.PlxFeatures:
    raw = draw(st.integers(0, 0xFF))
    features = g.PlxSupportedFeatures(raw)
    status = draw(plx_ms) if raw & 1 else None
    device = draw(plx_dss) if raw & 2 else None
    return g.PlxFeatures(features, status, device)


@st.composite
def glucose_measurements(draw: st.DrawFn) -> g.GlucoseMeasurement:
    concentration = draw(opt(sfloats))
    has = concentration is not None
    return g.GlucoseMeasurement(
        sequence_number=draw(u16),
        base_time=draw(date_times),
        time_offset_min=draw(opt(st.integers(-0x8000, 0x7FFF))),
        concentration=concentration,
        concentration_unit=draw(st.sampled_from(g.GlucoseConcentrationUnit)),
        type=draw(st.sampled_from(g.GlucoseType)) if has else None,
        sample_location=draw(st.sampled_from(g.SampleLocation)) if has else None,
        sensor_status_annunciation=draw(opt(st.integers(0, 0xFFF).map(g.GlucoseSensorStatus))),
        context_information_follows=draw(st.booleans()),
    )


@st.composite
def glucose_contexts(draw: st.DrawFn) -> g.GlucoseMeasurementContext:
    carb = draw(opt(st.tuples(st.sampled_from(g.CarbohydrateId), sfloats))) or (None, None)
    tester = draw(opt(st.tuples(st.sampled_from(g.Tester), st.sampled_from(g.Health))))
    exercise = draw(opt(st.tuples(u16, st.integers(0, 100)))) or (None, None)
    medication = draw(opt(st.tuples(st.sampled_from(g.MedicationId), sfloats))) or (None, None)
    return g.GlucoseMeasurementContext(
        sequence_number=draw(u16),
        carbohydrate_id=carb[0],
        carbohydrate_kg=carb[1],
        meal=draw(opt(st.sampled_from(g.Meal))),
        tester=None if tester is None else tester[0],
        health=None if tester is None else tester[1],
        exercise_duration_s=exercise[0],
        exercise_intensity_percent=exercise[1],
        medication_id=medication[0],
        medication=medication[1],
        medication_unit=draw(st.sampled_from(g.MedicationUnit)),
        hba1c_percent=draw(opt(sfloats)),
        extended_flags=draw(st.sampled_from([None, 0])),
    )


glucose_features = st.builds(g.GlucoseFeature, st.integers(0, 0x7FF).map(g.GlucoseFeatureBits))
_record_ops = st.sampled_from(
    [
        g.RacpOpCode.REPORT_STORED_RECORDS,
        g.RacpOpCode.DELETE_STORED_RECORDS,
        g.RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    ]
)


@st.composite
def racp_values(
    draw: st.DrawFn,
) -> g.RacpRequest | g.RacpNumberOfStoredRecords | g.RacpResponse:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return g.RacpNumberOfStoredRecords(draw(u16))
    if kind == 1:
        request = draw(st.one_of(st.sampled_from(g.RacpOpCode), u8))
        return g.RacpResponse(request, draw(st.sampled_from(g.RacpResponseCode)))
    if kind == 2:
        return g.RacpRequest.abort()
    op = draw(_record_ops)
    if kind == 3:
        operator = draw(
            st.sampled_from(
                [
                    g.RacpOperator.ALL_RECORDS,
                    g.RacpOperator.FIRST_RECORD,
                    g.RacpOperator.LAST_RECORD,
                ]
            )
        )
        return g.RacpRequest(op, operator)
    filter_type = draw(st.sampled_from(g.RacpFilterType))
    values = u16 if filter_type is not g.RacpFilterType.USER_FACING_TIME else date_times
    operator = draw(
        st.sampled_from(
            [
                g.RacpOperator.LESS_THAN_OR_EQUAL_TO,
                g.RacpOperator.GREATER_THAN_OR_EQUAL_TO,
                g.RacpOperator.WITHIN_RANGE_OF,
            ]
        )
    )
    if operator is g.RacpOperator.LESS_THAN_OR_EQUAL_TO:
        return g.RacpRequest(op, operator, filter_type, maximum=draw(values))
    if operator is g.RacpOperator.GREATER_THAN_OR_EQUAL_TO:
        return g.RacpRequest(op, operator, filter_type, minimum=draw(values))
    low, high = draw(values), draw(values)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        low, high = high, low
    return g.RacpRequest(op, operator, filter_type, minimum=low, maximum=high)


@st.composite
def heart_rates(draw: st.DrawFn) -> g.HeartRateMeasurement:
    wide = draw(st.booleans())
    return g.HeartRateMeasurement(
        heart_rate_bpm=draw(u16 if wide else u8),
        sensor_contact=draw(st.sampled_from(g.SensorContact)),
        energy_expended_kj=draw(opt(u16)),
        rr_intervals_1024th_s=draw(opt(st.lists(u16, min_size=1, max_size=9).map(tuple))),
        uint16_format=wide,
    )


day_date_times = st.builds(g.DayDateTime, date_times, st.sampled_from(g.DayOfWeek))
current_times = st.builds(
    g.CurrentTime, day_date_times, u8, st.integers(0, 0x0F).map(g.AdjustReason)
)
battery_levels = st.builds(g.BatteryLevel, st.integers(0, 100))
#: The Device Information Service's string characteristics (DIS 1.1, 3.2 to 3.7).
DIS_STRINGS = (
    g.MANUFACTURER_NAME,
    g.MODEL_NUMBER,
    g.SERIAL_NUMBER,
    g.HARDWARE_REVISION,
    g.FIRMWARE_REVISION,
    g.SOFTWARE_REVISION,
)
device_strings = st.builds(
    g.DeviceInformationString,
    st.sampled_from(DIS_STRINGS),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
)


def _device_strings_of(uuid: int) -> st.SearchStrategy[g.DeviceInformationString]:
    """Device Information strings of the characteristic ``uuid``."""
    return device_strings.map(lambda d: g.DeviceInformationString(uuid, d.value))


#: characteristic UUID -> strategy of values of that characteristic.
# The issue-24 codecs' strategies live with their own property tests.
from test_gatt_issue24_properties import (  # noqa: E402
    body_composition_features,
    body_compositions,
    cgm_features,
    cgm_measurements,
    cgm_run_times,
    cgm_start_times,
    cgm_statuses,
    elapsed_times,
    enhanced_bpms,
    enhanced_icps,
    features,
    health_observations,
    record_segments,
    schedules,
    socp_values,
    stored_observations,
)

BY_CHARACTERISTIC: dict[int, st.SearchStrategy[object]] = {
    g.CGM_MEASUREMENT: cgm_measurements,
    g.CGM_FEATURE: cgm_features,
    g.CGM_STATUS: cgm_statuses,
    g.CGM_SESSION_START_TIME: cgm_start_times,
    g.CGM_SESSION_RUN_TIME: cgm_run_times,
    g.CGM_SPECIFIC_OPS_CONTROL_POINT: socp_values(),
    g.ELAPSED_TIME: elapsed_times,
    g.LIVE_HEALTH_OBSERVATIONS: health_observations,
    g.STORED_HEALTH_OBSERVATIONS: stored_observations,
    g.HEALTH_SENSOR_FEATURES: features,
    g.GHS_CONTROL_POINT: st.integers(0, 0xFF)
    .map(ghs.GhsControlPointOpCode)
    .map(ghs.GhsControlPoint),
    g.OBSERVATION_SCHEDULE_CHANGED: schedules,
    g.ENHANCED_BLOOD_PRESSURE_MEASUREMENT: enhanced_bpms,
    g.ENHANCED_INTERMEDIATE_CUFF_PRESSURE: enhanced_icps,
    # The registry decodes without the Feature: a CRC only where the value itself shows it.
    g.BLOOD_PRESSURE_RECORD: record_segments().filter(lambda s: not s.secured),
    g.BODY_COMPOSITION_MEASUREMENT: body_compositions(),
    g.BODY_COMPOSITION_FEATURE: body_composition_features,
    g.BLOOD_PRESSURE_MEASUREMENT: blood_pressure_measurements,
    g.INTERMEDIATE_CUFF_PRESSURE: intermediate_cuff_pressures,
    g.BLOOD_PRESSURE_FEATURE: blood_pressure_features,
    g.TEMPERATURE_MEASUREMENT: temperature_measurements.map(
        lambda m: g.TemperatureMeasurement(m.temperature, m.unit, m.time_stamp, m.temperature_type)
    ),
    g.INTERMEDIATE_TEMPERATURE: temperature_measurements.map(
        lambda m: g.TemperatureMeasurement(
            m.temperature, m.unit, m.time_stamp, m.temperature_type, intermediate=True
        )
    ),
    g.TEMPERATURE_TYPE: temperature_types,
    g.WEIGHT_MEASUREMENT: weight_measurements(),
    g.WEIGHT_SCALE_FEATURE: weight_scale_features,
    g.PLX_SPOT_CHECK_MEASUREMENT: plx_spot_checks,
    g.PLX_CONTINUOUS_MEASUREMENT: plx_continuous(),
    g.PLX_FEATURES: plx_features(),
    g.GLUCOSE_MEASUREMENT: glucose_measurements(),
    g.GLUCOSE_MEASUREMENT_CONTEXT: glucose_contexts(),
    g.GLUCOSE_FEATURE: glucose_features,
    g.RECORD_ACCESS_CONTROL_POINT: racp_values(),
    g.HEART_RATE_MEASUREMENT: heart_rates(),
    g.CURRENT_TIME: current_times,
    g.DATE_TIME: date_times,
    g.DAY_DATE_TIME: day_date_times,
    g.BATTERY_LEVEL: battery_levels,
    **{uuid: _device_strings_of(uuid) for uuid in DIS_STRINGS},
    g.SYSTEM_ID: st.builds(g.SystemId, st.integers(0, 2**40 - 1), st.integers(0, 2**24 - 1)),
}

#: Characteristics whose values have a variable-length tail (a prefix may itself be valid).
#: Device Information strings: trailing NUL padding is dropped, so it re-encodes shorter.
NUL_PADDED = frozenset(DIS_STRINGS)
VARIABLE_TAIL = NUL_PADDED | frozenset(
    {
        g.HEART_RATE_MEASUREMENT,
        # Records end to end, or an E2E-CRC the length alone announces: a shorter value
        # can be a valid one (fewer records, no CRC); a record segment's part is free bytes.
        g.CGM_MEASUREMENT,
        g.CGM_STATUS,
        g.CGM_SESSION_START_TIME,
        g.CGM_SESSION_RUN_TIME,
        g.CGM_SPECIFIC_OPS_CONTROL_POINT,
        g.BLOOD_PRESSURE_RECORD,
    }
)
