"""Body weight, height and BMI observations (PHD IG: 29463-7, 8302-2, 39156-5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
    timestamp, flags = obs.device_time(m.time_stamp, flags)
    system = m.unit_system
    out = [
        scale_observation(
            obs.MDC_MASS_BODY_ACTUAL, m.weight, system.weight_unit, timestamp, flags, m.user_id
        )
    ]
    if m.height is not None:
        value, unit = height_in_unit(m.height, system)
        out.append(
            scale_observation(obs.MDC_LEN_BODY_ACTUAL, value, unit, timestamp, flags, m.user_id)
        )
    if m.bmi_kg_m2 is not None:
        code = obs.MDC_RATIO_MASS_BODY_LEN_SQ
        out.append(scale_observation(code, m.bmi_kg_m2, "kg/m2", timestamp, flags, m.user_id))
    return out


def height_in_unit(height: Decimal, system: WeightUnitSystem) -> tuple[Decimal, str]:
    """A scale's height in the PHD IG's unit: SI height in cm (an exact decimal shift), imperial
    in inches."""
    if system is WeightUnitSystem.SI:
        return height.scaleb(2), "cm"
    return height, "[in_i]"


def scale_observation(
    code: int,
    value: Decimal | None,
    unit: str,
    timestamp: dt.datetime | None,
    flags: frozenset[str],
    user_id: int | None,
) -> obs.Observation:
    """One observation of a scale (weight or body composition); no value is an unsuccessful
    measurement: special ``"nan"`` and the flag ``measurement-unsuccessful``."""
    if value is None:
        return obs.Observation(
            code,
            obs.MDC_TABLE[code][1],
            None,
            "nan",
            unit,
            timestamp=timestamp,
            flags=flags | {"measurement-unsuccessful"},
            user_id=user_id,
        )
    return obs.Observation(
        code,
        obs.MDC_TABLE[code][1],
        value,
        None,
        unit,
        timestamp=timestamp,
        flags=flags,
        user_id=user_id,
    )
