"""Glucose Measurement Context 0x2A34 (GSS 3.107; GLS 1.0; docs/protocols/phd.md 2.5), joined
to its Glucose Measurement by sequence number (the wire format; observations are in
:mod:`protocols.gatt.mapping.glucose`).

Flags (bit0 carbohydrate, bit1 meal, bit2 tester-health, bit3 exercise, bit4 medication, bit5
medication unit 0 kg / 1 L, bit6 HbA1c, bit7 extended flags); Sequence Number; [Extended Flags
1 (all bits RFU)]; [Carbohydrate ID 1 + Carbohydrate SFLOAT kg]; [Meal 1]; [Tester (low
nibble) / Health (high nibble) 1]; [Exercise Duration uint16 s (0xFFFF overrun) + Intensity
uint8 %]; [Medication ID 1 + Medication SFLOAT kg or L]; [HbA1c SFLOAT %].
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.gatt.kinds import SFLOAT, Bits, Enumerated, Packed, Part, UInt
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.numbers import GLUCOSE_MEASUREMENT_CONTEXT
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import Field, Flags, FlagValue, Table


class CarbohydrateId(enum.IntEnum):
    """Carbohydrate ID (GSS 3.107.2.4); 0 and 8-255 are reserved."""

    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(enum.IntEnum):
    """Meal (GSS 3.107.2.6); 0 and 6-255 are reserved."""

    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


class Tester(enum.IntEnum):
    """Tester nibble (GSS 3.107.2.7); 0 and 4-14 are reserved."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(enum.IntEnum):
    """Health nibble (GSS 3.107.2.8); 0 and 6-14 are reserved."""

    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(enum.IntEnum):
    """Medication ID (GSS 3.107.2.11); 0 and 6-255 are reserved."""

    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


class MedicationUnit(enum.Enum):
    """Context flag bit 5: medication in kilograms or litres."""

    KILOGRAMS = "kg"
    LITERS = "L"


#: Exercise Duration value meaning "overrun" (GSS 3.107.2.9).
EXERCISE_DURATION_OVERRUN = 0xFFFF

_CX_CARBOHYDRATE = 0x01
_CX_MEAL = 0x02
_CX_TESTER_HEALTH = 0x04
_CX_EXERCISE = 0x08
_CX_MEDICATION = 0x10
_CX_MEDICATION_LITERS = 0x20
_CX_HBA1C = 0x40
_CX_EXTENDED = 0x80

_TESTER_HEALTH = Packed(1, (Part(0, 4, Tester, "Tester"), Part(4, 4, Health, "Health")))
_INTENSITY = UInt(1, maximum=100, reason="Exercise Intensity {value} % out of range")


@characteristic(
    GLUCOSE_MEASUREMENT_CONTEXT,
    "Glucose Measurement Context",
    gss="3.107 Glucose Measurement Context",
    service="GLS 1.0 (Glucose Measurement Context characteristic)",
    table=Table(
        flags=Flags(rfu=0),
        fields=(
            Field("Sequence Number", UInt(2), "sequence_number"),
            Field(
                "Extended Flags",
                Bits(int, size=1, rfu=0xFF, label="Extended Flags"),
                "extended_flags",
                present=_CX_EXTENDED,
            ),
            Field(
                "Carbohydrate ID",
                Enumerated(CarbohydrateId, "Carbohydrate ID"),
                "carbohydrate_id",
                present=_CX_CARBOHYDRATE,
            ),
            Field("Carbohydrate", SFLOAT, "carbohydrate_kg", present=_CX_CARBOHYDRATE),
            Field("Meal", Enumerated(Meal, "Meal"), "meal", present=_CX_MEAL),
            Field("Tester-Health", _TESTER_HEALTH, ("tester", "health"), _CX_TESTER_HEALTH),
            Field("Exercise Duration", UInt(2), "exercise_duration_s", present=_CX_EXERCISE),
            Field("Exercise Intensity", _INTENSITY, "exercise_intensity_percent", _CX_EXERCISE),
            Field(
                "Medication ID",
                Enumerated(MedicationId, "Medication ID"),
                "medication_id",
                present=_CX_MEDICATION,
            ),
            Field("Medication", SFLOAT, "medication", present=_CX_MEDICATION),
            Field("HbA1c", SFLOAT, "hba1c_percent", present=_CX_HBA1C),
        ),
        flag_values=(
            FlagValue(
                "medication_unit",
                _CX_MEDICATION_LITERS,
                MedicationUnit.KILOGRAMS,
                MedicationUnit.LITERS,
            ),
        ),
    ),
)
@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """Glucose Measurement Context 0x2A34 (GSS 3.107); joined to its measurement by sequence
    number. Pairs (carbohydrate, tester/health, exercise, medication) are set together."""

    sequence_number: int
    carbohydrate_id: CarbohydrateId | None = None
    carbohydrate_kg: MedFloat | None = None
    meal: Meal | None = None
    tester: Tester | None = None
    health: Health | None = None
    exercise_duration_s: int | None = None
    exercise_intensity_percent: int | None = None
    medication_id: MedicationId | None = None
    medication: MedFloat | None = None
    medication_unit: MedicationUnit = MedicationUnit.KILOGRAMS
    hba1c_percent: MedFloat | None = None
    extended_flags: int | None = None
    corrections: frozenset[str] = frozenset()
