"""The public entry points: ``decode``, ``encode`` and ``to_observations`` for every
registered characteristic, dispatched through :data:`protocols.gatt.registry.REGISTRY` by
16-bit UUID (decode) or by value type (encode, observations).

Profiles load on first use. :data:`PROFILE_MODULES` says which module registers which
characteristics; :func:`decode` imports that module on the first value of one of its UUIDs,
and :func:`to_observations` imports a value's mapping module (:mod:`protocols.gatt.mapping`)
on the first value of its module. A hub so holds the codecs of the devices it meets, not all
of them (issue #18's memory budget). :func:`load_all` loads every profile and mapping (the
registry's tests, tools that list every characteristic). A new profile is one entry in
:data:`PROFILE_MODULES` and one member of :data:`Measurement`;
``tests/gatt/test_gatt_lazy.py`` checks the table against what each module registers.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import operator
from typing import TYPE_CHECKING, Any

from protocols.errors import EncodeError
from protocols.gatt import numbers as n
from protocols.gatt.errors import DecodeError
from protocols.gatt.registry import REGISTRY
from protocols.gatt.uuids import characteristic_id

if TYPE_CHECKING:
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
    from protocols.gatt import temperature as temp
    from protocols.gatt import weight as ws
    from protocols.gatt.observation import Observation
    from protocols.gatt.quirks import DeviceProfile

#: The profile module (in :mod:`protocols.gatt`) that registers each characteristic.
PROFILE_MODULES: dict[str, tuple[int, ...]] = {
    "datetime_": (n.DATE_TIME, n.DAY_DATE_TIME),
    "device": (
        n.BATTERY_LEVEL,
        n.SYSTEM_ID,
        n.MODEL_NUMBER,
        n.SERIAL_NUMBER,
        n.FIRMWARE_REVISION,
        n.HARDWARE_REVISION,
        n.SOFTWARE_REVISION,
        n.MANUFACTURER_NAME,
    ),
    "glucose": (n.GLUCOSE_MEASUREMENT, n.GLUCOSE_FEATURE),
    "temperature": (n.TEMPERATURE_MEASUREMENT, n.TEMPERATURE_TYPE, n.INTERMEDIATE_TEMPERATURE),
    "current_time": (n.CURRENT_TIME,),
    "glucose_context": (n.GLUCOSE_MEASUREMENT_CONTEXT,),
    "blood_pressure": (
        n.BLOOD_PRESSURE_MEASUREMENT,
        n.INTERMEDIATE_CUFF_PRESSURE,
        n.BLOOD_PRESSURE_FEATURE,
    ),
    "heart_rate": (n.HEART_RATE_MEASUREMENT,),
    "racp": (n.RECORD_ACCESS_CONTROL_POINT,),
    "plx": (n.PLX_SPOT_CHECK_MEASUREMENT, n.PLX_CONTINUOUS_MEASUREMENT, n.PLX_FEATURES),
    "body_composition": (n.BODY_COMPOSITION_FEATURE, n.BODY_COMPOSITION_MEASUREMENT),
    "weight": (n.WEIGHT_MEASUREMENT, n.WEIGHT_SCALE_FEATURE),
    "cgm": (
        n.CGM_MEASUREMENT,
        n.CGM_FEATURE,
        n.CGM_STATUS,
        n.CGM_SESSION_START_TIME,
        n.CGM_SESSION_RUN_TIME,
    ),
    "cgm_control": (n.CGM_SPECIFIC_OPS_CONTROL_POINT,),
    "enhanced_bp": (
        n.ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
        n.ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
        n.BLOOD_PRESSURE_RECORD,
    ),
    "acom": (n.LIVE_HEALTH_OBSERVATIONS,),
    "ghs": (
        n.STORED_HEALTH_OBSERVATIONS,
        n.OBSERVATION_SCHEDULE_CHANGED,
        n.HEALTH_SENSOR_FEATURES,
        n.GHS_CONTROL_POINT,
    ),
    "elapsed_time": (n.ELAPSED_TIME,),
}
#: The mapping module (in :mod:`protocols.gatt.mapping`) of a profile module's values, where
#: its name is not the profile's; a profile without one has no observations.
_MAPPING_MODULE = {"acom": "ghs", "glucose_context": "glucose"}
_MAPPING_MODULES = frozenset(
    {"blood_pressure", "body_composition", "cgm", "device", "enhanced_bp", "ghs"}
    | {"glucose", "heart_rate", "plx", "temperature", "weight"}
)
_MODULE_OF_UUID = {uuid: module for module, uuids in PROFILE_MODULES.items() for uuid in uuids}

#: Every value :func:`decode` can return, and the CGM and GHS values a session places in
#: their session (:class:`~protocols.gatt.cgm.CgmSessionMeasurement`,
#: :class:`~protocols.gatt.ghs.ReceivedHealthObservation`), which map to observations too.
if TYPE_CHECKING:
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
SUPPORTED_CHARACTERISTICS: frozenset[int] = frozenset(_MODULE_OF_UUID)

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
    if decoder is None and cid in _MODULE_OF_UUID:
        importlib.import_module(f"protocols.gatt.{_MODULE_OF_UUID[cid]}")
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
    mapper = _MAPPINGS.get(type(measurement))
    if mapper is None:
        mapper = _load_mapping(type(measurement)) or _none
    return mapper(measurement)


#: Profile modules whose mapping module has been looked up.
_MAPPED: set[str] = set()


def _load_mapping(value_type: type) -> Any:
    """Import the mapping module of ``value_type``'s profile, once; its mapper or ``None``."""
    profile = value_type.__module__.rpartition(".")[2]
    if profile not in _MAPPED:
        name = _MAPPING_MODULE.get(profile, profile)
        if name in _MAPPING_MODULES:
            importlib.import_module(f"protocols.gatt.mapping.{name}")
        # Marked only once imported: a caller in another thread that saw the mark before the
        # mappings registered would map a value to no observations.
        _MAPPED.add(profile)
    return _MAPPINGS.get(value_type)


def load_all() -> None:
    """Import every profile and mapping module: the registry then holds every characteristic."""
    for module in PROFILE_MODULES:
        importlib.import_module(f"protocols.gatt.{module}")
    for name in sorted(_MAPPING_MODULES):
        importlib.import_module(f"protocols.gatt.mapping.{name}")


def __getattr__(name: str) -> object:
    """:data:`Measurement` at run time (PEP 562), where code needs it as a value rather than
    an annotation: every profile loaded, the union of the registry's value types."""
    if name != "Measurement":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    load_all()
    types = sorted({*REGISTRY.encoders, *REGISTRY.mappings}, key=lambda t: t.__qualname__)
    union: object = functools.reduce(operator.or_, types)
    globals()[name] = union  # built once
    return union
