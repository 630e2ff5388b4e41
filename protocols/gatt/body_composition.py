"""Body Composition Service 0x181B (BCS 1.0): Body Composition Measurement 0x2A9C and Body
Composition Feature 0x2A9B.

Body Composition Measurement (GSS *Body Composition Measurement*):

====== ==== ============================================================= ==========
Offset Size Field                                                         Present if
====== ==== ============================================================= ==========
0      2    Flags: bit0 units (0 SI: kg and m, 1 imperial: lb and in),    always
            bit1 time stamp, bit2 user ID, bit3 basal metabolism, bit4
            muscle %, bit5 muscle mass, bit6 fat free mass, bit7 soft lean
            mass, bit8 body water mass, bit9 impedance, bit10 weight,
            bit11 height, bit12 multiple packet measurement, bits 13-15 RFU
2      2    Body Fat Percentage (uint16, 0.1 %; 0xFFFF = measurement       always
            unsuccessful)
+0     7    Time Stamp (Date Time)                                        bit1
+0     1    User ID (0xFF = unknown user)                                 bit2
+0     2    Basal Metabolism (uint16, kJ)                                 bit3
+0     2    Muscle Percentage (uint16, 0.1 %)                             bit4
+0     2    Muscle Mass (uint16: 0.005 kg or 0.01 lb)                     bit5
+0     2    Fat Free Mass (same resolution)                               bit6
+0     2    Soft Lean Mass (same resolution)                              bit7
+0     2    Body Water Mass (same resolution)                             bit8
+0     2    Impedance (uint16, 0.1 ohm)                                   bit9
+0     2    Weight (same resolution as the masses)                        bit10
+0     2    Height (uint16: 0.001 m or 0.1 in)                            bit11
====== ==== ============================================================= ==========

A measurement too large for one value is sent in several, each with its own flags and the
mandatory Body Fat Percentage, and bit 12 set (BCS 1.0 section 3.2.1.1); each value decodes on
its own here, and the session layer joins them. Values are exact :class:`~decimal.Decimal` in
the unit the flags select (:attr:`BodyCompositionMeasurement.mass_unit`).

Body Composition Feature (GSS *Body Composition Feature*): uint32, bits 0-10 what is supported,
bits 11-14 weight resolution and 15-17 height resolution (the Weight Scale Feature's tables),
bits 18-31 RFU.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_FIELD, DateTime
from protocols.gatt.kinds import ByFlag, Scaled, UInt
from protocols.gatt.numbers import BODY_COMPOSITION_FEATURE, BODY_COMPOSITION_MEASUREMENT
from protocols.gatt.registry import REGISTRY, characteristic, codec
from protocols.gatt.schema import Field, Flags, FlagValue, Table
from protocols.gatt.weight import HeightResolution, WeightResolution, WeightUnitSystem

#: Body Fat Percentage value meaning "measurement unsuccessful".
MEASUREMENT_UNSUCCESSFUL = 0xFFFF

_NAME = "Body Composition Measurement"
_FEATURE_NAME = "Body Composition Feature"
_FLAG_IMPERIAL = 0x0001
_FLAG_TIME_STAMP = 0x0002
_FLAG_USER_ID = 0x0004
_FLAG_MULTIPLE_PACKET = 0x1000
_FLAGS_RFU = 0xE000

# Resolutions (GSS *Body Composition Measurement*): percentages and impedance 0.1, basal
# metabolism 1 kJ, masses 0.005 kg or 0.01 lb, height 0.001 m or 0.1 in.
_TENTH = Scaled(1, -1)
_MASS = ByFlag(_FLAG_IMPERIAL, Scaled(5, -3), Scaled(1, -2))
_HEIGHT = ByFlag(_FLAG_IMPERIAL, Scaled(1, -3), Scaled(1, -1))


@characteristic(
    BODY_COMPOSITION_MEASUREMENT,
    _NAME,
    gss="Body Composition Measurement",
    service="BCS 1.0 section 3.2",
    table=Table(
        flags=Flags(rfu=_FLAGS_RFU, size=2),
        fields=(
            Field(
                "Body Fat Percentage",
                Scaled(1, -1, unknown=MEASUREMENT_UNSUCCESSFUL),
                "body_fat_percent",
            ),
            Field("Time Stamp", DATE_TIME_FIELD, "time_stamp", present=_FLAG_TIME_STAMP),
            Field("User ID", UInt(1), "user_id", present=_FLAG_USER_ID),
            Field("Basal Metabolism", Scaled(1, 0), "basal_metabolism_kj", present=0x0008),
            Field("Muscle Percentage", _TENTH, "muscle_percent", present=0x0010),
            Field("Muscle Mass", _MASS, "muscle_mass", present=0x0020),
            Field("Fat Free Mass", _MASS, "fat_free_mass", present=0x0040),
            Field("Soft Lean Mass", _MASS, "soft_lean_mass", present=0x0080),
            Field("Body Water Mass", _MASS, "body_water_mass", present=0x0100),
            Field("Impedance", _TENTH, "impedance_ohm", present=0x0200),
            Field("Weight", _MASS, "weight", present=0x0400),
            Field("Height", _HEIGHT, "height", present=0x0800),
        ),
        flag_values=(
            FlagValue(
                "unit_system", _FLAG_IMPERIAL, WeightUnitSystem.SI, WeightUnitSystem.IMPERIAL
            ),
            FlagValue("multiple_packet_measurement", _FLAG_MULTIPLE_PACKET, False, True),
        ),
    ),
)
@dataclass(frozen=True, slots=True)
class BodyCompositionMeasurement:
    """Body Composition Measurement 0x2A9C (GSS *Body Composition Measurement*).

    ``body_fat_percent`` is ``None`` when the scale reports the measurement unsuccessful
    (0xFFFF). Masses are in :attr:`mass_unit`, height in :attr:`height_unit`.
    """

    body_fat_percent: Decimal | None
    unit_system: WeightUnitSystem = WeightUnitSystem.SI
    time_stamp: DateTime | None = None
    user_id: int | None = None
    basal_metabolism_kj: Decimal | None = None
    muscle_percent: Decimal | None = None
    muscle_mass: Decimal | None = None
    fat_free_mass: Decimal | None = None
    soft_lean_mass: Decimal | None = None
    body_water_mass: Decimal | None = None
    impedance_ohm: Decimal | None = None
    weight: Decimal | None = None
    height: Decimal | None = None
    multiple_packet_measurement: bool = False

    @property
    def mass_unit(self) -> str:
        """UCUM unit of the masses: ``kg`` or ``[lb_av]``."""
        return "kg" if self.unit_system is WeightUnitSystem.SI else "[lb_av]"

    @property
    def height_unit(self) -> str:
        """UCUM unit of the height: ``m`` or ``[in_i]``."""
        return "m" if self.unit_system is WeightUnitSystem.SI else "[in_i]"


_MEASUREMENT = REGISTRY.spec(BODY_COMPOSITION_MEASUREMENT)


def decode_body_composition_measurement(data: bytes) -> BodyCompositionMeasurement:
    """Decode 0x2A9C strictly: RFU flags, truncation and trailing bytes raise."""
    value: BodyCompositionMeasurement = _MEASUREMENT.decode(data)
    return value


def encode_body_composition_measurement(m: BodyCompositionMeasurement) -> bytes:
    """Encode 0x2A9C; flags follow from the fields that are set."""
    return _MEASUREMENT.encode(m)


# --- Body Composition Feature ---------------------------------------------------------------


class BodyCompositionFeatureBits(enum.IntFlag):
    """Body Composition Feature bits 0-10 (GSS *Body Composition Feature*)."""

    TIME_STAMP = 1 << 0
    MULTIPLE_USERS = 1 << 1
    BASAL_METABOLISM = 1 << 2
    MUSCLE_PERCENTAGE = 1 << 3
    MUSCLE_MASS = 1 << 4
    FAT_FREE_MASS = 1 << 5
    SOFT_LEAN_MASS = 1 << 6
    BODY_WATER_MASS = 1 << 7
    IMPEDANCE = 1 << 8
    WEIGHT = 1 << 9
    HEIGHT = 1 << 10


_FEATURE_RFU = 0xFFFC0000
_WEIGHT_RES_SHIFT = 11
_HEIGHT_RES_SHIFT = 15


@dataclass(frozen=True, slots=True)
class BodyCompositionFeature:
    """Body Composition Feature 0x2A9B: what the scale reports, and at what resolution."""

    features: BodyCompositionFeatureBits
    weight_resolution: WeightResolution = WeightResolution.UNSPECIFIED
    height_resolution: HeightResolution = HeightResolution.UNSPECIFIED


_WEIGHT_RESOLUTIONS = {r.value: r for r in WeightResolution}
_HEIGHT_RESOLUTIONS = {r.value: r for r in HeightResolution}


def _decode_feature(data: bytes) -> BodyCompositionFeature:
    """Decode 0x2A9B: exactly 4 bytes; RFU bits and reserved resolutions raise."""
    c, name = BODY_COMPOSITION_FEATURE, _FEATURE_NAME
    if len(data) != 4:
        raise length_error(c, name, (("Body Composition Feature", 4),), len(data))
    raw = int.from_bytes(data, "little")
    if raw & _FEATURE_RFU:
        fail(c, name, f"reserved feature bits set (0x{raw:08X})", 0)
    weight = _WEIGHT_RESOLUTIONS.get((raw >> _WEIGHT_RES_SHIFT) & 0x0F)
    if weight is None:
        fail(c, name, f"reserved weight resolution {(raw >> _WEIGHT_RES_SHIFT) & 0x0F}", 1)
    height = _HEIGHT_RESOLUTIONS.get((raw >> _HEIGHT_RES_SHIFT) & 0x07)
    if height is None:
        fail(c, name, f"reserved height resolution {(raw >> _HEIGHT_RES_SHIFT) & 0x07}", 1)
    return BodyCompositionFeature(BodyCompositionFeatureBits(raw & 0x07FF), weight, height)


def encode_body_composition_feature(value: BodyCompositionFeature) -> bytes:
    """Encode 0x2A9B."""
    bits = int(value.features)
    if not 0 <= bits <= 0x07FF:
        raise EncodeError(_FEATURE_NAME, f"reserved feature bits in 0x{bits:X}")
    raw = (
        bits
        | int(WeightResolution(value.weight_resolution)) << _WEIGHT_RES_SHIFT
        | int(HeightResolution(value.height_resolution)) << _HEIGHT_RES_SHIFT
    )
    return raw.to_bytes(4, "little")


decode_body_composition_feature = codec(
    BODY_COMPOSITION_FEATURE,
    _FEATURE_NAME,
    gss="Body Composition Feature",
    service="BCS 1.0 section 3.1",
    values=(BodyCompositionFeature,),
    encode=encode_body_composition_feature,
)(_decode_feature)
