"""Joining Blood Pressure Record segments (drivers/ble/bp_records.py; GSS *Blood Pressure
Record*, BLS 1.1.1): any split of a record joins back to it, and segments that do not make one
record are refused with the typed error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.bp_records import RecordAssembler
from protocols.gatt import DecodeError
from protocols.gatt.enhanced_bp import (
    BloodPressureRecord,
    decode_blood_pressure_record,
    encode_blood_pressure_record,
    split_blood_pressure_record,
)
from protocols.gatt.numbers import ENHANCED_BLOOD_PRESSURE_MEASUREMENT

#: An Enhanced BPM: flags 0x46 (time stamp, user id, epoch 2000), 120/80/93 mmHg, a time stamp
#: and user 1 (BLS 1.1.1 layout; the emulated cuff's kind of value).
RECORDED = bytes.fromhex("4678007000800d00") + (848_651_400).to_bytes(4, "little") + b"\x01"


def _wire(record: BloodPressureRecord, part: int, secured: bool) -> list[bytes]:
    segments = split_blood_pressure_record(record, max_part=part, secured=secured)
    return [encode_blood_pressure_record(s) for s in segments]


@given(st.integers(0, 0xFFFF), st.integers(1, 20), st.booleans(), st.integers(0, 63))
def test_any_split_joins_back(sequence: int, part: int, secured: bool, counter: int) -> None:
    record = BloodPressureRecord(sequence, ENHANCED_BLOOD_PRESSURE_MEASUREMENT, RECORDED)
    segments = split_blood_pressure_record(
        record, max_part=part, secured=secured, first_counter=counter
    )
    assembler = RecordAssembler()
    out = [
        assembler.add(
            decode_blood_pressure_record(encode_blood_pressure_record(s), e2e_crc=secured)
        )
        for s in segments
    ]
    *partial, whole = out
    assert partial == [None] * (len(segments) - 1)
    assert whole is not None
    assert whole.complete
    assert (whole.sequence_number, whole.uuid, whole.part) == (
        sequence,
        ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
        RECORDED,
    )


def test_a_lost_first_segment_is_refused() -> None:
    record = BloodPressureRecord(7, ENHANCED_BLOOD_PRESSURE_MEASUREMENT, RECORDED)
    first, last = (decode_blood_pressure_record(v) for v in _wire(record, 10, False))
    assembler = RecordAssembler()
    with pytest.raises(DecodeError, match="first/last"):
        assembler.add(last)
    assert assembler.add(first) is None  # a new record starts afresh
    whole = assembler.add(last)
    assert whole is not None
    assert whole.sequence_number == 7


def test_a_segment_of_another_record_is_refused() -> None:
    a = _wire(BloodPressureRecord(7, ENHANCED_BLOOD_PRESSURE_MEASUREMENT, RECORDED), 10, False)
    b = _wire(BloodPressureRecord(8, ENHANCED_BLOOD_PRESSURE_MEASUREMENT, RECORDED), 10, False)
    assembler = RecordAssembler()
    assembler.add(decode_blood_pressure_record(a[0]))
    with pytest.raises(DecodeError, match="another record") as caught:
        assembler.add(decode_blood_pressure_record(b[1]))
    assert isinstance(caught.value, ValueError)
    assert caught.value.characteristic == 0x2B36


def test_a_wrong_e2e_crc_over_the_segments_is_refused() -> None:
    record = BloodPressureRecord(9, ENHANCED_BLOOD_PRESSURE_MEASUREMENT, RECORDED)
    first, last = _wire(record, 10, True)
    bad_last = last[:-2] + bytes([last[-2] ^ 0xFF, last[-1]])
    assembler = RecordAssembler()
    assembler.add(decode_blood_pressure_record(first, e2e_crc=True))
    with pytest.raises(DecodeError):
        assembler.add(decode_blood_pressure_record(bad_last, e2e_crc=True))
