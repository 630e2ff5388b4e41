"""Pulse oximetry observations (PHD IG: SpO2 2708-6 and pulse rate 8867-4, with their MDC
modality for fast, slow and spot-check values; the pulse amplitude index)."""

from __future__ import annotations

import datetime as dt

from protocols.gatt import observation as obs
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.plx import (
    PlxContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
)
from protocols.gatt.registry import observations


def _kebab(name: str | None) -> str:
    return (name or "").lower().replace("_", "-")


def _status_flags(
    status: PlxMeasurementStatus | None, device: PlxDeviceAndSensorStatus | None
) -> frozenset[str]:
    names: set[str] = set()
    for flag_set in (status, device):
        if flag_set is not None:
            names.update(_kebab(member.name) for member in flag_set)
    return frozenset(names)


def _pair(
    spo2: MedFloat,
    pr: MedFloat,
    *,
    modality: int | None,
    timestamp: dt.datetime | None,
    flags: frozenset[str],
) -> list[obs.Observation]:
    # Positional (hot path: continuous oximetry, one pair per second or faster).
    return [
        obs.Observation(
            obs.MDC_PULS_OXIM_SAT_O2,
            _SPO2_LOINC,
            spo2.value,
            None if spo2.special is None else spo2.special.value,
            "%",
            timestamp,
            flags,
            None,
            None,
            None,
            modality,
        ),
        obs.Observation(
            obs.MDC_PULS_OXIM_PULS_RATE,
            obs.LOINC_HEART_RATE,
            pr.value,
            None if pr.special is None else pr.special.value,
            "/min",
            timestamp,
            flags,
            None,
            None,
            None,
            modality,
        ),
    ]


_SPO2_LOINC = obs.MDC_TABLE[obs.MDC_PULS_OXIM_SAT_O2][1]


def _pai(m: MedFloat, timestamp: dt.datetime | None, flags: frozenset[str]) -> obs.Observation:
    return obs.Observation.from_medfloat(
        obs.MDC_PULS_OXIM_PERF_REL,
        None,
        m,
        "%",
        timestamp=timestamp,
        flags=flags,
    )


@observations(PlxSpotCheckMeasurement)
def plx_spot_check_observations(m: PlxSpotCheckMeasurement) -> list[obs.Observation]:
    """SpO2 (2708-6) and pulse rate (8867-4) with modality MDC_MODALITY_SPOT, and the PAI.

    Status bits become flags (``measurement-unavailable``, ``data-for-demonstration``,
    ``sensor-disconnected`` ...) so the gateway can hold such samples back deliberately.
    """
    flags = obs.quirk_flags(m.corrections) | _status_flags(
        m.measurement_status, m.device_and_sensor_status
    )
    timestamp = None
    if m.time_stamp is not None:
        timestamp = m.time_stamp.to_datetime()
        if timestamp is None or m.device_clock_not_set:
            flags |= {"device-time-unknown"}
            timestamp = None
    elif m.device_clock_not_set:
        flags |= {"device-time-unknown"}
    out = _pair(
        m.spo2_percent,
        m.pulse_rate_bpm,
        modality=obs.MDC_MODALITY_SPOT,
        timestamp=timestamp,
        flags=flags,
    )
    if m.pulse_amplitude_index_percent is not None:
        out.append(_pai(m.pulse_amplitude_index_percent, timestamp, flags))
    return out


@observations(PlxContinuousMeasurement)
def plx_continuous_observations(m: PlxContinuousMeasurement) -> list[obs.Observation]:
    """SpO2 and pulse rate (normal; fast and slow with their MDC modality), and the PAI.

    Continuous samples carry no device time: the gateway stamps them on reception.
    """
    flags = obs.quirk_flags(m.corrections) | _status_flags(
        m.measurement_status, m.device_and_sensor_status
    )
    out = _pair(m.spo2_percent, m.pulse_rate_bpm, modality=None, timestamp=None, flags=flags)
    for spo2, pr, modality in (
        (m.spo2_fast_percent, m.pulse_rate_fast_bpm, obs.MDC_MODALITY_FAST),
        (m.spo2_slow_percent, m.pulse_rate_slow_bpm, obs.MDC_MODALITY_SLOW),
    ):
        if spo2 is not None and pr is not None:
            out += _pair(spo2, pr, modality=modality, timestamp=None, flags=flags)
    if m.pulse_amplitude_index_percent is not None:
        out.append(_pai(m.pulse_amplitude_index_percent, None, flags))
    return out
