"""BLS 1.1.1 Enhanced Blood Pressure Measurement, Enhanced ICP and Blood Pressure Record.

bluetooth-sig-python = RonanB96/bluetooth-sig-python at 27bdb3d,
bluetooth-sig-python/tests/gatt/characteristics/test_enhanced_blood_pressure_measurement.py
(valid_test_data); its SFLOATs are written here with exponent 0. No device capture of these
characteristics is public.
"""

from __future__ import annotations

import datetime as dt

import pytest

from protocols.gatt import DecodeError, numbers
from protocols.gatt import enhanced_bp as ebp
from protocols.gatt.blood_pressure import BloodPressureMeasurementStatus, PressureUnit
from protocols.gatt.e2e_crc import E2ECrcError, crc16_mcrf4xx
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.segmentation import SegmentationHeader

# bluetooth-sig-python "All optional fields present, epoch 2000": flags 0x7E, 120/80/100 mmHg,
# time stamp 86400 s, pulse 72, user 5, status 0x0003, user facing time 172800 s.
ALL_FIELDS = bytes.fromhex("7e78005000640080510100480005030000a30200")
# bluetooth-sig-python "mmHg, no optional fields, epoch 1900" and "kPa" (16/11/13).
MINIMAL_1900 = bytes.fromhex("00780050006400")
KPA_1900 = bytes.fromhex("0110000b000d00")


def test_all_fields_epoch_2000() -> None:
    m = ebp.decode_enhanced_blood_pressure_measurement(ALL_FIELDS)
    assert (m.systolic, m.diastolic, m.mean_arterial_pressure) == (
        MedFloat.of(120),
        MedFloat.of(80),
        MedFloat.of(100),
    )
    assert m.unit is PressureUnit.MMHG
    assert m.time_stamp_s == 86400
    assert m.time_stamp == dt.datetime(2000, 1, 2)
    assert m.user_facing_time == dt.datetime(2000, 1, 3)
    assert m.pulse_rate_bpm == MedFloat.of(72)
    assert m.user_id == 5
    status = m.measurement_status
    assert status is not None
    assert status.body_movement_detected
    assert status.cuff_too_loose
    assert m.epoch_start is ebp.EpochStart.YEAR_2000
    assert ebp.encode_enhanced_blood_pressure_measurement(m) == ALL_FIELDS


def test_epoch_1900_and_kpa() -> None:
    m = ebp.decode_enhanced_blood_pressure_measurement(MINIMAL_1900)
    assert m.epoch_start is ebp.EpochStart.YEAR_1900
    assert m.time_stamp is None
    assert ebp.encode_enhanced_blood_pressure_measurement(m) == MINIMAL_1900
    kpa = ebp.decode_enhanced_blood_pressure_measurement(KPA_1900)
    assert kpa.unit is PressureUnit.KPA
    assert kpa.systolic == MedFloat.of(16)
    stamped = ebp.EnhancedBloodPressureMeasurement(
        MedFloat.of(1),
        MedFloat.of(1),
        MedFloat.of(1),
        time_stamp_s=86400,
        epoch_start=ebp.EpochStart.YEAR_1900,
    )
    assert stamped.time_stamp == dt.datetime(1900, 1, 2)


@pytest.mark.parametrize(
    ("data", "offset", "fragment"),
    [
        (b"", 0, "Flags"),
        (bytes([0x80]) + MINIMAL_1900[1:], 0, "reserved flag"),
        (MINIMAL_1900[:5], 5, "truncated SFLOAT 3"),
        (MINIMAL_1900 + b"\x00", 7, "1 trailing"),
        (bytes([0x02]) + MINIMAL_1900[1:] + b"\x00\x00", 7, "truncated Time Stamp"),
        (bytes([0x10]) + MINIMAL_1900[1:] + b"\x18\x00", 7, "pulse rate range 3"),
        (bytes([0x10]) + MINIMAL_1900[1:] + b"\x40\x00", 7, "reserved Measurement Status"),
    ],
)
def test_invalid_enhanced_measurements(data: bytes, offset: int, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        ebp.decode_enhanced_blood_pressure_measurement(data)
    assert info.value.characteristic == numbers.ENHANCED_BLOOD_PRESSURE_MEASUREMENT
    assert info.value.offset == offset
    assert fragment in info.value.reason


def test_enhanced_intermediate_cuff_pressure() -> None:
    icp = ebp.EnhancedIntermediateCuffPressure(
        MedFloat.of(142),
        user_facing_time_s=3600,
        measurement_status=BloodPressureMeasurementStatus(0),
    )
    wire = ebp.encode_enhanced_intermediate_cuff_pressure(icp)
    assert wire == bytes.fromhex("708e000000100e0000")
    assert ebp.decode_enhanced_intermediate_cuff_pressure(wire) == icp
    assert icp.user_facing_time == dt.datetime(2000, 1, 1, 1)


def test_single_segment_record_with_crc() -> None:
    # Header first|last, counter 0; sequence 7; UUID 0x2B34; the bluetooth-sig-python value;
    # the E2E-CRC over everything before it (CGMS 1.0.2 section 3.11 algorithm).
    body = b"\x03" + (7).to_bytes(2, "little") + (0x2B34).to_bytes(2, "little") + ALL_FIELDS
    wire = body + crc16_mcrf4xx(body).to_bytes(2, "little")
    segment = ebp.decode_blood_pressure_record(wire, e2e_crc=True)
    assert segment.complete
    assert segment.sequence_number == 7
    assert segment.part == ALL_FIELDS
    assert segment.secured
    # Without the Feature, a complete Enhanced BPM record's own flags say the CRC is there.
    assert ebp.decode_blood_pressure_record(wire) == segment
    record = ebp.assemble_blood_pressure_record([segment])
    measurement = record.recorded_measurement()
    assert measurement is not None
    assert measurement.user_id == 5
    assert ebp.encode_blood_pressure_record(segment) == wire
    bad = wire[:-1] + bytes([wire[-1] ^ 1])
    with pytest.raises(E2ECrcError) as info:
        ebp.decode_blood_pressure_record(bad, e2e_crc=True)
    assert info.value.characteristic == numbers.BLOOD_PRESSURE_RECORD
    with pytest.raises(DecodeError, match="recorded Enhanced"):
        ebp.decode_blood_pressure_record(body[:-1], e2e_crc=False)


def test_segmented_record_round_trip_and_refusals() -> None:
    record = ebp.BloodPressureRecord(300, 0x2B34, ALL_FIELDS)
    segments = ebp.split_blood_pressure_record(record, max_part=6, secured=True, first_counter=62)
    assert [s.segmentation.counter for s in segments] == [62, 63, 0, 1]
    wires = [ebp.encode_blood_pressure_record(s) for s in segments]
    decoded = [ebp.decode_blood_pressure_record(w, e2e_crc=True) for w in wires]
    assert decoded == segments
    assert ebp.assemble_blood_pressure_record(decoded) == record
    with pytest.raises(DecodeError, match="counter"):
        ebp.assemble_blood_pressure_record([decoded[0], decoded[2], decoded[3]])
    tampered = list(decoded)
    tampered[1] = ebp.BloodPressureRecordSegment(
        tampered[1].segmentation, 300, 0x2B34, b"\x00" * len(tampered[1].part)
    )
    with pytest.raises(E2ECrcError):
        ebp.assemble_blood_pressure_record(tampered)
    other = ebp.BloodPressureRecordSegment(SegmentationHeader(False, False, 63), 301, 0x2B34, b"")
    with pytest.raises(DecodeError, match="another record"):
        ebp.assemble_blood_pressure_record([decoded[0], other, decoded[2], decoded[3]])
