"""Weight Scale Service 0x181D: Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E (the
wire format; observations are in :mod:`protocols.gatt.mapping.weight`).

GSS section 3.252 *Weight Measurement* (WSS 1.0; docs/protocols/phd.md 2.3):

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
from dataclasses import dataclass
from decimal import Decimal

from protocols.gatt.datetime_ import DATE_TIME_FIELD, DateTime
from protocols.gatt.kinds import ByFlag, Packed, Part, Scaled, UInt
from protocols.gatt.numbers import WEIGHT_MEASUREMENT, WEIGHT_SCALE_FEATURE
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Conflict, Field, Flags, FlagValue, Table

#: Weight field value meaning "Measurement Unsuccessful".
MEASUREMENT_UNSUCCESSFUL = 0xFFFF

_FLAG_IMPERIAL = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_USER_ID = 0x04
_FLAG_BMI_HEIGHT = 0x08
_FLAGS_RFU = 0xF0


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


# Wire resolutions per unit system (GSS 3.252): weight 0.005 kg or 0.01 lb,
# BMI 0.1 kg/m2, height 0.001 m or 0.1 in.
_WEIGHT = ByFlag(
    _FLAG_IMPERIAL,
    Scaled(5, -3, unknown=MEASUREMENT_UNSUCCESSFUL),
    Scaled(1, -2, unknown=MEASUREMENT_UNSUCCESSFUL),
)
_HEIGHT = ByFlag(_FLAG_IMPERIAL, Scaled(1, -3), Scaled(1, -1))


@characteristic(
    WEIGHT_MEASUREMENT,
    "Weight Measurement",
    gss="3.252 Weight Measurement",
    service="WSS 1.0 (Weight Measurement characteristic)",
    table=Table(
        flags=Flags(rfu=_FLAGS_RFU),
        fields=(
            Field("Weight", _WEIGHT, "weight"),
            Field("Time Stamp", DATE_TIME_FIELD, "time_stamp", present=_FLAG_TIME_STAMP),
            Field("User ID", UInt(1), "user_id", present=_FLAG_USER_ID),
            Field("BMI", Scaled(1, -1), "bmi_kg_m2", present=_FLAG_BMI_HEIGHT),
            Field("Height", _HEIGHT, "height", present=_FLAG_BMI_HEIGHT),
        ),
        flag_values=(
            FlagValue(
                "unit_system", _FLAG_IMPERIAL, WeightUnitSystem.SI, WeightUnitSystem.IMPERIAL
            ),
        ),
        conflicts=(
            Conflict(
                "Weight",
                MEASUREMENT_UNSUCCESSFUL,
                _FLAG_BMI_HEIGHT,
                reason="BMI and Height present with an unsuccessful measurement (0xFFFF)",
                encode_reason="no BMI or height with an unsuccessful measurement",
            ),
        ),
    ),
)
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

_FEATURE = Packed(
    4,
    (
        Part(0, 1, bool),
        Part(1, 1, bool),
        Part(2, 1, bool),
        Part(3, 4, WeightResolution, "weight resolution"),
        Part(7, 3, HeightResolution, "height resolution"),
    ),
    rfu=0xFFFFFC00,
    label="feature",
)


@characteristic(
    WEIGHT_SCALE_FEATURE,
    "Weight Scale Feature",
    gss="3.253 Weight Scale Feature",
    service="WSS 1.0 (Weight Scale Feature characteristic)",
    table=Table(
        fields=(
            Field(
                "Feature",
                _FEATURE,
                (
                    "time_stamp_supported",
                    "multiple_users_supported",
                    "bmi_supported",
                    "weight_resolution",
                    "height_resolution",
                ),
            ),
        )
    ),
)
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
