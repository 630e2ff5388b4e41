"""The public entry points: ``decode``, ``encode`` and ``to_observations`` for every
registered characteristic, dispatched through :data:`protocols.gatt.registry.REGISTRY` by
16-bit UUID (decode) or by value type (encode, observations).

Importing this module imports every profile module (each registers its characteristics where
its dataclasses are declared) and :mod:`protocols.gatt.mapping` (which registers the
observation mappings). A new profile is one import line here and one member of
:data:`Measurement`.
"""

from __future__ import annotations

import dataclasses

from protocols.errors import EncodeError
from protocols.gatt import acom, cgm, cgm_control, ghs, plx, racp
from protocols.gatt import blood_pressure as bp
from protocols.gatt import body_composition as bcs
from protocols.gatt import current_time as cts
from protocols.gatt import datetime_ as dtm
from protocols.gatt import device as dev
from protocols.gatt import elapsed_time as ets
from protocols.gatt import enhanced_bp as ebp
from protocols.gatt import glucose as glu
from protocols.gatt import glucose_context as glc
from protocols.gatt import heart_rate as hr
from protocols.gatt import mapping as _mapping
from protocols.gatt import temperature as temp
from protocols.gatt import weight as ws
from protocols.gatt.errors import DecodeError
from protocols.gatt.observation import Observation
from protocols.gatt.quirks import DeviceProfile
from protocols.gatt.registry import REGISTRY
from protocols.gatt.uuids import characteristic_id

del _mapping  # imported for its registrations

#: Every value :func:`decode` can return, and the CGM and GHS values a session places in
#: their session (:class:`~protocols.gatt.cgm.CgmSessionMeasurement`,
#: :class:`~protocols.gatt.ghs.ReceivedHealthObservation`), which map to observations too.
Measurement = (
    bp.BloodPressureMeasurement
    | bp.IntermediateCuffPressure
    | bp.BloodPressureFeature
    | temp.TemperatureMeasurement
    | temp.TemperatureTypeValue
    | ws.WeightMeasurement
    | ws.WeightScaleFeature
    | plx.PlxSpotCheckMeasurement
    | plx.PlxContinuousMeasurement
    | plx.PlxFeatures
    | glu.GlucoseMeasurement
    | glc.GlucoseMeasurementContext
    | glu.GlucoseFeature
    | racp.RacpRequest
    | racp.RacpNumberOfStoredRecords
    | racp.RacpResponse
    | hr.HeartRateMeasurement
    | cts.CurrentTime
    | dtm.DateTime
    | dtm.DayDateTime
    | dev.BatteryLevel
    | dev.DeviceInformationString
    | dev.SystemId
    | ebp.EnhancedBloodPressureMeasurement
    | ebp.EnhancedIntermediateCuffPressure
    | ebp.BloodPressureRecordSegment
    | bcs.BodyCompositionMeasurement
    | bcs.BodyCompositionFeature
    | cgm.CgmMeasurement
    | cgm.CgmFeature
    | cgm.CgmStatus
    | cgm.CgmSessionStartTime
    | cgm.CgmSessionRunTime
    | cgm_control.CgmSpecificOpsControlPoint
    | cgm.CgmSessionMeasurement
    | acom.HealthObservation
    | ghs.StoredHealthObservation
    | ghs.HealthSensorFeatures
    | ghs.GhsControlPoint
    | ghs.ObservationSchedule
    | ghs.ReceivedHealthObservation
    | ets.ElapsedTime
)

#: The 16-bit UUIDs :func:`decode` accepts.
SUPPORTED_CHARACTERISTICS: frozenset[int] = frozenset(REGISTRY)

_DECODERS = REGISTRY.decoders
_ENCODERS = REGISTRY.encoders
_MAPPINGS = REGISTRY.mappings


def decode(
    characteristic: int | str, data: bytes, *, profile: DeviceProfile | None = None
) -> Measurement:
    """Decode ``data`` as the value of ``characteristic``.

    ``characteristic`` is a 16-bit int (``0x2A35``), a short string (``"2A35"``, ``"2a35"``,
    ``"0x2A35"``) or the 128-bit SIG UUID string. Decoding is strict; a ``profile`` from
    :func:`protocols.gatt.quirks.select_profile` applies that device's known corrections and
    marks the result. Raises :class:`~protocols.gatt.DecodeError` (a ``ValueError``) for
    anything that is not a valid value, and never another exception type for bad bytes.
    """
    cid = characteristic if type(characteristic) is int else characteristic_id(characteristic)
    decoder = _DECODERS.get(cid)
    if decoder is None:
        raise DecodeError(cid, "characteristic", "no decoder for this characteristic", offset=0)
    if type(data) is not bytes:
        data = bytes(data)
    if profile is not None:
        quirk = profile.quirk_for(cid)
        if quirk is not None:
            corrected = quirk.correct(data)
            if corrected != data:
                fixed = decoder(corrected)
                marked: Measurement = dataclasses.replace(
                    fixed, corrections=fixed.corrections | {quirk.name}
                )
                return marked
    result: Measurement = decoder(data)
    return result


def encode(measurement: Measurement) -> bytes:
    """Encode a measurement (or control-point value) to its characteristic value bytes.

    Raises :class:`~protocols.errors.EncodeError` (a ``ValueError``) when a field cannot be
    represented exactly.
    """
    encoder = _ENCODERS.get(type(measurement))
    if encoder is None:
        raise EncodeError("characteristic", f"no encoder for {type(measurement).__name__}")
    return encoder(measurement)


def _none(_measurement: object) -> list[Observation]:
    return []


def to_observations(measurement: Measurement) -> list[Observation]:
    """Normalise a measurement to MDC/LOINC/UCUM observations.

    Features, control points, clocks, device strings and intermediate (display-only) values
    produce none.
    """
    return _MAPPINGS.get(type(measurement), _none)(measurement)
