"""Heart rate observations (PHD IG: MDC_ECG_HEART_RATE, LOINC 8867-4; RR intervals in ms)."""

from __future__ import annotations

from decimal import Decimal

from protocols.gatt import observation as obs
from protocols.gatt.heart_rate import HeartRateMeasurement, SensorContact
from protocols.gatt.registry import observations


@observations(HeartRateMeasurement)
def heart_rate_observations(m: HeartRateMeasurement) -> list[obs.Observation]:
    """Heart rate (MDC_ECG_HEART_RATE, 8867-4, /min) and each RR interval in ms.

    A reading taken while the sensor reports no skin contact is flagged
    ``sensor-contact-not-detected``. Energy expended has no PHD IG mapping and is not emitted.
    """
    flags = obs.quirk_flags(m.corrections)
    if m.sensor_contact is SensorContact.NOT_DETECTED:
        flags |= {"sensor-contact-not-detected"}
    out = [
        obs.Observation(
            obs.MDC_ECG_HEART_RATE,
            obs.LOINC_HEART_RATE,
            Decimal(m.heart_rate_bpm),
            None,
            "/min",
            None,
            flags,
        )
    ]
    out += [
        obs.Observation(obs.MDC_ECG_TIME_PD_RR_GL, None, rr_ms, None, "ms", None, flags)
        for rr_ms in m.rr_intervals_ms
    ]
    return out
