"""Body composition observations (BCS 1.0 as IEEE 11073-10420 names them; docs/protocols/phd.md
2.12): body fat percentage MDC_BODY_FAT (``%``), fat-free mass MDC_MASS_BODY_FAT_FREE, soft
lean mass MDC_MASS_BODY_SOFT_LEAN and body water mass MDC_BODY_WATER (``kg`` or ``[lb_av]``),
and the weight and height a scale adds (as the weight scale maps them).

Basal metabolism, muscle percentage, muscle mass and impedance have no MDC term we could
verify (one public table's candidates collide with other codes): they stay on the dataclass
and produce no observation, like the glucose context fields without a verified code.
"""

from __future__ import annotations

from decimal import Decimal

from protocols.gatt import observation as obs
from protocols.gatt.body_composition import BodyCompositionMeasurement
from protocols.gatt.registry import observations
from protocols.gatt.weight import WeightUnitSystem


@observations(BodyCompositionMeasurement)
def body_composition_observations(m: BodyCompositionMeasurement) -> list[obs.Observation]:
    """The mapped fields of one Body Composition Measurement value.

    An unsuccessful measurement (body fat 0xFFFF) is a body fat observation with special
    ``"nan"`` and the flag ``measurement-unsuccessful``, never a number. A value that is one
    packet of a multiple-packet measurement carries the flag ``multiple-packet-measurement``;
    its repeated body fat percentage has the same time stamp and value as the other
    packet's, so the hub's de-duplication key stores it once.
    """
    flags: frozenset[str] = frozenset()
    timestamp = None
    if m.time_stamp is not None:
        timestamp = m.time_stamp.to_datetime()
        if timestamp is None:
            flags |= {"device-time-unknown"}
    if m.multiple_packet_measurement:
        flags |= {"multiple-packet-measurement"}

    def observation(code: int, value: Decimal | None, unit: str) -> obs.Observation:
        if value is None:
            return obs.Observation(
                code,
                obs.MDC_TABLE[code][1],
                None,
                "nan",
                unit,
                timestamp=timestamp,
                flags=flags | {"measurement-unsuccessful"},
                user_id=m.user_id,
            )
        return obs.Observation(
            code,
            obs.MDC_TABLE[code][1],
            value,
            None,
            unit,
            timestamp=timestamp,
            flags=flags,
            user_id=m.user_id,
        )

    out = [observation(obs.MDC_BODY_FAT, m.body_fat_percent, "%")]
    mass_unit = m.mass_unit
    for code, value in (
        (obs.MDC_MASS_BODY_FAT_FREE, m.fat_free_mass),
        (obs.MDC_MASS_BODY_SOFT_LEAN, m.soft_lean_mass),
        (obs.MDC_BODY_WATER, m.body_water_mass),
        (obs.MDC_MASS_BODY_ACTUAL, m.weight),
    ):
        if value is not None:
            out.append(observation(code, value, mass_unit))
    if m.height is not None:
        # As the weight scale: SI height in cm (an exact decimal shift).
        if m.unit_system is WeightUnitSystem.SI:
            out.append(observation(obs.MDC_LEN_BODY_ACTUAL, m.height.scaleb(2), "cm"))
        else:
            out.append(observation(obs.MDC_LEN_BODY_ACTUAL, m.height, "[in_i]"))
    return out
