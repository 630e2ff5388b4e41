"""Blood pressure observations (PHD IG: MDC_PRESS_BLD_NONINV, LOINC 85354-9, and the cuff's
pulse rate MDC_PULS_RATE_NON_INV)."""

from __future__ import annotations

from protocols.gatt import observation as obs
from protocols.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    PulseRateRange,
)
from protocols.gatt.registry import observations


def status_flags(status: BloodPressureMeasurementStatus) -> frozenset[str]:
    """The set Measurement Status conditions (GSS 3.31.2.6) as observation flag names."""
    names = set()
    if status.body_movement_detected:
        names.add("body-movement-detected")
    if status.cuff_too_loose:
        names.add("cuff-too-loose")
    if status.irregular_pulse_detected:
        names.add("irregular-pulse-detected")
    if status.pulse_rate_range is PulseRateRange.EXCEEDS_UPPER_LIMIT:
        names.add("pulse-rate-exceeds-upper-limit")
    elif status.pulse_rate_range is PulseRateRange.BELOW_LOWER_LIMIT:
        names.add("pulse-rate-below-lower-limit")
    if status.improper_measurement_position:
        names.add("improper-measurement-position")
    return frozenset(names)


@observations(BloodPressureMeasurement)
def blood_pressure_observations(m: BloodPressureMeasurement) -> list[obs.Observation]:
    """Systolic, diastolic and mean (components of MDC_PRESS_BLD_NONINV, LOINC 85354-9) and the
    cuff's pulse rate (MDC_PULS_RATE_NON_INV, a separate observation per the PHD IG).

    A mean arterial pressure of exactly 0 is "not provided" (the Beurer BM85 sends 0 in the
    mandatory field; docs/protocols/phd.md 2.1) and yields no observation. Status bits become
    flags on every observation. Intermediate Cuff Pressure is display-only and has no mapping.
    """
    flags = obs.quirk_flags(m.corrections)
    if m.measurement_status is not None:
        flags |= status_flags(m.measurement_status)
    timestamp, flags = obs.device_time(m.time_stamp, flags)
    unit = m.unit.value
    out = []
    components = (
        (obs.MDC_PRESS_BLD_NONINV_SYS, m.systolic),
        (obs.MDC_PRESS_BLD_NONINV_DIA, m.diastolic),
        (obs.MDC_PRESS_BLD_NONINV_MEAN, m.mean_arterial_pressure),
    )
    for code, value in components:
        if code == obs.MDC_PRESS_BLD_NONINV_MEAN and value.value is not None and not value.value:
            continue
        out.append(
            obs.Observation.from_medfloat(
                code,
                obs.MDC_TABLE[code][1],
                value,
                unit,
                timestamp=timestamp,
                flags=flags | {f"component-of:{obs.MDC_PRESS_BLD_NONINV}"},
                user_id=m.user_id,
            )
        )
    if m.pulse_rate_bpm is not None:
        out.append(
            obs.Observation.from_medfloat(
                obs.MDC_PULS_RATE_NON_INV,
                obs.LOINC_HEART_RATE,
                m.pulse_rate_bpm,
                "/min",
                timestamp=timestamp,
                flags=flags,
                user_id=m.user_id,
            )
        )
    return out
