"""Body composition observations (BCS 1.0 as IEEE 11073-10420 names them; docs/protocols/phd.md
2.12): body fat percentage MDC_BODY_FAT (``%``, LOINC 41982-0), fat-free mass
MDC_MASS_BODY_FAT_FREE, soft lean mass MDC_MASS_BODY_SOFT_LEAN and body water mass
MDC_BODY_WATER (``kg`` or ``[lb_av]``), and the weight and height a scale adds (as the weight
scale maps them).

Basal metabolism MDC_BASAL_METABOLISM (``kJ``, BCS's unit), muscle percentage MDC_BODY_MUSCLE
(``%``), muscle mass MDC_MASS_BODY_MUSCLE (the masses' unit) and impedance
MDC_BODY_ELECTRICAL_IMPEDANCE (``Ohm``) take the terms of the one public nomenclature table
that agrees with the four 10420 terms (:mod:`protocols.gatt.observation` says how far they
are checked); no LOINC is paired with them.
"""

from __future__ import annotations

from protocols.gatt import observation as obs
from protocols.gatt.body_composition import BodyCompositionMeasurement
from protocols.gatt.mapping.weight import height_in_unit, scale_observation
from protocols.gatt.registry import observations


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
    if m.multiple_packet_measurement:
        flags |= {"multiple-packet-measurement"}
    timestamp, flags = obs.device_time(m.time_stamp, flags)
    user_id = m.user_id
    out = [scale_observation(obs.MDC_BODY_FAT, m.body_fat_percent, "%", timestamp, flags, user_id)]
    mass_unit = m.mass_unit
    for code, value, unit in (
        (obs.MDC_BASAL_METABOLISM, m.basal_metabolism_kj, "kJ"),
        (obs.MDC_BODY_MUSCLE, m.muscle_percent, "%"),
        (obs.MDC_MASS_BODY_MUSCLE, m.muscle_mass, mass_unit),
        (obs.MDC_MASS_BODY_FAT_FREE, m.fat_free_mass, mass_unit),
        (obs.MDC_MASS_BODY_SOFT_LEAN, m.soft_lean_mass, mass_unit),
        (obs.MDC_BODY_WATER, m.body_water_mass, mass_unit),
        (obs.MDC_BODY_ELECTRICAL_IMPEDANCE, m.impedance_ohm, "Ohm"),
        (obs.MDC_MASS_BODY_ACTUAL, m.weight, mass_unit),
    ):
        if value is not None:
            out.append(scale_observation(code, value, unit, timestamp, flags, user_id))
    if m.height is not None:
        # As the weight scale maps it.
        height, unit = height_in_unit(m.height, m.unit_system)
        out.append(
            scale_observation(obs.MDC_LEN_BODY_ACTUAL, height, unit, timestamp, flags, user_id)
        )
    return out
