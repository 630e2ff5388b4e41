"""Weight Scale Service 0x181D: Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E.

GSS section 3.252 *Weight Measurement* (docs/protocols/phd.md 2.3):

====== ==== ======================================================== ==========
Offset Size Field                                                    Present if
====== ==== ======================================================== ==========
0      1    Flags: bit0 units (0 SI kg/m, 1 imperial lb/in), bit1    always
            time stamp, bit2 user ID, bit3 BMI and height, 4-7 RFU
1      2    Weight (uint16): SI 0.005 kg, imperial 0.01 lb;          always
            0xFFFF = "Measurement Unsuccessful"
3      7    Time Stamp (Date Time)                                   bit1
+0     1    User ID (0xFF = unknown user)                            bit2
+0     2    BMI (uint16, 0.1 kg/m2)                                  bit3
+0     2    Height (uint16): SI 0.001 m, imperial 0.1 in             bit3
====== ==== ======================================================== ==========

"If [0xFFFF] is used, all optional fields other than the Time Stamp field and the User ID field
shall be disabled" (GSS 3.252.2.2): strictly, BMI and height with 0xFFFF is an error.

The Weight Scale Feature resolution describes precision only; the Weight field LSB is always
0.005 kg / 0.01 lb (docs/protocols/phd.md 2.3: a real A&D UC-352BLE sends 13140 -> 65.70 kg).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from decimal import Decimal

from protocols.errors import EncodeError
from protocols.gatt import observation as obs
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, build_date_time, encode_date_time

WEIGHT_SCALE_SERVICE = 0x181D
WEIGHT_MEASUREMENT = 0x2A9D
WEIGHT_SCALE_FEATURE = 0x2A9E

#: Weight field value meaning "Measurement Unsuccessful".
MEASUREMENT_UNSUCCESSFUL = 0xFFFF

_FLAG_IMPERIAL = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_USER_ID = 0x04
_FLAG_BMI_HEIGHT = 0x08
_FLAGS_RFU = 0xF0
_NAME = "Weight Measurement"


class WeightUnitSystem(enum.Enum):
    """Flag bit 0: SI (kg, m) or imperial (lb, in)."""

    SI = 0
    IMPERIAL = 1

    @property
    def weight_unit(self) -> str:
        """UCUM unit of the weight."""
        return "kg" if self is WeightUnitSystem.SI else "[lb_av]"

    @property
    def height_unit(self) -> str:
        """UCUM unit of the height as sent (m or inch)."""
        return "m" if self is WeightUnitSystem.SI else "[in_i]"


_SYSTEMS = (WeightUnitSystem.SI, WeightUnitSystem.IMPERIAL)
# Wire resolutions: (weight LSB exponent-scaled as (multiplier, exponent)), per unit system.
_WEIGHT_LSB = {WeightUnitSystem.SI: (5, -3), WeightUnitSystem.IMPERIAL: (1, -2)}
_HEIGHT_EXP = {WeightUnitSystem.SI: -3, WeightUnitSystem.IMPERIAL: -1}
_BMI_EXP = -1


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """Weight Measurement 0x2A9D (GSS 3.252).

    ``weight`` is in ``unit_system.weight_unit`` (kg or lb), ``None`` for "Measurement
    Unsuccessful"; ``height`` in ``unit_system.height_unit`` (m or in); ``bmi_kg_m2`` in kg/m2.
    BMI and height are both present or both absent.
    """

    weight: Decimal | None
    unit_system: WeightUnitSystem = WeightUnitSystem.SI
    time_stamp: DateTime | None = None
    user_id: int | None = None
    bmi_kg_m2: Decimal | None = None
    height: Decimal | None = None
    corrections: frozenset[str] = frozenset()


def _layout(flags: int) -> tuple[tuple[str, int], ...]:
    fields: list[tuple[str, int]] = [("Flags", 1), ("Weight", 2)]
    if flags & _FLAG_TIME_STAMP:
        fields.append(("Time Stamp", DATE_TIME_SIZE))
    if flags & _FLAG_USER_ID:
        fields.append(("User ID", 1))
    if flags & _FLAG_BMI_HEIGHT:
        fields += [("BMI", 2), ("Height", 2)]
    return tuple(fields)


def _struct(flags: int) -> struct.Struct:
    fmt = "<BH"
    if flags & _FLAG_TIME_STAMP:
        fmt += "HBBBBB"
    if flags & _FLAG_USER_ID:
        fmt += "B"
    if flags & _FLAG_BMI_HEIGHT:
        fmt += "HH"
    return struct.Struct(fmt)


_PLANS = tuple(_struct(f) for f in range(0x10))


def _scaled(raw: int, multiplier: int, exponent: int) -> Decimal:
    return Decimal(raw * multiplier).scaleb(exponent)


def decode_weight_measurement(data: bytes) -> WeightMeasurement:
    """Decode 0x2A9D strictly."""
    n = len(data)
    if not n:
        fail(WEIGHT_MEASUREMENT, _NAME, "empty value: needs Flags", 0)
    flags = data[0]
    if flags & _FLAGS_RFU:
        fail(WEIGHT_MEASUREMENT, _NAME, f"reserved flag bits set (0x{flags:02X})", 0)
    unpacker = _PLANS[flags]
    if n != unpacker.size:
        raise length_error(WEIGHT_MEASUREMENT, _NAME, _layout(flags), n)
    values = unpacker.unpack(data)
    system = _SYSTEMS[flags & _FLAG_IMPERIAL]
    raw_weight = values[1]
    i = 2
    time_stamp = None
    if flags & _FLAG_TIME_STAMP:
        time_stamp = build_date_time(
            *values[2:8], characteristic=WEIGHT_MEASUREMENT, name=_NAME, offset=3
        )
        i = 8
    user_id = None
    if flags & _FLAG_USER_ID:
        user_id = values[i]
        i += 1
    bmi = height = None
    if flags & _FLAG_BMI_HEIGHT:
        if raw_weight == MEASUREMENT_UNSUCCESSFUL:
            fail(
                WEIGHT_MEASUREMENT,
                _NAME,
                "BMI and Height present with an unsuccessful measurement (0xFFFF)",
                0,
            )
        bmi = Decimal(values[i]).scaleb(_BMI_EXP)
        height = Decimal(values[i + 1]).scaleb(_HEIGHT_EXP[system])
    weight = None
    if raw_weight != MEASUREMENT_UNSUCCESSFUL:
        weight = _scaled(raw_weight, *_WEIGHT_LSB[system])
    return WeightMeasurement(weight, system, time_stamp, user_id, bmi, height)


def _raw(what: str, value: Decimal, lsb: Decimal, maximum: int) -> int:
    count = value / lsb
    if count != count.to_integral_value() or not 0 <= count <= maximum:
        raise EncodeError(_NAME, f"{what} {value} is not a multiple of {lsb} in range")
    return int(count)


def encode_weight_measurement(m: WeightMeasurement) -> bytes:
    """Encode 0x2A9D; values must be exact multiples of the wire resolution."""
    system = m.unit_system
    flags = _FLAG_IMPERIAL if system is WeightUnitSystem.IMPERIAL else 0
    multiplier, exponent = _WEIGHT_LSB[system]
    if m.weight is None:
        raw_weight = MEASUREMENT_UNSUCCESSFUL
    else:
        lsb = Decimal(multiplier).scaleb(exponent)
        raw_weight = _raw("weight", m.weight, lsb, MEASUREMENT_UNSUCCESSFUL - 1)
    tail = b""
    if m.time_stamp is not None:
        flags |= _FLAG_TIME_STAMP
        tail += encode_date_time(m.time_stamp)
    if m.user_id is not None:
        if not 0 <= m.user_id <= 0xFF:
            raise EncodeError(_NAME, f"user ID {m.user_id} out of range")
        flags |= _FLAG_USER_ID
        tail += bytes((m.user_id,))
    if (m.bmi_kg_m2 is None) != (m.height is None):
        raise EncodeError(_NAME, "BMI and height go together")
    if m.bmi_kg_m2 is not None and m.height is not None:
        if m.weight is None:
            raise EncodeError(_NAME, "no BMI or height with an unsuccessful measurement")
        flags |= _FLAG_BMI_HEIGHT
        bmi = _raw("BMI", m.bmi_kg_m2, Decimal(1).scaleb(_BMI_EXP), 0xFFFF)
        height = _raw("height", m.height, Decimal(1).scaleb(_HEIGHT_EXP[system]), 0xFFFF)
        tail += struct.pack("<HH", bmi, height)
    return bytes((flags,)) + raw_weight.to_bytes(2, "little") + tail


def weight_observations(m: WeightMeasurement) -> list[obs.Observation]:
    """Body weight (29463-7), and height (8302-2, SI in cm) and BMI (39156-5) when sent.

    An unsuccessful measurement becomes a weight observation with special ``"nan"`` and the
    flag ``measurement-unsuccessful`` (the PHD IG's dataAbsentReason route), never a number.
    """
    flags = obs.quirk_flags(m.corrections)
    timestamp = None
    if m.time_stamp is not None:
        timestamp = m.time_stamp.to_datetime()
        if timestamp is None:
            flags |= {"device-time-unknown"}
    system = m.unit_system
    weight_code = obs.MDC_MASS_BODY_ACTUAL
    out = [
        obs.Observation(
            weight_code,
            obs.MDC_TABLE[weight_code][1],
            m.weight,
            None if m.weight is not None else "nan",
            system.weight_unit,
            timestamp=timestamp,
            flags=flags if m.weight is not None else flags | {"measurement-unsuccessful"},
            user_id=m.user_id,
        )
    ]
    if m.height is not None:
        # The PHD IG table sends SI height in cm: an exact decimal shift.
        value, unit = (
            (m.height.scaleb(2), "cm") if system is WeightUnitSystem.SI else (m.height, "[in_i]")
        )
        code = obs.MDC_LEN_BODY_ACTUAL
        out.append(
            obs.Observation(
                code,
                obs.MDC_TABLE[code][1],
                value,
                None,
                unit,
                timestamp=timestamp,
                flags=flags,
                user_id=m.user_id,
            )
        )
    if m.bmi_kg_m2 is not None:
        code = obs.MDC_RATIO_MASS_BODY_LEN_SQ
        out.append(
            obs.Observation(
                code,
                obs.MDC_TABLE[code][1],
                m.bmi_kg_m2,
                None,
                "kg/m2",
                timestamp=timestamp,
                flags=flags,
                user_id=m.user_id,
            )
        )
    return out


# --- Weight Scale Feature ----------------------------------------------------------------------


class WeightResolution(enum.IntEnum):
    """Weight Scale Feature bits 3-6 (GSS 3.253); 8-15 are reserved."""

    UNSPECIFIED = 0
    KG_0_5_LB_1 = 1
    KG_0_2_LB_0_5 = 2
    KG_0_1_LB_0_2 = 3
    KG_0_05_LB_0_1 = 4
    KG_0_02_LB_0_05 = 5
    KG_0_01_LB_0_02 = 6
    KG_0_005_LB_0_01 = 7


class HeightResolution(enum.IntEnum):
    """Weight Scale Feature bits 7-9 (GSS 3.253); 4-7 are reserved."""

    UNSPECIFIED = 0
    M_0_01_IN_1 = 1
    M_0_005_IN_0_5 = 2
    M_0_001_IN_0_1 = 3


_WEIGHT_RESOLUTIONS: dict[WeightResolution, tuple[str, str]] = {
    WeightResolution.KG_0_5_LB_1: ("0.5", "1"),
    WeightResolution.KG_0_2_LB_0_5: ("0.2", "0.5"),
    WeightResolution.KG_0_1_LB_0_2: ("0.1", "0.2"),
    WeightResolution.KG_0_05_LB_0_1: ("0.05", "0.1"),
    WeightResolution.KG_0_02_LB_0_05: ("0.02", "0.05"),
    WeightResolution.KG_0_01_LB_0_02: ("0.01", "0.02"),
    WeightResolution.KG_0_005_LB_0_01: ("0.005", "0.01"),
}
_HEIGHT_RESOLUTIONS: dict[HeightResolution, tuple[str, str]] = {
    HeightResolution.M_0_01_IN_1: ("0.01", "1"),
    HeightResolution.M_0_005_IN_0_5: ("0.005", "0.5"),
    HeightResolution.M_0_001_IN_0_1: ("0.001", "0.1"),
}

_FEATURE_RFU = 0xFFFFFC00


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    """Weight Scale Feature 0x2A9E (GSS 3.253): supported fields and display resolutions."""

    time_stamp_supported: bool = False
    multiple_users_supported: bool = False
    bmi_supported: bool = False
    weight_resolution: WeightResolution = WeightResolution.UNSPECIFIED
    height_resolution: HeightResolution = HeightResolution.UNSPECIFIED

    def weight_resolution_value(self, system: WeightUnitSystem) -> Decimal | None:
        """The display resolution in kg or lb (precision only, not the wire LSB)."""
        pair = _WEIGHT_RESOLUTIONS.get(self.weight_resolution)
        return None if pair is None else Decimal(pair[system.value])

    def height_resolution_value(self, system: WeightUnitSystem) -> Decimal | None:
        """The display resolution in m or in (precision only, not the wire LSB)."""
        pair = _HEIGHT_RESOLUTIONS.get(self.height_resolution)
        return None if pair is None else Decimal(pair[system.value])


def decode_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    """Decode 0x2A9E: exactly 4 bytes; reserved bits and resolutions are rejected."""
    name = "Weight Scale Feature"
    if len(data) != 4:
        raise length_error(WEIGHT_SCALE_FEATURE, name, (("Feature", 4),), len(data))
    raw = int.from_bytes(data, "little")
    if raw & _FEATURE_RFU:
        fail(WEIGHT_SCALE_FEATURE, name, f"reserved feature bits set (0x{raw:08X})", 0)
    weight_res = (raw >> 3) & 0x0F
    height_res = (raw >> 7) & 0x07
    if weight_res > 7:
        fail(WEIGHT_SCALE_FEATURE, name, f"reserved weight resolution {weight_res}", 0)
    if height_res > 3:
        fail(WEIGHT_SCALE_FEATURE, name, f"reserved height resolution {height_res}", 0)
    return WeightScaleFeature(
        time_stamp_supported=bool(raw & 0x01),
        multiple_users_supported=bool(raw & 0x02),
        bmi_supported=bool(raw & 0x04),
        weight_resolution=WeightResolution(weight_res),
        height_resolution=HeightResolution(height_res),
    )


def encode_weight_scale_feature(m: WeightScaleFeature) -> bytes:
    """Encode 0x2A9E."""
    raw = (
        int(m.time_stamp_supported)
        | int(m.multiple_users_supported) << 1
        | int(m.bmi_supported) << 2
        | int(WeightResolution(m.weight_resolution)) << 3
        | int(HeightResolution(m.height_resolution)) << 7
    )
    return raw.to_bytes(4, "little")
