"""GHS 1.0 codecs (ACOM observation body, Live/Stored Health Observations, features, control
point, schedule), Elapsed Time and the segmentation header, with their sources.

ST = STMicroelectronics STM32WBA GHS example ``service1_app.c`` (GHS_APP), ``ObservationBundle``
and ``GHS_APP_UpdateObservationScheduleChanged``; Philips = philips-labs/BLE-GHS-Server-Simulator
at 271f2aa; Realtek = Realtek ``ghss.c``/``ghss_gatt_svc.h`` (GHSS server).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from protocols.gatt import DecodeError, acom, ghs, numbers
from protocols.gatt.elapsed_time import (
    ElapsedTime,
    TimeResolution,
    TimeSource,
    decode_elapsed_time,
    encode_elapsed_time,
)
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.segmentation import SegmentationError, SegmentationHeader

MDC_PULS_OXIM_SAT_O2 = 0x00024BB8  # 150456
MDC_PULS_OXIM_PULS_RATE = 0x0002481A  # 149530
MDC_MODALITY_SPOT = 0x00024C3C
MDC_DIM_PER_CENT = 0x0220
MDC_DIM_BEAT_PER_MIN = 0x0AA0

# ST ObservationBundle, byte for byte, except the two Length fields: ST counts them from the
# Flags on (0x2F, 0x0C); Philips (withLengthPrefix) and Realtek
# (ghss_format_health_obs_body_length) count the class and length bytes too (+3: 0x32, 0x0F).
ST_BUNDLE_AS_SENT = bytes.fromhex(
    "ff2f00"
    "4200"
    "22729d2b2900000600"
    "01"
    "3c4c0200"
    "02"
    "010c00"
    "0100"
    "b84b0200"
    "2002"
    "62000000"
    "010c00"
    "0100"
    "1a480200"
    "a00a"
    "62000000"
)
ST_BUNDLE = bytes.fromhex(
    "ff3200"
    "4200"
    "22729d2b2900000600"
    "01"
    "3c4c0200"
    "02"
    "010f00"
    "0100"
    "b84b0200"
    "2002"
    "62000000"
    "010f00"
    "0100"
    "1a480200"
    "a00a"
    "62000000"
)


def test_st_bundle_decodes_to_spo2_and_pulse() -> None:
    bundle = acom.decode_health_observation(ST_BUNDLE)
    assert bundle.observation_class is acom.ObservationClass.BUNDLE
    assert bundle.supplemental_information == (MDC_MODALITY_SPOT,)
    stamp = bundle.time_stamp
    assert stamp is not None
    assert stamp.utc
    assert stamp.current_timeline
    assert not stamp.tick_counter
    assert stamp.resolution is TimeResolution.SECOND
    assert stamp.time_value == 0x292B9D72
    assert stamp.time_sync_source is TimeSource.CELLULAR_NETWORK
    assert stamp.to_datetime() == dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        seconds=0x292B9D72
    )
    assert isinstance(bundle.value, acom.BundleValue)
    spo2, pulse = bundle.value.observations
    assert spo2.observation_type == MDC_PULS_OXIM_SAT_O2
    assert spo2.value == acom.NumericValue(MDC_DIM_PER_CENT, MedFloat.of(98))
    assert pulse.observation_type == MDC_PULS_OXIM_PULS_RATE
    assert pulse.value == acom.NumericValue(MDC_DIM_BEAT_PER_MIN, MedFloat.of(98))
    assert acom.encode_health_observation(bundle) == ST_BUNDLE


def test_st_bundle_as_sent_is_refused_with_the_length_named() -> None:
    with pytest.raises(DecodeError) as info:
        acom.decode_health_observation(ST_BUNDLE_AS_SENT)
    assert info.value.offset is not None
    # The first inner observation claims 12 bytes: its FLOAT runs past them.
    assert info.value.reason == "truncated numeric value: needs 4 bytes"


def test_st_single_segment_live_value_and_receiver() -> None:
    # ST GHS_APP_UpdateLiveHealthObservation: header first|last with counter 1 (it increments
    # before sending), then the body.
    value = bytes([0x07]) + ST_BUNDLE
    observation = ghs.decode_live_health_observations(value)
    assert observation == acom.decode_health_observation(ST_BUNDLE)
    assert ghs.encode_live_health_observations(observation, counter=1) == value
    receiver = ghs.HealthObservationReceiver(stored=False)
    # ST ghsapp_send_segment splits at the MTU: 20-byte segments here.
    segments = ghs.segment_message(ST_BUNDLE, max_segment=20, first_counter=5)
    assert len(segments) == 3
    assert [SegmentationHeader.from_byte(s[0]).counter for s in segments] == [5, 6, 7]
    events = [event for segment in segments for event in receiver.receive_segment(segment)]
    assert events == [observation]


def test_receiver_reports_dropped_messages_and_bad_bodies_as_events() -> None:
    receiver = ghs.HealthObservationReceiver(stored=False)
    segments = ghs.segment_message(ST_BUNDLE, max_segment=20)
    assert receiver.receive_segment(segments[0]) == []
    # Counter 2 where 1 was due: the partial message is dropped, with its size.
    events = receiver.receive_segment(segments[2])
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, SegmentationError)
    assert error.dropped_bytes == 19 + 12  # the first segment and the last (50 = 19+19+12)
    # A middle segment with nothing begun.
    assert isinstance(receiver.receive_segment(segments[1])[0], SegmentationError)
    # A first segment in the middle of a message: the old one is reported, the new one kept.
    receiver.receive_segment(segments[0])
    whole = bytes([0x03]) + ST_BUNDLE
    events = receiver.receive_segment(whole)
    assert isinstance(events[0], SegmentationError)
    assert events[1] == acom.decode_health_observation(ST_BUNDLE)
    # A complete message whose body is bad is a DecodeError event, never an exception.
    (bad,) = receiver.receive_segment(bytes([0x03]) + ST_BUNDLE_AS_SENT)
    assert isinstance(bad, DecodeError)


def test_receiver_caps_a_message() -> None:
    receiver = ghs.HealthObservationReceiver(stored=False, max_message_bytes=30)
    segments = ghs.segment_message(ST_BUNDLE, max_segment=20)
    assert receiver.receive_segment(segments[0]) == []
    (error,) = receiver.receive_segment(segments[1])
    assert isinstance(error, SegmentationError)
    assert "exceeds 30 bytes" in error.reason


def test_stored_observation_carries_its_record_number() -> None:
    # Realtek ghss_format_health_obs_sending_value: a stored observation's message starts with
    # its record number (uint32) before the Health Observation Body.
    message = (7).to_bytes(4, "little") + ST_BUNDLE
    stored = ghs.decode_stored_health_observations(b"\x03" + message)
    assert stored.record_number == 7
    assert stored.observation == acom.decode_health_observation(ST_BUNDLE)
    assert ghs.encode_stored_health_observations(stored) == b"\x03" + message
    with pytest.raises(DecodeError, match="Record Number"):
        ghs.decode_stored_health_observations(b"\x03\x07\x00")


def test_segmented_value_is_not_decoded_alone() -> None:
    with pytest.raises(DecodeError, match="reassemble"):
        ghs.decode_live_health_observations(bytes([0x01]) + ST_BUNDLE)


def _all_fields(value: acom.ObservationValue) -> acom.HealthObservation:
    return acom.HealthObservation(
        value,
        observation_type=MDC_PULS_OXIM_SAT_O2,
        time_stamp=ElapsedTime(
            123456789,
            TimeResolution.MILLISECOND,
            utc=True,
            tz_dst_offset_used=True,
            time_sync_source=TimeSource.NETWORK_TIME_PROTOCOL,
            tz_dst_offset_15min=-20,
        ),
        measurement_duration_s=MedFloat.of("1.5"),
        measurement_status=acom.MeasurementStatus.QUESTIONABLE
        | acom.MeasurementStatus.EARLY_ESTIMATE,
        object_id=42,
        patient_id=2,
        supplemental_information=(MDC_MODALITY_SPOT,),
        derived_from=(40, 41),
        is_member_of=(),
        tlvs=(acom.Tlv(0x00010A56, 4, b"\x01\x02"),),
    )


@pytest.mark.parametrize(
    "value",
    [
        acom.NumericValue(MDC_DIM_BEAT_PER_MIN, MedFloat.of("72.5")),
        acom.DiscreteValue(0x00080001),
        acom.StringValue("Lisinopril 10 mg, åäö"),
        acom.SampleArrayValue(
            0x0A00,
            MedFloat.of("0.5"),
            MedFloat.of(-10),
            MedFloat.of("0.01"),
            100,
            2,
            bytes(range(20)),
        ),
        acom.CompoundDiscreteEventValue((1, 2, 3)),
        acom.CompoundStateEventValue(b"\xff\x0f", b"\x0f\x00", b"\x05\x00"),
        acom.CompoundValue(
            (
                acom.CompoundComponent(0x0002_4A05, acom.NumericValue(0x0F20, MedFloat.of(120))),
                acom.CompoundComponent(0x0002_4A06, acom.NumericValue(0x0F20, MedFloat.of(80))),
                acom.CompoundComponent(0x0002_4A07, acom.StringValue("note")),
            )
        ),
        acom.TlvValue((acom.Tlv(1, 2, b"abc"), acom.Tlv(3, 4, b""))),
        acom.UnknownValue(0x42, b"\x00\x01\x02"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_every_class_round_trips_with_every_common_field(value: acom.ObservationValue) -> None:
    observation = _all_fields(value)
    wire = acom.encode_health_observation(observation)
    assert wire[1] | wire[2] << 8 == len(wire)
    assert wire[3] | wire[4] << 8 == 0x03FF
    assert acom.decode_health_observation(wire) == observation


def test_sample_array_samples_and_scale() -> None:
    value = acom.SampleArrayValue(
        0x0A00, MedFloat.of(2), MedFloat.of(1), MedFloat.of("0.1"), 10, 2, b"\x01\x00\x00\x01"
    )
    assert value.number_of_samples == 2
    assert value.raw_samples() == [1, 256]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x01\x05", "truncated observation header"),
        (bytes.fromhex("0104000000"), "below the header"),
        (bytes.fromhex("010b0000042002"), "truncated: Length"),
        (bytes.fromhex("010b00000020026200000000"), "trailing"),
        (bytes.fromhex("010a0000002002620000"), "truncated numeric value"),
        (bytes.fromhex("010b000008200262000000"), "reserved flag"),
        (bytes.fromhex("03090000000200c328"), "not UTF-8"),
        (bytes.fromhex("070b000000010100000007"), "component value class 7"),
        (bytes.fromhex("040e00000000000000000000000000"), "truncated offset"),
    ],
)
def test_bad_bodies_raise_decode_error(data: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        acom.decode_health_observation(data)
    assert fragment in info.value.reason
    assert info.value.offset is not None
    assert 0 <= info.value.offset <= len(data)


# --- Elapsed Time ---------------------------------------------------------------------------


def test_elapsed_time_from_the_st_time_stamp() -> None:
    # The 9 time-stamp bytes of the ST bundle: UTC, current timeline, seconds, cellular.
    raw = bytes.fromhex("22729d2b2900000600")
    value = decode_elapsed_time(raw)
    assert value.flags == 0x22
    assert value.local_datetime() is None  # UTC without a stated TZ/DST offset
    assert encode_elapsed_time(value) == raw


def test_elapsed_time_local_tick_and_offsets() -> None:
    local = ElapsedTime(3600, TimeResolution.HUNDRED_MILLISECONDS)
    assert local.to_datetime() == dt.datetime(2000, 1, 1, 0, 6)
    utc = ElapsedTime(0, utc=True, tz_dst_offset_used=True, tz_dst_offset_15min=8)
    assert utc.local_datetime() == dt.datetime(2000, 1, 1, 2, 0)
    tick = decode_elapsed_time(bytes.fromhex("0d01000000000007fc"))
    assert tick.tick_counter
    assert tick.resolution is TimeResolution.HUNDRED_MICROSECONDS
    assert tick.to_datetime() is None
    assert tick.tz_dst_offset_15min == -4
    assert tick.elapsed == dt.timedelta(microseconds=100)
    assert decode_elapsed_time(bytes.fromhex("000000000000002a00")).time_sync_source == 42
    with pytest.raises(DecodeError, match="reserved Elapsed Time flag"):
        decode_elapsed_time(bytes.fromhex("400000000000000000"))
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        decode_elapsed_time(bytes(10))


# --- features, control point, schedule ------------------------------------------------------


def test_st_features() -> None:
    # ST GHS_APP_UpdateFeature: no flags, two observation types (SpO2, pulse rate).
    data = bytes.fromhex("0002b84b02001a480200")
    features = ghs.decode_health_sensor_features(data)
    assert features.observation_types == (MDC_PULS_OXIM_SAT_O2, MDC_PULS_OXIM_PULS_RATE)
    assert features.device_specializations is None
    assert ghs.encode_health_sensor_features(features) == data


def test_philips_features_with_specialization() -> None:
    # Philips featureCharacteristicBytes + DeviceSpecialization.asByteArray: flag 1, the
    # types, count, MDC_DEV_SPEC_PROFILE_PULS_OXIM (528388) as uint16 term + version 1.
    data = bytes.fromhex("0101b84b020001041001")
    features = ghs.decode_health_sensor_features(data)
    assert features.device_specializations == (ghs.DeviceSpecialization(528388 & 0xFFFF, 1),)
    assert ghs.encode_health_sensor_features(features) == data
    for bad, fragment in (
        (data[:-1], "truncated device specializations"),
        (data + b"\x00", "trailing"),
        (b"\x02\x00", "reserved flag"),
        (b"\x00\x02\xb8\x4b\x02\x00", "truncated observation types"),
    ):
        with pytest.raises(DecodeError, match=fragment):
            ghs.decode_health_sensor_features(bad)


def test_philips_control_point_op_codes() -> None:
    # Philips GhsControlPointHandler: START 0x01, STOP 0x02, SUCCESS 0x80, SERVER_BUSY 0x81,
    # ERROR_LIVE_OBSERVATIONS 0x82 (Realtek: START 0x01, STOP 0x02, SUCCESS 0x80).
    op = ghs.GhsControlPointOpCode
    for byte, code in (
        (1, op.START_SEND_LIVE_OBSERVATIONS),
        (2, op.STOP_SEND_LIVE_OBSERVATIONS),
        (0x80, op.SUCCESS),
        (0x81, op.SERVER_BUSY),
        (0x82, op.ERROR_IN_LIVE_OBSERVATIONS),
    ):
        value = ghs.decode_ghs_control_point(bytes([byte]))
        assert value.op_code is code
        assert ghs.encode_ghs_control_point(value) == bytes([byte])
    assert ghs.decode_ghs_control_point(b"\x33").op_code.is_reserved
    with pytest.raises(DecodeError):
        ghs.decode_ghs_control_point(b"\x01\x00")


def test_st_observation_schedule_changed() -> None:
    # ST GHS_APP_UpdateObservationScheduleChanged: SpO2, period and interval 0xFF00000A
    # (FLOAT 10e-1 = 1.0 s).
    data = bytes.fromhex("b84b02000a0000ff0a0000ff")
    schedule = ghs.decode_observation_schedule(data)
    assert schedule.observation_type == MDC_PULS_OXIM_SAT_O2
    assert schedule.measurement_period_s.value == Decimal("1.0")
    assert schedule.update_interval_s.value == Decimal("1.0")
    assert ghs.encode_observation_schedule(schedule) == data
    descriptor = ghs.decode_observation_schedule(
        data, characteristic=numbers.OBSERVATION_SCHEDULE_DESCRIPTOR
    )
    assert descriptor == schedule
    with pytest.raises(DecodeError) as info:
        ghs.decode_observation_schedule(
            data[:-1], characteristic=numbers.OBSERVATION_SCHEDULE_DESCRIPTOR
        )
    assert info.value.characteristic == numbers.OBSERVATION_SCHEDULE_DESCRIPTOR
