"""Body temperature observations (PHD IG: MDC_TEMP_BODY or the site's code, LOINC 8310-5)."""

from __future__ import annotations

from protocols.gatt import observation as obs
from protocols.gatt.registry import observations
from protocols.gatt.temperature import TemperatureMeasurement, TemperatureType

# Temperature Type -> MDC code per the PHD IG table (docs/protocols/phd.md 2.2); BODY (and no
# type) is MDC_TEMP_BODY.
_SITE_CODES: dict[TemperatureType, int] = {
    TemperatureType.ARMPIT: obs.MDC_TEMP_AXILLA,
    TemperatureType.EAR: obs.MDC_TEMP_EAR,
    TemperatureType.FINGER: obs.MDC_TEMP_FINGER,
    TemperatureType.GASTRO_INTESTINAL_TRACT: obs.MDC_TEMP_GIT,
    TemperatureType.MOUTH: obs.MDC_TEMP_ORAL,
    TemperatureType.RECTUM: obs.MDC_TEMP_RECT,
    TemperatureType.TOE: obs.MDC_TEMP_TOE,
    TemperatureType.TYMPANUM: obs.MDC_TEMP_TYMP,
}


@observations(TemperatureMeasurement)
def temperature_observations(m: TemperatureMeasurement) -> list[obs.Observation]:
    """One body-temperature observation (MDC_TEMP_BODY or the site's code; LOINC 8310-5).

    Intermediate temperatures are display-only and produce no observation.
    """
    if m.intermediate:
        return []
    site = m.temperature_type
    mdc = _SITE_CODES.get(site, obs.MDC_TEMP_BODY) if site is not None else obs.MDC_TEMP_BODY
    _, loinc = obs.MDC_TABLE[mdc]
    flags = obs.quirk_flags(m.corrections)
    timestamp, flags = obs.device_time(m.time_stamp, flags)
    return [
        obs.Observation.from_medfloat(
            mdc,
            loinc,
            m.temperature,
            m.unit.value,
            timestamp=timestamp,
            flags=flags,
            body_site=None if site is None else site.name.lower(),
        )
    ]
