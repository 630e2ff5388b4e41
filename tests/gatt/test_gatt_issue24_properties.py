"""Properties of the CGM, GHS, Elapsed Time, Enhanced BP and Body Composition codecs.

For each: decode(encode(m)) == m and encode(decode(x)) == x; arbitrary bytes give a value or a
:class:`~protocols.gatt.DecodeError` with its fields (never another exception); every
truncation of a valid value is refused. These codecs are not in the registry yet, so they are
listed here by their module functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from gatt_scalars import date_times, floats, opt, sfloats, u8, u16, u32
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.gatt import DecodeError, acom, cgm, cgm_control, ghs, numbers
from protocols.gatt import body_composition as bc
from protocols.gatt import elapsed_time as et
from protocols.gatt import enhanced_bp as ebp
from protocols.gatt.blood_pressure import BloodPressureMeasurementStatus, PressureUnit
from protocols.gatt.segmentation import SegmentationHeader
from protocols.gatt.weight import HeightResolution, WeightResolution, WeightUnitSystem

# --- CGM ------------------------------------------------------------------------------------

cgm_records = st.builds(
    cgm.CgmMeasurementRecord,
    glucose_concentration_mg_dl=sfloats,
    time_offset_min=u16,
    status_octet=opt(st.integers(0, 0x3F)),
    cal_temp_octet=opt(st.integers(0, 0x7F)),
    warning_octet=opt(u8),
    trend_mg_dl_per_min=opt(sfloats),
    quality_percent=opt(sfloats),
    secured=st.booleans(),
)
cgm_measurements = st.lists(cgm_records, min_size=1, max_size=4).map(
    lambda records: cgm.CgmMeasurement(tuple(records))
)
cgm_types = st.integers(0, 15).map(cgm.CgmType)
cgm_locations = st.integers(0, 15).map(cgm.CgmSampleLocation)
cgm_features = st.builds(
    cgm.CgmFeature,
    features=st.integers(0, 0x1FFFF).map(cgm.CgmFeatureBits),
    type=cgm_types,
    sample_location=cgm_locations,
)
cgm_statuses = st.builds(
    cgm.CgmStatus,
    time_offset_min=u16,
    status=st.integers(0, 0xFFFFFF)
    .map(lambda raw: raw & ~cgm.SENSOR_STATUS_RFU)
    .map(cgm.CgmSensorStatus),
    secured=st.booleans(),
)
cgm_start_times = st.builds(
    cgm.CgmSessionStartTime,
    session_start_time=date_times,
    time_zone_15min=st.one_of(st.integers(-48, 56), st.just(-128)),
    dst_offset=st.sampled_from(cgm.DstOffset),
    secured=st.booleans(),
)
cgm_run_times = st.builds(cgm.CgmSessionRunTime, run_time_h=u16, secured=st.booleans())
calibrations = st.builds(
    cgm_control.CgmCalibrationValue,
    glucose_concentration_mg_dl=sfloats,
    calibration_time_min=u16,
    type=cgm_types,
    sample_location=cgm_locations,
    next_calibration_time_min=u16,
    calibration_data_record_number=u16,
    calibration_status=st.integers(0, 7).map(cgm_control.CgmCalibrationStatus),
)


@st.composite
def socp_values(draw: st.DrawFn) -> cgm_control.CgmSpecificOpsControlPoint:
    op_code = cgm_control.CgmSocpOpCode(draw(st.integers(1, 0x1C)))
    kind = cgm_control._operand_kind(op_code)
    operands: dict[Any, st.SearchStrategy[Any]] = {
        cgm_control._Operand.NONE: st.none(),
        cgm_control._Operand.UINT8: u8,
        cgm_control._Operand.UINT16: u16,
        cgm_control._Operand.SFLOAT: sfloats,
        cgm_control._Operand.CALIBRATION: calibrations,
        cgm_control._Operand.RESPONSE: st.builds(
            cgm_control.CgmSocpResponse,
            u8.map(cgm_control.CgmSocpOpCode),
            u8.map(cgm_control.CgmSocpResponseCode),
        ),
    }
    operand, secured = draw(operands[kind]), draw(st.booleans())
    return cgm_control.CgmSpecificOpsControlPoint(op_code, operand, secured)


# --- Elapsed Time and GHS -------------------------------------------------------------------

elapsed_times = st.builds(
    et.ElapsedTime,
    time_value=st.integers(0, (1 << 48) - 1),
    resolution=st.sampled_from(et.TimeResolution),
    tick_counter=st.booleans(),
    utc=st.booleans(),
    tz_dst_offset_used=st.booleans(),
    current_timeline=st.booleans(),
    time_sync_source=u8.map(et.TimeSource),
    tz_dst_offset_15min=st.integers(-128, 127),
)
short_bytes = st.binary(max_size=6)
tlvs = st.builds(acom.Tlv, type=u32, format=u8, value=short_bytes)
codes = st.lists(u32, max_size=3).map(tuple)


@st.composite
def sample_arrays(draw: st.DrawFn) -> acom.SampleArrayValue:
    width = draw(st.integers(1, 4))
    count = draw(st.integers(0, 5))
    return acom.SampleArrayValue(
        draw(u16),
        draw(floats),
        draw(floats),
        draw(floats),
        draw(u8),
        width,
        draw(st.binary(min_size=width * count, max_size=width * count)),
    )


@st.composite
def state_events(draw: st.DrawFn) -> acom.CompoundStateEventValue:
    size = draw(st.integers(0, 4))
    field = st.binary(min_size=size, max_size=size)
    return acom.CompoundStateEventValue(draw(field), draw(field), draw(field))


component_values: st.SearchStrategy[acom.ComponentValue] = st.one_of(
    st.builds(acom.NumericValue, u16, floats),
    st.builds(acom.DiscreteValue, u32),
    st.builds(acom.StringValue, st.text(max_size=8)),
    sample_arrays(),
    st.builds(acom.CompoundDiscreteEventValue, codes),
    state_events(),
)
observation_values: st.SearchStrategy[acom.ObservationValue] = st.one_of(
    component_values,
    st.lists(st.builds(acom.CompoundComponent, u32, component_values), max_size=3).map(
        lambda components: acom.CompoundValue(tuple(components))
    ),
    st.lists(tlvs, max_size=3).map(lambda items: acom.TlvValue(tuple(items))),
    st.builds(acom.UnknownValue, st.integers(9, 0xFE), short_bytes),
)


def _observations(values: st.SearchStrategy[acom.ObservationValue]) -> Any:
    return st.builds(
        acom.HealthObservation,
        value=values,
        observation_type=opt(u32),
        time_stamp=opt(elapsed_times),
        measurement_duration_s=opt(floats),
        measurement_status=opt(u16.map(acom.MeasurementStatus)),
        object_id=opt(u32),
        patient_id=opt(u8),
        supplemental_information=opt(codes),
        derived_from=opt(codes),
        is_member_of=opt(codes),
        tlvs=opt(st.lists(tlvs, max_size=2).map(tuple)),
    )


simple_observations = _observations(observation_values)
health_observations = st.one_of(
    simple_observations,
    _observations(
        st.lists(simple_observations, max_size=3).map(lambda o: acom.BundleValue(tuple(o)))
    ),
)
stored_observations = st.builds(ghs.StoredHealthObservation, u32, health_observations)
features = st.builds(
    ghs.HealthSensorFeatures,
    st.lists(u32, max_size=4).map(tuple),
    opt(st.lists(st.builds(ghs.DeviceSpecialization, u16, u8), max_size=3).map(tuple)),
)
schedules = st.builds(ghs.ObservationSchedule, u32, floats, floats)

# --- Enhanced BP and Body Composition -------------------------------------------------------

bp_statuses = (
    st.integers(0, 0x3F).filter(lambda raw: raw & 0x18 != 0x18).map(BloodPressureMeasurementStatus)
)
_bp_optional = {
    "unit": st.sampled_from(PressureUnit),
    "time_stamp_s": opt(u32),
    "pulse_rate_bpm": opt(sfloats),
    "user_id": opt(u8),
    "measurement_status": opt(bp_statuses),
    "user_facing_time_s": opt(u32),
    "epoch_start": st.sampled_from(ebp.EpochStart),
}
enhanced_bpms = st.builds(
    ebp.EnhancedBloodPressureMeasurement, sfloats, sfloats, sfloats, **_bp_optional
)
enhanced_icps = st.builds(ebp.EnhancedIntermediateCuffPressure, sfloats, **_bp_optional)


@st.composite
def record_segments(draw: st.DrawFn) -> ebp.BloodPressureRecordSegment:
    header = SegmentationHeader(draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 63)))
    uuid = draw(st.sampled_from([0x2A35, 0x2B36, 0x1234]))
    secured = header.last and draw(st.booleans())
    crc = draw(u16) if secured and not header.first else None
    return ebp.BloodPressureRecordSegment(header, draw(u16), uuid, draw(short_bytes), secured, crc)


@st.composite
def body_compositions(draw: st.DrawFn) -> bc.BodyCompositionMeasurement:
    system = draw(st.sampled_from(WeightUnitSystem))
    imperial = system is WeightUnitSystem.IMPERIAL

    def field(multiplier: int, exponent: int) -> Decimal | None:
        raw = draw(opt(u16))
        return None if raw is None else Decimal(raw * multiplier).scaleb(exponent)

    mass = (1, -2) if imperial else (5, -3)
    fat = draw(st.integers(0, 0xFFFF))
    return bc.BodyCompositionMeasurement(
        None if fat == 0xFFFF else Decimal(fat).scaleb(-1),
        system,
        draw(opt(date_times)),
        draw(opt(u8)),
        field(1, 0),
        field(1, -1),
        field(*mass),
        field(*mass),
        field(*mass),
        field(*mass),
        field(1, -1),
        field(*mass),
        field(1, -1) if imperial else field(1, -3),
        draw(st.booleans()),
    )


body_composition_features = st.builds(
    bc.BodyCompositionFeature,
    st.integers(0, 0x7FF).map(bc.BodyCompositionFeatureBits),
    st.sampled_from(WeightResolution),
    st.sampled_from(HeightResolution),
)


@dataclass(frozen=True)
class Codec:
    name: str
    characteristic: int
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]
    values: st.SearchStrategy[Any]
    prefix_free: bool = True  # no shorter prefix of a valid value is itself valid


CODECS = [
    Codec(
        "cgm_measurement",
        numbers.CGM_MEASUREMENT,
        cgm.decode_cgm_measurement,
        cgm.encode_cgm_measurement,
        cgm_measurements,
        prefix_free=False,
    ),
    Codec(
        "cgm_feature",
        numbers.CGM_FEATURE,
        cgm.decode_cgm_feature,
        cgm.encode_cgm_feature,
        cgm_features,
    ),
    Codec(
        "cgm_status",
        numbers.CGM_STATUS,
        cgm.decode_cgm_status,
        cgm.encode_cgm_status,
        cgm_statuses,
        prefix_free=False,
    ),
    Codec(
        "cgm_session_start_time",
        numbers.CGM_SESSION_START_TIME,
        cgm.decode_cgm_session_start_time,
        cgm.encode_cgm_session_start_time,
        cgm_start_times,
        prefix_free=False,
    ),
    Codec(
        "cgm_session_run_time",
        numbers.CGM_SESSION_RUN_TIME,
        cgm.decode_cgm_session_run_time,
        cgm.encode_cgm_session_run_time,
        cgm_run_times,
        prefix_free=False,
    ),
    Codec(
        "cgm_socp",
        numbers.CGM_SPECIFIC_OPS_CONTROL_POINT,
        cgm_control.decode_cgm_specific_ops_control_point,
        cgm_control.encode_cgm_specific_ops_control_point,
        socp_values(),
        prefix_free=False,
    ),
    Codec(
        "elapsed_time",
        numbers.ELAPSED_TIME,
        et.decode_elapsed_time,
        et.encode_elapsed_time,
        elapsed_times,
    ),
    Codec(
        "live_health_observations",
        numbers.LIVE_HEALTH_OBSERVATIONS,
        ghs.decode_live_health_observations,
        ghs.encode_live_health_observations,
        health_observations,
    ),
    Codec(
        "stored_health_observations",
        numbers.STORED_HEALTH_OBSERVATIONS,
        ghs.decode_stored_health_observations,
        ghs.encode_stored_health_observations,
        stored_observations,
    ),
    Codec(
        "health_sensor_features",
        numbers.HEALTH_SENSOR_FEATURES,
        ghs.decode_health_sensor_features,
        ghs.encode_health_sensor_features,
        features,
    ),
    Codec(
        "ghs_control_point",
        numbers.GHS_CONTROL_POINT,
        ghs.decode_ghs_control_point,
        ghs.encode_ghs_control_point,
        u8.map(ghs.GhsControlPointOpCode).map(ghs.GhsControlPoint),
    ),
    Codec(
        "observation_schedule",
        numbers.OBSERVATION_SCHEDULE_CHANGED,
        ghs.decode_observation_schedule,
        ghs.encode_observation_schedule,
        schedules,
    ),
    Codec(
        "enhanced_bpm",
        numbers.ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
        ebp.decode_enhanced_blood_pressure_measurement,
        ebp.encode_enhanced_blood_pressure_measurement,
        enhanced_bpms,
    ),
    Codec(
        "enhanced_icp",
        numbers.ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
        ebp.decode_enhanced_intermediate_cuff_pressure,
        ebp.encode_enhanced_intermediate_cuff_pressure,
        enhanced_icps,
    ),
    Codec(
        "blood_pressure_record",
        numbers.BLOOD_PRESSURE_RECORD,
        lambda data: ebp.decode_blood_pressure_record(data, e2e_crc=False),
        ebp.encode_blood_pressure_record,
        record_segments().filter(lambda s: not s.secured),
        prefix_free=False,
    ),
    Codec(
        "body_composition_measurement",
        numbers.BODY_COMPOSITION_MEASUREMENT,
        bc.decode_body_composition_measurement,
        bc.encode_body_composition_measurement,
        body_compositions(),
    ),
    Codec(
        "body_composition_feature",
        numbers.BODY_COMPOSITION_FEATURE,
        bc.decode_body_composition_feature,
        bc.encode_body_composition_feature,
        body_composition_features,
    ),
]
IDS = [codec.name for codec in CODECS]


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip(codec: Codec, data: st.DataObject) -> None:
    value = data.draw(codec.values)
    wire = codec.encode(value)
    back = codec.decode(wire)
    assert back == value
    assert repr(back) == repr(value)  # Decimal precision and enum pseudo-members too
    assert codec.encode(back) == wire


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40))
def test_arbitrary_bytes_give_a_value_or_a_decode_error(codec: Codec, raw: bytes) -> None:
    error: DecodeError | None = None
    try:
        value = codec.decode(raw)
    except DecodeError as exc:
        error = exc
    if error is not None:
        assert isinstance(error, ValueError)
        assert error.characteristic in {codec.characteristic, None}
        assert error.offset is not None
        assert 0 <= error.offset <= len(raw)
        assert error.reason
        return
    # Strict decoding accepts only what re-encodes to the same bytes.
    assert codec.encode(value) == raw


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_truncation_at_every_offset(codec: Codec, data: st.DataObject) -> None:
    value = data.draw(codec.values)
    wire = codec.encode(value)
    for cut in range(len(wire)):
        error: DecodeError | None = None
        try:
            shorter = codec.decode(wire[:cut])
        except DecodeError as exc:
            error = exc
        if error is not None:
            assert error.offset is not None
            assert error.offset <= cut
            continue
        assert not codec.prefix_free, f"a {cut}-byte prefix decoded"
        assert shorter != value


@settings(max_examples=100, deadline=None)
@given(
    observation=health_observations,
    max_segment=st.integers(2, 40),
    counter=st.integers(0, 63),
)
def test_any_segmentation_reassembles(
    observation: acom.HealthObservation, max_segment: int, counter: int
) -> None:
    message = ghs.encode_live_health_observation_message(observation)
    receiver = ghs.HealthObservationReceiver(stored=False)
    events = []
    for segment in ghs.segment_message(message, max_segment=max_segment, first_counter=counter):
        assert len(segment) <= max_segment
        events += receiver.receive_segment(segment)
    assert events == [observation]


@settings(max_examples=100, deadline=None)
@given(segments=st.lists(st.binary(max_size=12), max_size=8))
def test_receiver_never_raises_on_arbitrary_segments(segments: list[bytes]) -> None:
    receiver = ghs.HealthObservationReceiver(stored=True, max_message_bytes=40)
    for segment in segments:
        for event in receiver.receive_segment(segment):
            assert isinstance(event, DecodeError | ghs.StoredHealthObservation)


@settings(max_examples=100, deadline=None)
@given(
    record=st.builds(ebp.BloodPressureRecord, u16, st.just(0x2B34), st.just(b"")).flatmap(
        lambda r: enhanced_bpms.map(
            lambda m: ebp.BloodPressureRecord(
                r.sequence_number, r.uuid, ebp.encode_enhanced_blood_pressure_measurement(m)
            )
        )
    ),
    max_part=st.integers(1, 30),
    secured=st.booleans(),
)
def test_any_record_split_reassembles(
    record: ebp.BloodPressureRecord, max_part: int, secured: bool
) -> None:
    segments = ebp.split_blood_pressure_record(record, max_part=max_part, secured=secured)
    wires = [ebp.encode_blood_pressure_record(segment) for segment in segments]
    decoded = [ebp.decode_blood_pressure_record(wire, e2e_crc=secured) for wire in wires]
    assert ebp.assemble_blood_pressure_record(decoded) == record
