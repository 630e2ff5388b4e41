"""Body Composition Service 1.0 codecs.

bluetooth-sig-python = RonanB96/bluetooth-sig-python at 27bdb3d,
bluetooth-sig-python/tests/gatt/characteristics/test_body_composition_measurement.py,
valid_test_data tests 1-6.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols.gatt import DecodeError, numbers
from protocols.gatt import body_composition as bc
from protocols.gatt.datetime_ import DateTime
from protocols.gatt.weight import HeightResolution, WeightResolution, WeightUnitSystem


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Test 1: basic 5.0 % body fat, SI.
        ("00003200", bc.BodyCompositionMeasurement(Decimal("5.0"))),
        # Test 2: imperial with time stamp 2024-06-20 10:30:00.
        (
            "03009600e80706140a1e00",
            bc.BodyCompositionMeasurement(
                Decimal("15.0"), WeightUnitSystem.IMPERIAL, DateTime(2024, 6, 20, 10, 30, 0)
            ),
        ),
        # Test 3: user 5, basal metabolism 1600 kJ.
        (
            "0c007800054006",
            bc.BodyCompositionMeasurement(
                Decimal("12.0"), user_id=5, basal_metabolism_kj=Decimal(1600)
            ),
        ),
        # Test 4: muscle 20.0 % and 15.000 kg (bit 4 field before bit 5).
        (
            "30006400c800b80b",
            bc.BodyCompositionMeasurement(
                Decimal("10.0"), muscle_percent=Decimal("20.0"), muscle_mass=Decimal("15.000")
            ),
        ),
        # Test 5: fat free 60, soft lean 50, body water 40 kg.
        (
            "c0015000e02e1027401f",
            bc.BodyCompositionMeasurement(
                Decimal("8.0"),
                fat_free_mass=Decimal("60.000"),
                soft_lean_mass=Decimal("50.000"),
                body_water_mass=Decimal("40.000"),
            ),
        ),
        # Test 6: impedance 800.0 ohm, weight 70.000 kg, height 1.000 m.
        (
            "000e4600401fb036e803",
            bc.BodyCompositionMeasurement(
                Decimal("7.0"),
                impedance_ohm=Decimal("800.0"),
                weight=Decimal("70.000"),
                height=Decimal("1.000"),
            ),
        ),
    ],
)
def test_public_vectors(data: str, expected: bc.BodyCompositionMeasurement) -> None:
    raw = bytes.fromhex(data)
    m = bc.decode_body_composition_measurement(raw)
    assert m == expected
    assert repr(m) == repr(expected)  # the same Decimal precision too
    assert bc.encode_body_composition_measurement(m) == raw


def test_unsuccessful_imperial_and_multiple_packet() -> None:
    raw = bytes.fromhex("0114ffffe803")  # imperial, weight, multiple packet; fat 0xFFFF
    m = bc.decode_body_composition_measurement(raw)
    assert m.body_fat_percent is None
    assert m.weight == Decimal("10.00")
    assert m.mass_unit == "[lb_av]"
    assert m.height_unit == "[in_i]"
    assert m.multiple_packet_measurement
    assert bc.encode_body_composition_measurement(m) == raw


@pytest.mark.parametrize(
    ("data", "offset", "fragment"),
    [
        ("00", 0, "truncated Flags"),
        ("00203200", 0, "reserved flag"),
        ("00043200b0", 4, "truncated Weight"),
        ("0000320000", 4, "1 trailing"),
        ("02003200e8070d140a1e00", 6, "month 13"),
    ],
)
def test_invalid_measurements(data: str, offset: int, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        bc.decode_body_composition_measurement(bytes.fromhex(data))
    assert info.value.characteristic == numbers.BODY_COMPOSITION_MEASUREMENT
    assert info.value.offset == offset
    assert fragment in info.value.reason


def test_encoding_refuses_inexact_values() -> None:
    with pytest.raises(ValueError, match=r"Weight 70\.001 is not a multiple of 0\.005"):
        bc.encode_body_composition_measurement(
            bc.BodyCompositionMeasurement(Decimal("5.0"), weight=Decimal("70.001"))
        )


def test_feature() -> None:
    # All eleven fields, weight resolution 0.1 kg (3), height 0.001 m (3).
    raw = (0x07FF | 3 << 11 | 3 << 15).to_bytes(4, "little")
    feature = bc.decode_body_composition_feature(raw)
    assert bc.BodyCompositionFeatureBits.IMPEDANCE in feature.features
    assert feature.weight_resolution is WeightResolution.KG_0_1_LB_0_2
    assert feature.height_resolution is HeightResolution.M_0_001_IN_0_1
    assert bc.encode_body_composition_feature(feature) == raw
    with pytest.raises(DecodeError, match="reserved feature bits"):
        bc.decode_body_composition_feature((1 << 18).to_bytes(4, "little"))
    with pytest.raises(DecodeError, match="weight resolution 8"):
        bc.decode_body_composition_feature((8 << 11).to_bytes(4, "little"))
