"""Enhanced blood pressure observations (BLS 1.1.1): mapped exactly as the classic Blood
Pressure Measurement (MDC_PRESS_BLD_NONINV compound, LOINC 85354-9, and the cuff's pulse
rate; :mod:`protocols.gatt.mapping.blood_pressure`).

The time is the User Facing Time when the cuff sends one (the wall clock the user saw, as the
glucose mapping does), else the Time Stamp (the sensor's base time); both count seconds from
the value's epoch start.
"""

from __future__ import annotations

import dataclasses

from protocols.gatt import observation as obs
from protocols.gatt.blood_pressure import BloodPressureMeasurement
from protocols.gatt.datetime_ import DateTime
from protocols.gatt.enhanced_bp import (
    BloodPressureRecordSegment,
    EnhancedBloodPressureMeasurement,
    decode_enhanced_blood_pressure_measurement,
)
from protocols.gatt.mapping.blood_pressure import blood_pressure_observations
from protocols.gatt.numbers import ENHANCED_BLOOD_PRESSURE_MEASUREMENT
from protocols.gatt.registry import observations


def as_classic(m: EnhancedBloodPressureMeasurement) -> BloodPressureMeasurement:
    """The same reading as a classic Blood Pressure Measurement value."""
    when = m.user_facing_time if m.user_facing_time is not None else m.time_stamp
    return BloodPressureMeasurement(
        m.systolic,
        m.diastolic,
        m.mean_arterial_pressure,
        m.unit,
        None if when is None else DateTime.from_datetime(when),
        m.pulse_rate_bpm,
        m.user_id,
        m.measurement_status,
    )


@observations(EnhancedBloodPressureMeasurement)
def enhanced_blood_pressure_observations(
    m: EnhancedBloodPressureMeasurement,
) -> list[obs.Observation]:
    """Systolic, diastolic, mean and pulse rate, as for 0x2A35."""
    return blood_pressure_observations(as_classic(m))


@observations(BloodPressureRecordSegment)
def blood_pressure_record_observations(
    segment: BloodPressureRecordSegment,
) -> list[obs.Observation]:
    """A stored record in one value that holds an Enhanced BPM: its observations, with the
    record's sequence number. A segment of a longer record maps once assembled (the session
    joins the segments with :func:`~protocols.gatt.enhanced_bp.assemble_blood_pressure_record`).
    """
    if not segment.complete or segment.uuid != ENHANCED_BLOOD_PRESSURE_MEASUREMENT:
        return []
    measurement = decode_enhanced_blood_pressure_measurement(segment.part)
    return [
        dataclasses.replace(o, sequence_number=segment.sequence_number)
        for o in enhanced_blood_pressure_observations(measurement)
    ]
