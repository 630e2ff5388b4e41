"""The characteristic registry: ``decode``, ``encode`` and ``to_observations`` for every
supported characteristic, dispatched by 16-bit UUID (decode) or by measurement type."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from protocols.errors import EncodeError
from protocols.gatt import blood_pressure as bp
from protocols.gatt import current_time as cts
from protocols.gatt import datetime_ as dtm
from protocols.gatt import device as dev
from protocols.gatt import glucose as glu
from protocols.gatt import heart_rate as hr
from protocols.gatt import plx, racp
from protocols.gatt import temperature as temp
from protocols.gatt import weight as ws
from protocols.gatt.errors import DecodeError
from protocols.gatt.observation import Observation
from protocols.gatt.quirks import DeviceProfile
from protocols.gatt.uuids import characteristic_id

#: Every value :func:`decode` can return.
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
    | glu.GlucoseMeasurementContext
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
)

_DECODERS: dict[int, Callable[[bytes], Any]] = {
    bp.BLOOD_PRESSURE_MEASUREMENT: bp.decode_blood_pressure_measurement,
    bp.INTERMEDIATE_CUFF_PRESSURE: bp.decode_intermediate_cuff_pressure,
    bp.BLOOD_PRESSURE_FEATURE: bp.decode_blood_pressure_feature,
    temp.TEMPERATURE_MEASUREMENT: temp.decode_temperature_measurement,
    temp.INTERMEDIATE_TEMPERATURE: functools.partial(
        temp.decode_temperature_measurement, characteristic=temp.INTERMEDIATE_TEMPERATURE
    ),
    temp.TEMPERATURE_TYPE: temp.decode_temperature_type,
    ws.WEIGHT_MEASUREMENT: ws.decode_weight_measurement,
    ws.WEIGHT_SCALE_FEATURE: ws.decode_weight_scale_feature,
    plx.PLX_SPOT_CHECK_MEASUREMENT: plx.decode_plx_spot_check,
    plx.PLX_CONTINUOUS_MEASUREMENT: plx.decode_plx_continuous,
    plx.PLX_FEATURES: plx.decode_plx_features,
    glu.GLUCOSE_MEASUREMENT: glu.decode_glucose_measurement,
    glu.GLUCOSE_MEASUREMENT_CONTEXT: glu.decode_glucose_measurement_context,
    glu.GLUCOSE_FEATURE: glu.decode_glucose_feature,
    racp.RECORD_ACCESS_CONTROL_POINT: racp.decode_racp,
    hr.HEART_RATE_MEASUREMENT: hr.decode_heart_rate_measurement,
    cts.CURRENT_TIME: cts.decode_current_time,
    dtm.DATE_TIME: dtm.decode_date_time_characteristic,
    dtm.DAY_DATE_TIME: dtm.decode_day_date_time,
    dev.BATTERY_LEVEL: dev.decode_battery_level,
}
for _uuid in dev.DEVICE_INFORMATION_STRINGS:
    _DECODERS[_uuid] = functools.partial(dev.decode_device_information_string, _uuid)

#: The 16-bit UUIDs :func:`decode` accepts.
SUPPORTED_CHARACTERISTICS: frozenset[int] = frozenset(_DECODERS)

_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    bp.BloodPressureMeasurement: bp.encode_blood_pressure_measurement,
    bp.IntermediateCuffPressure: bp.encode_intermediate_cuff_pressure,
    bp.BloodPressureFeature: bp.encode_blood_pressure_feature,
    temp.TemperatureMeasurement: temp.encode_temperature_measurement,
    temp.TemperatureTypeValue: temp.encode_temperature_type,
    ws.WeightMeasurement: ws.encode_weight_measurement,
    ws.WeightScaleFeature: ws.encode_weight_scale_feature,
    plx.PlxSpotCheckMeasurement: plx.encode_plx_spot_check,
    plx.PlxContinuousMeasurement: plx.encode_plx_continuous,
    plx.PlxFeatures: plx.encode_plx_features,
    glu.GlucoseMeasurement: glu.encode_glucose_measurement,
    glu.GlucoseMeasurementContext: glu.encode_glucose_measurement_context,
    glu.GlucoseFeature: glu.encode_glucose_feature,
    racp.RacpRequest: racp.encode_racp,
    racp.RacpNumberOfStoredRecords: racp.encode_racp,
    racp.RacpResponse: racp.encode_racp,
    hr.HeartRateMeasurement: hr.encode_heart_rate_measurement,
    cts.CurrentTime: cts.encode_current_time,
    dtm.DateTime: dtm.encode_date_time,
    dtm.DayDateTime: dtm.encode_day_date_time,
    dev.BatteryLevel: dev.encode_battery_level,
    dev.DeviceInformationString: dev.encode_device_information_string,
}


def _none(_measurement: Any) -> list[Observation]:
    return []


_OBSERVERS: dict[type, Callable[[Any], list[Observation]]] = {
    bp.BloodPressureMeasurement: bp.blood_pressure_observations,
    temp.TemperatureMeasurement: temp.temperature_observations,
    ws.WeightMeasurement: ws.weight_observations,
    plx.PlxSpotCheckMeasurement: plx.plx_spot_check_observations,
    plx.PlxContinuousMeasurement: plx.plx_continuous_observations,
    glu.GlucoseMeasurement: glu.glucose_observations,
    glu.GlucoseMeasurementContext: glu.glucose_context_observations,
    hr.HeartRateMeasurement: hr.heart_rate_observations,
    dev.BatteryLevel: dev.battery_observations,
}


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


def to_observations(measurement: Measurement) -> list[Observation]:
    """Normalise a measurement to MDC/LOINC/UCUM observations.

    Features, control points, clocks, device strings and intermediate (display-only) values
    produce none.
    """
    return _OBSERVERS.get(type(measurement), _none)(measurement)
