"""SFLOAT / FLOAT vectors (IEEE 11073-20601 F.8) and the exhaustive SFLOAT bijection."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import gatt as g
from protocols.errors import EncodeError
from protocols.gatt.medfloat import float_from_raw, sfloat_from_raw

# HL7 FHIR PHD IG "FLOATs" page (values and precision), as tabled in docs/protocols/phd.md 1.3.
# str() pins the precision: 2 and 2.0 are equal Decimals but not the same reading.
SFLOAT_VECTORS = [
    ("0200", "2"),  # IG: 0x0002 -> 2
    ("14f0", "2.0"),  # IG: 0xF014 -> 2.0
    ("c8e0", "2.00"),  # IG: 0xE0C8 -> 2.00
    ("0210", "2E+1"),  # IG: 0x1002 -> 20 (one significant digit)
    ("bdf0", "18.9"),  # docs/protocols/phd.md 1.3 worked example 0xF0BD
    ("01fe", "-51.1"),  # docs/protocols/phd.md 1.3 worked example 0xFE01
    ("7800", "120"),  # real cuffs send 120 mmHg as 78 00 (docs/protocols/phd.md 1.3)
    ("7880", "1.20E-6"),  # biased-exponent trap: 0x8078 is 120e-8, not 120 (vector bpm-biased-...)
    # SpeziBluetooth MedFloatTests.testBasicRepresentations (exponent, mantissa) pairs:
    ("7b30", "1.23E+5"),  # exponent 3, mantissa 123 -> 123000
    ("d2e4", "12.34"),  # exponent -2, mantissa 1234
    ("0c90", "0.0000012"),  # exponent -7, mantissa 12
    ("d204", "1234"),  # exponent 0, mantissa 1234
    ("853f", "-1.23E+5"),  # exponent 3, mantissa -123
]


@pytest.mark.parametrize(("wire", "text"), SFLOAT_VECTORS)
def test_sfloat_vectors(wire: str, text: str) -> None:
    m = g.medfloat16(bytes.fromhex(wire))
    assert m.special is None
    assert m.value == Decimal(text)
    assert str(m.value) == str(Decimal(text))
    assert g.encode_medfloat16(m) == bytes.fromhex(wire)


def test_sfloat_precision_is_kept_not_normalised() -> None:
    two, two_point_zero = g.medfloat16(bytes.fromhex("0200")), g.medfloat16(bytes.fromhex("14f0"))
    assert str(two.value) == "2"
    assert str(two_point_zero.value) == "2.0"
    assert g.encode_medfloat16(two) != g.encode_medfloat16(two_point_zero)


# Special values (HL7 PHD IG FLOATs table; docs/protocols/phd.md 1.3): exact raw values, exponent 0.
SPECIALS = [
    ("ff07", "ffff7f00", g.Special.NAN, "nan"),
    ("0008", "00008000", g.Special.NRES, "nres"),
    ("fe07", "feff7f00", g.Special.POS_INF, "+inf"),
    ("0208", "02008000", g.Special.NEG_INF, "-inf"),
    ("0108", "01008000", g.Special.RESERVED, "reserved"),
]


@pytest.mark.parametrize(("sfloat", "float_", "special", "name"), SPECIALS)
def test_special_values(sfloat: str, float_: str, special: g.Special, name: str) -> None:
    for decode, encode, wire in (
        (g.medfloat16, g.encode_medfloat16, sfloat),
        (g.medfloat32, g.encode_medfloat32, float_),
    ):
        m = decode(bytes.fromhex(wire))
        assert m.value is None
        assert m.special is special
        assert special.value == name
        assert encode(m) == bytes.fromhex(wire)


def test_special_lookalikes_with_nonzero_exponent_are_numbers() -> None:
    # Only exponent 0 makes a special: 0xF7FF is 2047e-1, 0xF800 is -2048e-1.
    assert g.medfloat16(bytes.fromhex("fff7")).value == Decimal("204.7")
    assert g.medfloat16(bytes.fromhex("00f8")).value == Decimal("-204.8")


FLOAT_VECTORS = [
    ("b00e00fe", "37.60"),  # docs/protocols/phd.md 1.3 / Nordic temperature test: 0xFE000EB0
    ("02000001", "2E+1"),  # IG: 0x01000002 -> 20 (the IG table's 4098 is a typo)
    ("72010000", "370"),  # the biased-exponent trap 0x7F000172 is not 37.0 ...
    ("7201007f", "3.70E+129"),  # ... exponent 0x7F is +127
]


@pytest.mark.parametrize(("wire", "text"), FLOAT_VECTORS)
def test_float_vectors(wire: str, text: str) -> None:
    m = g.medfloat32(bytes.fromhex(wire))
    assert str(m.value) == str(Decimal(text))
    assert g.encode_medfloat32(m) == bytes.fromhex(wire)


def test_sfloat_is_a_bijection_on_all_65536_values() -> None:
    for raw in range(0x10000):
        m = sfloat_from_raw(raw)
        assert g.encode_medfloat16(m) == raw.to_bytes(2, "little"), hex(raw)


@given(st.integers(0, 0xFFFFFFFF))
def test_float_round_trip_is_exact(raw: int) -> None:
    m = float_from_raw(raw)
    assert g.encode_medfloat32(m) == raw.to_bytes(4, "little")
    assert g.medfloat32(raw.to_bytes(4, "little")) == m


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
def test_wrong_lengths_are_decode_errors(data: bytes) -> None:
    with pytest.raises(g.DecodeError):
        g.medfloat16(data)
    with pytest.raises(g.DecodeError):
        g.medfloat32(data)


@pytest.mark.parametrize("value", ["2047", "2046", "-2046", "-2047", "-2048", "1E+8", "0.12345"])
def test_unrepresentable_or_colliding_values_are_encode_errors(value: str) -> None:
    with pytest.raises(EncodeError):
        g.encode_medfloat16(g.MedFloat.of(value))


def test_lossless_normalisation_on_encode() -> None:
    # 20400 does not fit a 12-bit mantissa; its trailing zero moves into the exponent: 2040e1.
    assert g.encode_medfloat16(g.MedFloat.of("20400")) == bytes.fromhex("f817")
