"""Continuous glucose monitoring observations (CGMS 1.0.2 records as the PHD IG maps a glucose
concentration: MDC_CONC_GLU_ISF, LOINC 99504-3, mg/dL; docs/protocols/phd.md 2.10).

Each CGM Measurement record becomes:

* the glucose concentration, MDC_CONC_GLU_ISF (160212) with LOINC 99504-3 "Glucose
  [Mass/volume] in Interstitial fluid", in ``mg/dL`` (the unit CGMS fixes);
* its trend, when sent, MDC_CONC_GLU_TREND (8418008, MDC_PART_PHD_DM term 29400: the
  source and how far it is checked are in :mod:`protocols.gatt.observation`) in
  ``mg/dL/min``, flagged ``component-of:160212`` so that the FHIR mapping makes it a
  component of the glucose Observation (as the blood pressure components are);
* its quality, when sent, as the flag ``cgm-quality-percent:<value>`` on the glucose
  observation (shown in the Observation's note). No MDC term for it could be verified: the
  public nomenclature table that gives the trend lists no quality term in its CGM block
  (terms 29400-29463: trend, thresholds, calibration, run time, sample interval, device
  status and types), and the PHD IG's only CGM-specific element, Measurement-Confidence-95
  (``StructureDefinition.Confidence95.fsh``), is a 95 % interval, not CGMS's quality
  percentage. So no component with an invented code;
* its Sensor Status Annunciation bits as kebab-case flags (``device-battery-low`` ...).

The time of a record is its session's start plus its Time Offset (minutes); without a
session start the observations carry no device time and the flag ``device-time-unknown``.
Its identity (``sequence_number``, :func:`record_identity`) is the session and the offset.
"""

from __future__ import annotations

import datetime as dt

from protocols.gatt import observation as obs
from protocols.gatt.cgm import (
    CgmMeasurement,
    CgmMeasurementRecord,
    CgmSessionMeasurement,
    CgmSessionStartTime,
)
from protocols.gatt.registry import observations

#: Flag of a component observation that belongs to the glucose concentration.
COMPONENT_OF_GLUCOSE = f"component-of:{obs.MDC_CONC_GLU_ISF}"
#: Prefix of the quality flag carried by the glucose observation.
QUALITY_FLAG = "cgm-quality-percent:"


def _kebab(name: str | None) -> str:
    return (name or "").lower().replace("_", "-")


#: Where record identities count the session start from (the GATT Date Time epoch is free;
#: any fixed origin gives each session its own range of numbers).
_IDENTITY_ORIGIN = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - device-local, as the start


def record_identity(session_start: dt.datetime | None, time_offset_min: int) -> int | None:
    """A CGM record's identity on its device: its session's start (minutes since 2000) x
    65536 + its Time Offset; ``None`` without a session start.

    CGMS names a record by its session and Time Offset, not by a clock reading, so the
    identity stays the same when the sensor's timeline and the hub's disagree; a new
    session (a new start) never reuses a number. It goes where a glucose meter's sequence
    number goes (``Observation.sequence_number``, the de-duplication key).
    """
    if session_start is None:
        return None
    minutes = (session_start - _IDENTITY_ORIGIN) // dt.timedelta(minutes=1)
    return minutes * 0x10000 + time_offset_min


def _start(start: CgmSessionStartTime | None) -> dt.datetime | None:
    return None if start is None else start.session_start_time.to_datetime()


def record_observations(
    record: CgmMeasurementRecord, session_start: dt.datetime | None
) -> list[obs.Observation]:
    """The observations of one record whose session started at ``session_start``."""
    flags: frozenset[str] = frozenset()
    status = record.sensor_status_annunciation
    if status is not None:
        flags = frozenset(_kebab(member.name) for member in status)
    timestamp = None
    if session_start is None:
        flags |= {"device-time-unknown"}
    else:
        timestamp = session_start + dt.timedelta(minutes=record.time_offset_min)
    identity = record_identity(session_start, record.time_offset_min)
    glucose_flags = flags
    quality = record.quality_percent
    if quality is not None:
        shown = quality.value if quality.special is None else quality.special.value
        glucose_flags = flags | {f"{QUALITY_FLAG}{shown}"}
    out = [
        obs.Observation.from_medfloat(
            obs.MDC_CONC_GLU_ISF,
            obs.LOINC_GLUCOSE_ISF_MASS,
            record.glucose_concentration_mg_dl,
            "mg/dL",
            timestamp=timestamp,
            flags=glucose_flags,
            sequence_number=identity,
        )
    ]
    if record.trend_mg_dl_per_min is not None:
        out.append(
            obs.Observation.from_medfloat(
                obs.MDC_CONC_GLU_TREND,
                None,
                record.trend_mg_dl_per_min,
                "mg/dL/min",
                timestamp=timestamp,
                flags=flags | {COMPONENT_OF_GLUCOSE},
                sequence_number=identity,
            )
        )
    return out


@observations(CgmSessionMeasurement)
def cgm_session_observations(value: CgmSessionMeasurement) -> list[obs.Observation]:
    """Every record of a CGM Measurement, timed from its session's start."""
    start = _start(value.session_start_time)
    return [o for record in value.measurement.records for o in record_observations(record, start)]


@observations(CgmMeasurement)
def cgm_observations(value: CgmMeasurement) -> list[obs.Observation]:
    """A CGM Measurement decoded without its session: values, no device time."""
    return [o for record in value.records for o in record_observations(record, None)]
