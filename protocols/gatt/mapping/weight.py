"""Body weight, height and BMI observations (PHD IG: 29463-7, 8302-2, 39156-5)."""

from __future__ import annotations

from protocols.gatt import observation as obs
from protocols.gatt.registry import observations
from protocols.gatt.weight import WeightMeasurement, WeightUnitSystem


@observations(WeightMeasurement)
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
