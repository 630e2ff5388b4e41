"""Glucose Service 0x1808: Glucose Measurement 0x2A18, Glucose Measurement Context 0x2A34 and
Glucose Feature 0x2A51 (GLS 1.0; docs/protocols/phd.md 2.5).

Glucose Measurement (GSS 3.106):

====== ==== ============================================================== ==========
Offset Size Field                                                          Present if
====== ==== ============================================================== ==========
0      1    Flags: bit0 time offset, bit1 concentration + type/location,   always
            bit2 unit (0 kg/L, 1 mol/L), bit3 sensor status annunciation,
            bit4 context information follows, bits 5-7 RFU
1      2    Sequence Number (uint16)                                       always
3      7    Base Time (Date Time)                                          always
10     2    Time Offset (sint16, minutes)                                  bit0
+0     2    Glucose Concentration (SFLOAT)                                 bit1
+0     1    Type (low nibble) / Sample Location (high nibble)              bit1
+0     2    Sensor Status Annunciation (bits 12-15 RFU)                    bit3
====== ==== ============================================================== ==========

User-facing time = Base Time + Time Offset. kg/L x 100 000 = mg/dL and mol/L x 1 000 = mmol/L,
exact decimal shifts (real meters send mg/dL values with exponent -5: ``0xB06F`` = 111 mg/dL).

Glucose Measurement Context (GSS 3.107): Flags (bit0 carbohydrate, bit1 meal, bit2
tester-health, bit3 exercise, bit4 medication, bit5 medication unit 0 kg / 1 L, bit6 HbA1c, bit7
extended flags); Sequence Number; [Extended Flags 1 (all bits RFU)]; [Carbohydrate ID 1 +
Carbohydrate SFLOAT kg]; [Meal 1]; [Tester (low nibble) / Health (high nibble) 1]; [Exercise
Duration uint16 s (0xFFFF overrun) + Intensity uint8 %]; [Medication ID 1 + Medication SFLOAT
kg or L]; [HbA1c SFLOAT %].

Glucose Feature (GSS 3.108): uint16, bits 0-10 defined, 11-15 RFU.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import TypeVar

from protocols.errors import EncodeError
from protocols.gatt import observation as obs
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.medfloat import _SFLOAT_CACHE, MedFloat, encode_medfloat16, sfloat_from_raw

GLUCOSE_SERVICE = 0x1808
GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
GLUCOSE_FEATURE = 0x2A51


class GlucoseConcentrationUnit(enum.Enum):
    """Flag bit 2 of Glucose Measurement: the SI unit the concentration is sent in."""

    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


class GlucoseType(enum.IntEnum):
    """Glucose Measurement Type nibble (GSS 3.106.2.5); 0 and 11-15 are reserved."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(enum.IntEnum):
    """Glucose Measurement Sample Location nibble (GSS 3.106.2.6); 0 and 5-14 are reserved."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class GlucoseSensorStatus(enum.IntFlag):
    """Sensor Status Annunciation (GSS 3.106.2.7); bits 12-15 are RFU."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS = 1 << 5
    RESULT_LOWER_THAN_DEVICE_CAN_PROCESS = 1 << 6
    TEMPERATURE_TOO_HIGH = 1 << 7
    TEMPERATURE_TOO_LOW = 1 << 8
    STRIP_PULLED_TOO_SOON = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


_TYPES = {t.value: t for t in GlucoseType}
_LOCATIONS = {loc.value: loc for loc in SampleLocation}
_SENSOR_RFU = 0xF000

_GM_TIME_OFFSET = 0x01
_GM_CONCENTRATION = 0x02
_GM_MOL_PER_L = 0x04
_GM_STATUS = 0x08
_GM_CONTEXT_FOLLOWS = 0x10
_GM_RFU = 0xE0
_GM_NAME = "Glucose Measurement"


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """Glucose Measurement 0x2A18 (GSS 3.106).

    ``concentration`` is in ``concentration_unit`` (kg/L or mol/L as sent); ``type`` and
    ``sample_location`` are present exactly when the concentration is.
    """

    sequence_number: int
    base_time: DateTime
    time_offset_min: int | None = None
    concentration: MedFloat | None = None
    concentration_unit: GlucoseConcentrationUnit = GlucoseConcentrationUnit.KG_PER_L
    type: GlucoseType | None = None
    sample_location: SampleLocation | None = None
    sensor_status_annunciation: GlucoseSensorStatus | None = None
    context_information_follows: bool = False
    corrections: frozenset[str] = frozenset()

    @property
    def user_facing_time(self) -> dt.datetime | None:
        """Base Time + Time Offset, naive device wall clock; ``None`` when not known."""
        base = self.base_time.to_datetime()
        if base is None:
            return None
        return base + dt.timedelta(minutes=self.time_offset_min or 0)

    @property
    def is_control_solution(self) -> bool:
        """A control-solution test: never a patient value."""
        return (
            self.type is GlucoseType.CONTROL_SOLUTION
            or self.sample_location is SampleLocation.CONTROL_SOLUTION
        )


def _gm_layout(flags: int) -> tuple[tuple[str, int], ...]:
    fields: list[tuple[str, int]] = [
        ("Flags", 1),
        ("Sequence Number", 2),
        ("Base Time", DATE_TIME_SIZE),
    ]
    if flags & _GM_TIME_OFFSET:
        fields.append(("Time Offset", 2))
    if flags & _GM_CONCENTRATION:
        fields += [("Glucose Concentration", 2), ("Type-Sample Location", 1)]
    if flags & _GM_STATUS:
        fields.append(("Sensor Status Annunciation", 2))
    return tuple(fields)


_GM_SIZES = tuple(sum(size for _, size in _gm_layout(f)) for f in range(0x20))
_UNITS = (GlucoseConcentrationUnit.KG_PER_L, GlucoseConcentrationUnit.MOL_PER_L)


def _sfloat(data: bytes, offset: int) -> MedFloat:
    raw = data[offset] | data[offset + 1] << 8
    return _SFLOAT_CACHE.get(raw) or sfloat_from_raw(raw)


def decode_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    """Decode 0x2A18 strictly (reserved flags, types, locations and status bits rejected)."""
    c, name = GLUCOSE_MEASUREMENT, _GM_NAME
    n = len(data)
    if not n:
        fail(c, name, "empty value: needs Flags", 0)
    flags = data[0]
    if flags & _GM_RFU:
        fail(c, name, f"reserved flag bits set (0x{flags:02X})", 0)
    if n != _GM_SIZES[flags]:
        raise length_error(c, name, _gm_layout(flags), n)
    sequence = data[1] | data[2] << 8
    base_time = decode_date_time(data, 3, characteristic=c, name=name)
    offset = 10
    time_offset = None
    if flags & _GM_TIME_OFFSET:
        time_offset = int.from_bytes(data[10:12], "little", signed=True)
        offset = 12
    concentration = glucose_type = location = None
    if flags & _GM_CONCENTRATION:
        concentration = _sfloat(data, offset)
        nibbles = data[offset + 2]
        glucose_type = _TYPES.get(nibbles & 0x0F)
        if glucose_type is None:
            fail(c, name, f"reserved glucose Type {nibbles & 0x0F}", offset + 2)
        location = _LOCATIONS.get(nibbles >> 4)
        if location is None:
            fail(c, name, f"reserved Sample Location {nibbles >> 4}", offset + 2)
        offset += 3
    status = None
    if flags & _GM_STATUS:
        raw = data[offset] | data[offset + 1] << 8
        if raw & _SENSOR_RFU:
            fail(c, name, f"reserved Sensor Status bits set (0x{raw:04X})", offset)
        status = GlucoseSensorStatus(raw)
    return GlucoseMeasurement(
        sequence,
        base_time,
        time_offset,
        concentration,
        _UNITS[(flags & _GM_MOL_PER_L) >> 2],
        glucose_type,
        location,
        status,
        bool(flags & _GM_CONTEXT_FOLLOWS),
    )


def encode_glucose_measurement(m: GlucoseMeasurement) -> bytes:
    """Encode 0x2A18; flags follow from which optional fields are set."""
    if not 0 <= m.sequence_number <= 0xFFFF:
        raise EncodeError(_GM_NAME, f"sequence number {m.sequence_number} out of range")
    flags = _GM_MOL_PER_L if m.concentration_unit is GlucoseConcentrationUnit.MOL_PER_L else 0
    if m.context_information_follows:
        flags |= _GM_CONTEXT_FOLLOWS
    tail = b""
    if m.time_offset_min is not None:
        if not -0x8000 <= m.time_offset_min <= 0x7FFF:
            raise EncodeError(_GM_NAME, f"time offset {m.time_offset_min} out of range")
        flags |= _GM_TIME_OFFSET
        tail += m.time_offset_min.to_bytes(2, "little", signed=True)
    present = (m.concentration is not None, m.type is not None, m.sample_location is not None)
    if any(present) and not all(present):
        raise EncodeError(_GM_NAME, "concentration, type and sample location go together")
    if m.concentration is not None and m.type is not None and m.sample_location is not None:
        flags |= _GM_CONCENTRATION
        nibbles = int(GlucoseType(m.type)) | int(SampleLocation(m.sample_location)) << 4
        tail += encode_medfloat16(m.concentration) + bytes((nibbles,))
    if m.sensor_status_annunciation is not None:
        raw = int(m.sensor_status_annunciation)
        if raw & _SENSOR_RFU or raw < 0:
            raise EncodeError(_GM_NAME, f"reserved Sensor Status bits in 0x{raw:04X}")
        flags |= _GM_STATUS
        tail += raw.to_bytes(2, "little")
    return (
        bytes((flags,))
        + m.sequence_number.to_bytes(2, "little")
        + encode_date_time(m.base_time)
        + tail
    )


# MDC code and (mass LOINC, substance LOINC) per glucose type (docs/protocols/phd.md 2.5, 3.2).
_GLUCOSE_CODES: dict[GlucoseType, tuple[int, str | None, str | None]] = {
    GlucoseType.CAPILLARY_WHOLE_BLOOD: (
        obs.MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD,
        "41653-7",
        "14743-9",
    ),
    GlucoseType.CAPILLARY_PLASMA: (obs.MDC_CONC_GLU_CAPILLARY_PLASMA, "41653-7", "14743-9"),
    GlucoseType.VENOUS_WHOLE_BLOOD: (obs.MDC_CONC_GLU_VENOUS_WHOLEBLOOD, "2339-0", "15074-8"),
    GlucoseType.VENOUS_PLASMA: (obs.MDC_CONC_GLU_VENOUS_PLASMA, "2345-7", "14749-6"),
    GlucoseType.ARTERIAL_WHOLE_BLOOD: (obs.MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD, "2339-0", "15074-8"),
    GlucoseType.ARTERIAL_PLASMA: (obs.MDC_CONC_GLU_ARTERIAL_PLASMA, "2345-7", "14749-6"),
    GlucoseType.UNDETERMINED_WHOLE_BLOOD: (
        obs.MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD,
        "2339-0",
        "15074-8",
    ),
    GlucoseType.UNDETERMINED_PLASMA: (obs.MDC_CONC_GLU_UNDETERMINED_PLASMA, "2345-7", "14749-6"),
    GlucoseType.INTERSTITIAL_FLUID: (obs.MDC_CONC_GLU_ISF, None, None),
    GlucoseType.CONTROL_SOLUTION: (obs.MDC_CONC_GLU_CONTROL, None, None),
}


def _kebab(name: str | None) -> str:
    return (name or "").lower().replace("_", "-")


def glucose_observations(m: GlucoseMeasurement) -> list[obs.Observation]:
    """The glucose concentration in mg/dL or mmol/L (exact shift of kg/L or mol/L).

    MDC and LOINC follow the sample type. A control-solution test gets MDC_CONC_GLU_CONTROL,
    no LOINC and the flag ``control-solution``: it must not be uploaded as a patient value.
    Sensor status bits become flags. The time stamp is the user-facing time.
    """
    if m.concentration is None or m.type is None:
        return []
    code, mass_loinc, substance_loinc = _GLUCOSE_CODES[m.type]
    flags = obs.quirk_flags(m.corrections)
    if m.sensor_status_annunciation is not None:
        flags |= {_kebab(member.name) for member in m.sensor_status_annunciation}
    if m.is_control_solution:
        code, mass_loinc, substance_loinc = obs.MDC_CONC_GLU_CONTROL, None, None
        flags |= {"control-solution"}
    timestamp = m.user_facing_time
    if timestamp is None:
        flags |= {"device-time-unknown"}
    if m.concentration_unit is GlucoseConcentrationUnit.KG_PER_L:
        unit, loinc, shift = "mg/dL", mass_loinc, 5
    else:
        unit, loinc, shift = "mmol/L", substance_loinc, 3
    value = None if m.concentration.value is None else m.concentration.value.scaleb(shift)
    return [
        obs.Observation(
            code,
            loinc,
            value,
            None if m.concentration.special is None else m.concentration.special.value,
            unit,
            timestamp=timestamp,
            flags=flags,
            body_site=None if m.sample_location is None else _kebab(m.sample_location.name),
            sequence_number=m.sequence_number,
        )
    ]


# --- Glucose Measurement Context ---------------------------------------------------------------


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
_CX_NAME = "Glucose Measurement Context"


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


def _cx_layout(flags: int) -> tuple[tuple[str, int], ...]:
    fields: list[tuple[str, int]] = [("Flags", 1), ("Sequence Number", 2)]
    if flags & _CX_EXTENDED:
        fields.append(("Extended Flags", 1))
    if flags & _CX_CARBOHYDRATE:
        fields += [("Carbohydrate ID", 1), ("Carbohydrate", 2)]
    if flags & _CX_MEAL:
        fields.append(("Meal", 1))
    if flags & _CX_TESTER_HEALTH:
        fields.append(("Tester-Health", 1))
    if flags & _CX_EXERCISE:
        fields += [("Exercise Duration", 2), ("Exercise Intensity", 1)]
    if flags & _CX_MEDICATION:
        fields += [("Medication ID", 1), ("Medication", 2)]
    if flags & _CX_HBA1C:
        fields.append(("HbA1c", 2))
    return tuple(fields)


_CX_SIZES = tuple(sum(size for _, size in _cx_layout(f)) for f in range(0x100))

_E = TypeVar("_E", CarbohydrateId, Meal, Tester, Health, MedicationId)


def _enum_value(kind: type[_E], raw: int, offset: int, field: str) -> _E:
    try:
        return kind(raw)
    except ValueError:
        fail(GLUCOSE_MEASUREMENT_CONTEXT, _CX_NAME, f"reserved {field} {raw}", offset)


def decode_glucose_measurement_context(data: bytes) -> GlucoseMeasurementContext:
    """Decode 0x2A34 strictly (reserved values and non-zero Extended Flags rejected)."""
    c, name = GLUCOSE_MEASUREMENT_CONTEXT, _CX_NAME
    n = len(data)
    if not n:
        fail(c, name, "empty value: needs Flags", 0)
    flags = data[0]
    if n != _CX_SIZES[flags]:
        raise length_error(c, name, _cx_layout(flags), n)
    sequence = data[1] | data[2] << 8
    offset = 3
    extended = None
    if flags & _CX_EXTENDED:
        extended = data[3]
        if extended:
            fail(c, name, f"reserved Extended Flags bits set (0x{extended:02X})", 3)
        offset = 4
    carb_id = carb = None
    if flags & _CX_CARBOHYDRATE:
        carb_id = _enum_value(CarbohydrateId, data[offset], offset, "Carbohydrate ID")
        carb = _sfloat(data, offset + 1)
        offset += 3
    meal = None
    if flags & _CX_MEAL:
        meal = _enum_value(Meal, data[offset], offset, "Meal")
        offset += 1
    tester = health = None
    if flags & _CX_TESTER_HEALTH:
        tester = _enum_value(Tester, data[offset] & 0x0F, offset, "Tester")
        health = _enum_value(Health, data[offset] >> 4, offset, "Health")
        offset += 1
    duration = intensity = None
    if flags & _CX_EXERCISE:
        duration = data[offset] | data[offset + 1] << 8
        intensity = data[offset + 2]
        if intensity > 100:
            fail(c, name, f"Exercise Intensity {intensity} % out of range", offset + 2)
        offset += 3
    medication_id = medication = None
    if flags & _CX_MEDICATION:
        medication_id = _enum_value(MedicationId, data[offset], offset, "Medication ID")
        medication = _sfloat(data, offset + 1)
        offset += 3
    hba1c = _sfloat(data, offset) if flags & _CX_HBA1C else None
    return GlucoseMeasurementContext(
        sequence_number=sequence,
        carbohydrate_id=carb_id,
        carbohydrate_kg=carb,
        meal=meal,
        tester=tester,
        health=health,
        exercise_duration_s=duration,
        exercise_intensity_percent=intensity,
        medication_id=medication_id,
        medication=medication,
        medication_unit=(
            MedicationUnit.LITERS if flags & _CX_MEDICATION_LITERS else MedicationUnit.KILOGRAMS
        ),
        hba1c_percent=hba1c,
        extended_flags=extended,
    )


def _together(*values: object) -> bool:
    present = [v is not None for v in values]
    if any(present) and not all(present):
        raise EncodeError(_CX_NAME, "paired context fields must be set together")
    return all(present)


def encode_glucose_measurement_context(m: GlucoseMeasurementContext) -> bytes:
    """Encode 0x2A34; flags follow from which optional fields are set."""
    if not 0 <= m.sequence_number <= 0xFFFF:
        raise EncodeError(_CX_NAME, f"sequence number {m.sequence_number} out of range")
    flags = _CX_MEDICATION_LITERS if m.medication_unit is MedicationUnit.LITERS else 0
    body = b""
    if m.extended_flags is not None:
        if m.extended_flags:
            raise EncodeError(_CX_NAME, "Extended Flags bits are all reserved")
        flags |= _CX_EXTENDED
        body += b"\x00"
    if _together(m.carbohydrate_id, m.carbohydrate_kg):
        assert m.carbohydrate_id is not None
        assert m.carbohydrate_kg is not None
        flags |= _CX_CARBOHYDRATE
        body += bytes((int(CarbohydrateId(m.carbohydrate_id)),))
        body += encode_medfloat16(m.carbohydrate_kg)
    if m.meal is not None:
        flags |= _CX_MEAL
        body += bytes((int(Meal(m.meal)),))
    if _together(m.tester, m.health):
        assert m.tester is not None
        assert m.health is not None
        flags |= _CX_TESTER_HEALTH
        body += bytes((int(Tester(m.tester)) | int(Health(m.health)) << 4,))
    if _together(m.exercise_duration_s, m.exercise_intensity_percent):
        assert m.exercise_duration_s is not None
        assert m.exercise_intensity_percent is not None
        duration, intensity = m.exercise_duration_s, m.exercise_intensity_percent
        if not 0 <= duration <= 0xFFFF or not 0 <= intensity <= 100:
            raise EncodeError(_CX_NAME, "exercise duration or intensity out of range")
        flags |= _CX_EXERCISE
        body += m.exercise_duration_s.to_bytes(2, "little")
        body += bytes((m.exercise_intensity_percent,))
    if _together(m.medication_id, m.medication):
        assert m.medication_id is not None
        assert m.medication is not None
        flags |= _CX_MEDICATION
        body += bytes((int(MedicationId(m.medication_id)),)) + encode_medfloat16(m.medication)
    if m.hba1c_percent is not None:
        flags |= _CX_HBA1C
        body += encode_medfloat16(m.hba1c_percent)
    return bytes((flags,)) + m.sequence_number.to_bytes(2, "little") + body


_MEAL_CODES = {
    Meal.PREPRANDIAL: obs.MDC_CTXT_GLU_MEAL_PREPRANDIAL,
    Meal.POSTPRANDIAL: obs.MDC_CTXT_GLU_MEAL_POSTPRANDIAL,
    Meal.FASTING: obs.MDC_CTXT_GLU_MEAL_FASTING,
    Meal.CASUAL: obs.MDC_CTXT_GLU_MEAL_CASUAL,
    # BEDTIME: the MDC code is not verified (docs/protocols/phd.md section 7): not mapped.
}
_TESTER_CODES = {
    Tester.SELF: obs.MDC_CTXT_GLU_TESTER_SELF,
    Tester.HEALTH_CARE_PROFESSIONAL: obs.MDC_CTXT_GLU_TESTER_HCP,
    Tester.LAB_TEST: obs.MDC_CTXT_GLU_TESTER_LAB,
}


def glucose_context_observations(m: GlucoseMeasurementContext) -> list[obs.Observation]:
    """HbA1c (4548-4, %) and the coded meal and tester context (PHD IG coded enumerations).

    Carbohydrate, exercise, medication and health have no verified MDC mapping in the PHD IG
    tables we follow; they stay on the dataclass and produce no observation.
    """
    flags = obs.quirk_flags(m.corrections)
    out = []
    if m.hba1c_percent is not None:
        out.append(
            obs.Observation.from_medfloat(
                obs.MDC_CONC_HBA1C,
                obs.MDC_TABLE[obs.MDC_CONC_HBA1C][1],
                m.hba1c_percent,
                "%",
                flags=flags,
                sequence_number=m.sequence_number,
            )
        )
    for code, value in (
        (obs.MDC_CTXT_GLU_MEAL, None if m.meal is None else _MEAL_CODES.get(m.meal)),
        (obs.MDC_CTXT_GLU_TESTER, None if m.tester is None else _TESTER_CODES.get(m.tester)),
    ):
        if value is not None:
            out.append(
                obs.Observation(
                    code,
                    None,
                    None,
                    None,
                    "",
                    flags=flags,
                    sequence_number=m.sequence_number,
                    coded_value=value,
                )
            )
    return out


# --- Glucose Feature ---------------------------------------------------------------------------


class GlucoseFeatureBits(enum.IntFlag):
    """Glucose Feature bits (GSS 3.108); bits 11-15 are RFU."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    SENSOR_STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    SENSOR_STRIP_TYPE_ERROR_DETECTION = 1 << 4
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 5
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    SENSOR_READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


_FEATURE_RFU = 0xF800


@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    """Glucose Feature 0x2A51 (GSS 3.108)."""

    features: GlucoseFeatureBits


def decode_glucose_feature(data: bytes) -> GlucoseFeature:
    """Decode 0x2A51: exactly 2 bytes, RFU bits rejected."""
    name = "Glucose Feature"
    if len(data) != 2:
        raise length_error(GLUCOSE_FEATURE, name, (("Feature", 2),), len(data))
    raw = data[0] | data[1] << 8
    if raw & _FEATURE_RFU:
        fail(GLUCOSE_FEATURE, name, f"reserved feature bits set (0x{raw:04X})", 0)
    return GlucoseFeature(GlucoseFeatureBits(raw))


def encode_glucose_feature(m: GlucoseFeature) -> bytes:
    """Encode 0x2A51."""
    raw = int(m.features)
    if raw & _FEATURE_RFU or raw < 0:
        raise EncodeError("Glucose Feature", f"reserved bits in 0x{raw:04X}")
    return raw.to_bytes(2, "little")
