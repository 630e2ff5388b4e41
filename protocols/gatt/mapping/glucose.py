"""Glucose observations (PHD IG: MDC_CONC_GLU_* by sample type with the mass or substance
LOINC; HbA1c and the coded meal and tester context)."""

from __future__ import annotations

from protocols.gatt import observation as obs
from protocols.gatt.glucose import GlucoseConcentrationUnit, GlucoseMeasurement, GlucoseType
from protocols.gatt.glucose_context import GlucoseMeasurementContext, Meal, Tester
from protocols.gatt.registry import observations

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
    GlucoseType.INTERSTITIAL_FLUID: (
        obs.MDC_CONC_GLU_ISF,
        obs.LOINC_GLUCOSE_ISF_MASS,
        obs.LOINC_GLUCOSE_ISF_SUBSTANCE,
    ),
    GlucoseType.CONTROL_SOLUTION: (obs.MDC_CONC_GLU_CONTROL, None, None),
}


def _kebab(name: str | None) -> str:
    return (name or "").lower().replace("_", "-")


@observations(GlucoseMeasurement)
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


@observations(GlucoseMeasurementContext)
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
