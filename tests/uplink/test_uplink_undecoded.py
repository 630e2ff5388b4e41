"""Raw records (protocols/uplink/undecoded.py): built from bytes, carried in a batch, read back."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from protocols.gatt import BLOOD_PRESSURE_MEASUREMENT, uuid128
from protocols.uplink import Priority, WireReading
from protocols.uplink.batch import BatchHeader, encode_body
from protocols.uplink.body import decode_body
from protocols.uplink.undecoded import (
    FLAG_UNDECODED,
    RAW_RECORD_MDC,
    RawRecord,
    is_undecoded,
    raw_fields,
    raw_record,
    raw_stream,
)

DEVICE = "C0:00:00:00:00:85"
#: A Blood Pressure Measurement in the Beurer BM85 layout (docs/protocols/phd.md 6.2): flags
#: 0x56 (RFU bit 6), big-endian pulse rate and status, an unflagged user id (values made up).
BM85 = bytes.fromhex("56 7b00 5100 5f00 ea07 0b16 081e 0f 0048 01 0000".replace(" ", ""))


def _wire(characteristic: int, raw: bytes, t_ms: int = 1_764_000_000_000) -> WireReading:
    special, flags = raw_fields(characteristic, raw)
    return WireReading(
        raw_stream(DEVICE, characteristic), RAW_RECORD_MDC, "", t_ms, None, special, flags, DEVICE
    )


def test_a_raw_record_names_its_characteristic_and_keeps_every_byte() -> None:
    wire = _wire(BLOOD_PRESSURE_MEASUREMENT, BM85)
    assert wire.special == "hex:" + BM85.hex()
    assert wire.flags == {FLAG_UNDECODED, f"gatt-uuid:{uuid128(BLOOD_PRESSURE_MEASUREMENT)}"}
    record = raw_record(wire)
    assert record == RawRecord(DEVICE, uuid128(BLOOD_PRESSURE_MEASUREMENT), wire.t_ms, BM85)
    assert record is not None
    assert record.characteristic == BLOOD_PRESSURE_MEASUREMENT


def test_a_measurement_or_a_malformed_flag_is_no_raw_record() -> None:
    measured = WireReading(f"{DEVICE}/150020", 150020, "mm[Hg]", 1, Decimal(120))
    assert not is_undecoded(measured)
    assert raw_record(measured) is None
    good = _wire(BLOOD_PRESSURE_MEASUREMENT, b"\x01")
    for broken in (
        WireReading(good.stream, 0, "", 1, None, "hex:zz", good.flags, DEVICE),
        WireReading(good.stream, 0, "", 1, None, "01", good.flags, DEVICE),
        WireReading(good.stream, 0, "", 1, None, "hex:01", frozenset({FLAG_UNDECODED}), DEVICE),
    ):
        assert is_undecoded(broken)
        assert raw_record(broken) is None


@given(
    raw=st.binary(max_size=600),
    characteristic=st.integers(0, 0xFFFF),
    t_ms=st.integers(0, 2**48),
)
def test_raw_records_round_trip_through_a_batch(raw: bytes, characteristic: int, t_ms: int) -> None:
    wire = _wire(characteristic, raw, t_ms)
    header = BatchHeader("hub-1", "boot", 1, 2_000, Priority.CLINICAL, 1)
    (back,) = decode_body(encode_body(header, [wire]), "hub-1").readings
    assert raw_record(back) == RawRecord(DEVICE, uuid128(characteristic), t_ms, raw)
