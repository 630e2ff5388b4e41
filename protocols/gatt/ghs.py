"""Generic Health Sensor Service 0x1840 (GHSS 1.0): Live Health Observations 0x2B8B, Stored
Health Observations 0x2BDD, Health Sensor Features 0x2BF3, GHS Control Point 0x2BF4, Observation
Schedule Changed 0x2BF1 and the Observation Schedule descriptor 0x2910. Time stamps come from the
Elapsed Time Service (:mod:`protocols.gatt.elapsed_time`); stored observations are selected
through the Record Access Control Point.

Live and Stored Health Observations carry one Segmentation Header byte
(:mod:`protocols.gatt.segmentation`) and a part of the message. The reassembled Live message is
a Health Observation Body (:mod:`protocols.gatt.acom`); the Stored message starts with the
record number (uint32; Realtek's ``ghss_format_health_obs_sending_value``). A value that is
both first and last segment decodes with :func:`decode_live_health_observations`;
:class:`HealthObservationReceiver` reassembles segments.

Health Sensor Features (Philips simulator ``featureCharacteristicBytes``, ST's STM32WBA
``GHS_APP_UpdateFeature``): Flags (uint8, bit0 device specializations present), count (uint8),
supported observation types (uint32 MDC codes), then when bit0: count (uint8) and per
specialization an MDC term code (uint16, partition 8) and a version (uint8).

GHS Control Point: one Op Code byte: 0x01 start sending live observations, 0x02 stop; the
response indication 0x80 success, 0x81 server busy, 0x82 error in live observations (op codes
as in the Philips simulator's ``GhsControlPointHandler``).

Observation Schedule Changed and the Observation Schedule descriptor: observation type
(uint32), measurement period and update interval (FLOAT seconds each; Philips
``GhsObservationScheduleHandler``, ST ``GHS_APP_UpdateObservationScheduleChanged``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from protocols.errors import EncodeError
from protocols.gatt._enum import OpenIntEnum
from protocols.gatt._wire import fail, length_error
from protocols.gatt.acom import (
    HealthObservation,
    decode_health_observation,
    encode_health_observation,
)
from protocols.gatt.elapsed_time import ElapsedTime
from protocols.gatt.errors import DecodeError
from protocols.gatt.generator import Decoder
from protocols.gatt.medfloat import MedFloat, encode_medfloat32, float_from_raw
from protocols.gatt.numbers import (
    GHS_CONTROL_POINT,
    HEALTH_SENSOR_FEATURES,
    LIVE_HEALTH_OBSERVATIONS,
    OBSERVATION_SCHEDULE_CHANGED,
    STORED_HEALTH_OBSERVATIONS,
)
from protocols.gatt.registry import Encoder, codec
from protocols.gatt.segmentation import (
    SegmentationError,
    SegmentationHeader,
    SegmentReassembler,
    split_into_segments,
)

T = TypeVar("T")

_LIVE_NAME = "Live Health Observations"
_STORED_NAME = "Stored Health Observations"
_FEATURES_NAME = "Health Sensor Features"
_CP_NAME = "GHS Control Point"
_SCHEDULE_NAME = "Observation Schedule Changed"


# --- Live and Stored Health Observations ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredHealthObservation:
    """A reassembled Stored Health Observations message: record number and observation."""

    record_number: int
    observation: HealthObservation


@dataclass(frozen=True, slots=True)
class ReceivedHealthObservation:
    """A Live or Stored Health Observation as the collector received it.

    ``record_number`` is the Stored Health Observations record number (``None`` for a live
    one). ``clock`` and ``clock_collector_utc`` are the device's Elapsed Time 0x2BF2, read in
    this session, and the collector's UTC clock at that read (the PHD IG's coincident time
    stamp): they place an observation stamped with a tick counter on the collector's
    timeline, since a tick counter has no calendar meaning of its own.
    """

    observation: HealthObservation
    record_number: int | None = None
    clock: ElapsedTime | None = None
    clock_collector_utc: dt.datetime | None = None

    @property
    def device_time(self) -> dt.datetime | None:
        """The observation's own Time Stamp as a date and time (aware when in UTC); ``None``
        without one, for a tick counter, or beyond what a datetime holds."""
        stamp = self.observation.time_stamp
        try:
            return None if stamp is None else stamp.to_datetime()
        except OverflowError:
            return None


def _single_segment(data: bytes, characteristic: int, name: str) -> bytes:
    if not data:
        fail(characteristic, name, "empty value: needs a Segmentation Header", 0)
    header = SegmentationHeader.from_byte(data[0])
    if not (header.first and header.last):
        fail(characteristic, name, "a segment of a longer message: reassemble it first", 0)
    return data[1:]


def decode_live_health_observation_message(message: bytes) -> HealthObservation:
    """Decode a reassembled Live Health Observations message."""
    return decode_health_observation(message, characteristic=LIVE_HEALTH_OBSERVATIONS)


def decode_stored_health_observation_message(message: bytes) -> StoredHealthObservation:
    """Decode a reassembled Stored Health Observations message (record number + body)."""
    if len(message) < 4:
        fail(STORED_HEALTH_OBSERVATIONS, _STORED_NAME, "truncated Record Number", len(message))
    observation = decode_health_observation(message, 4, characteristic=STORED_HEALTH_OBSERVATIONS)
    return StoredHealthObservation(int.from_bytes(message[:4], "little"), observation)


def _shifted(error: DecodeError, by: int) -> DecodeError:
    error.offset = (error.offset or 0) + by
    return error


def _whole_message(
    data: bytes, characteristic: int, name: str, decode_message: Callable[[bytes], T]
) -> T:
    """Decode a value that holds a whole message; error offsets count the header byte."""
    message = _single_segment(data, characteristic, name)
    try:
        return decode_message(message)
    except DecodeError as error:
        raise _shifted(error, 1) from None


def decode_live_health_observations(data: bytes) -> HealthObservation:
    """Decode one 0x2B8B value that holds a whole message (first and last segment)."""
    return _whole_message(
        data, LIVE_HEALTH_OBSERVATIONS, _LIVE_NAME, decode_live_health_observation_message
    )


def decode_stored_health_observations(data: bytes) -> StoredHealthObservation:
    """Decode one 0x2BDD value that holds a whole message (first and last segment)."""
    return _whole_message(
        data, STORED_HEALTH_OBSERVATIONS, _STORED_NAME, decode_stored_health_observation_message
    )


def encode_live_health_observation_message(observation: HealthObservation) -> bytes:
    """The Live message (before segmentation) of an observation."""
    return encode_health_observation(observation)


def encode_stored_health_observation_message(value: StoredHealthObservation) -> bytes:
    """The Stored message (before segmentation): record number + observation."""
    if not 0 <= value.record_number <= 0xFFFFFFFF:
        raise EncodeError(_STORED_NAME, f"record number {value.record_number} out of range")
    return value.record_number.to_bytes(4, "little") + encode_health_observation(value.observation)


def _single_segment_value(message: bytes, counter: int) -> bytes:
    header = SegmentationHeader(first=True, last=True, counter=counter).to_byte()
    return bytes((header,)) + message


def encode_live_health_observations(observation: HealthObservation, *, counter: int = 0) -> bytes:
    """One 0x2B8B value holding the whole message (first and last segment)."""
    return _single_segment_value(encode_live_health_observation_message(observation), counter)


def encode_stored_health_observations(value: StoredHealthObservation, *, counter: int = 0) -> bytes:
    """One 0x2BDD value holding the whole message (first and last segment)."""
    return _single_segment_value(encode_stored_health_observation_message(value), counter)


def segment_message(message: bytes, *, max_segment: int, first_counter: int = 0) -> list[bytes]:
    """The characteristic values that carry ``message`` (``max_segment`` = ATT_MTU - 3)."""
    return split_into_segments(message, max_segment=max_segment, first_counter=first_counter)


class HealthObservationReceiver:
    """Sans-I/O receiver for one of the two observation characteristics.

    Feed each notified or indicated value to :meth:`receive_segment`; it returns the
    observations completed by it and a :class:`~protocols.gatt.DecodeError` (reassembly or
    decoding) for each message it could not use. Nothing raises for bad peer bytes.
    """

    def __init__(self, *, stored: bool, max_message_bytes: int = 65_536) -> None:
        self._stored = stored
        characteristic = STORED_HEALTH_OBSERVATIONS if stored else LIVE_HEALTH_OBSERVATIONS
        name = _STORED_NAME if stored else _LIVE_NAME
        self._reassembler = SegmentReassembler(
            characteristic=characteristic, name=name, max_bytes=max_message_bytes
        )

    def receive_segment(
        self, value: bytes
    ) -> list[HealthObservation | StoredHealthObservation | DecodeError]:
        """Take one characteristic value; return the events it completes."""
        events: list[HealthObservation | StoredHealthObservation | DecodeError] = []
        for event in self._reassembler.receive_segment(value):
            if isinstance(event, SegmentationError):
                events.append(event)
                continue
            try:
                if self._stored:
                    events.append(decode_stored_health_observation_message(event))
                else:
                    events.append(decode_live_health_observation_message(event))
            except DecodeError as error:
                events.append(error)
        return events


# --- Health Sensor Features -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSpecialization:
    """A supported device specialization: MDC term code (partition 8) and its version."""

    code: int
    version: int


@dataclass(frozen=True, slots=True)
class HealthSensorFeatures:
    """Health Sensor Features 0x2BF3: the observation types the sensor can send."""

    observation_types: tuple[int, ...]
    device_specializations: tuple[DeviceSpecialization, ...] | None = None


_FEATURES_RFU = 0xFE


def decode_health_sensor_features(data: bytes) -> HealthSensorFeatures:
    """Decode 0x2BF3: Flags, the supported observation types, [device specializations]."""
    c, name = HEALTH_SENSOR_FEATURES, _FEATURES_NAME
    n = len(data)
    if n < 2:
        raise length_error(c, name, (("Flags", 1), ("Count", 1)), n)
    flags = data[0]
    if flags & _FEATURES_RFU:
        fail(c, name, f"reserved flag bits set (0x{flags:02X})", 0)
    count = data[1]
    end = 2 + 4 * count
    if n < end:
        fail(c, name, f"truncated observation types: {count} need {4 * count} bytes", n)
    types = tuple(int.from_bytes(data[i : i + 4], "little") for i in range(2, end, 4))
    specializations = None
    if flags & 0x01:
        if n < end + 1:
            fail(c, name, "truncated device specialization count", n)
        spec_count = data[end]
        spec_end = end + 1 + 3 * spec_count
        if n < spec_end:
            fail(c, name, f"truncated device specializations: {spec_count}", n)
        specializations = tuple(
            DeviceSpecialization(data[i] | data[i + 1] << 8, data[i + 2])
            for i in range(end + 1, spec_end, 3)
        )
        end = spec_end
    if n != end:
        fail(c, name, f"{n - end} trailing bytes", end)
    return HealthSensorFeatures(types, specializations)


def encode_health_sensor_features(value: HealthSensorFeatures) -> bytes:
    """Encode 0x2BF3."""
    name = _FEATURES_NAME
    if len(value.observation_types) > 0xFF:
        raise EncodeError(name, "more than 255 observation types")
    out = bytes((int(value.device_specializations is not None), len(value.observation_types)))
    for code in value.observation_types:
        if not 0 <= code <= 0xFFFFFFFF:
            raise EncodeError(name, f"observation type {code} does not fit uint32")
        out += code.to_bytes(4, "little")
    if value.device_specializations is not None:
        if len(value.device_specializations) > 0xFF:
            raise EncodeError(name, "more than 255 device specializations")
        out += bytes((len(value.device_specializations),))
        for spec in value.device_specializations:
            if not 0 <= spec.code <= 0xFFFF or not 0 <= spec.version <= 0xFF:
                raise EncodeError(name, f"device specialization {spec} out of range")
            out += spec.code.to_bytes(2, "little") + bytes((spec.version,))
    return out


# --- GHS Control Point ----------------------------------------------------------------------


class GhsControlPointOpCode(OpenIntEnum):
    """GHS Control Point Op Codes (requests 0x01-0x02, responses from 0x80); others kept."""

    START_SEND_LIVE_OBSERVATIONS = 0x01
    STOP_SEND_LIVE_OBSERVATIONS = 0x02
    SUCCESS = 0x80
    SERVER_BUSY = 0x81
    ERROR_IN_LIVE_OBSERVATIONS = 0x82


@dataclass(frozen=True, slots=True)
class GhsControlPoint:
    """A GHS Control Point value: one Op Code, written or indicated."""

    op_code: GhsControlPointOpCode


def decode_ghs_control_point(data: bytes) -> GhsControlPoint:
    """Decode 0x2BF4: exactly one byte."""
    if len(data) != 1:
        raise length_error(GHS_CONTROL_POINT, _CP_NAME, (("Op Code", 1),), len(data))
    return GhsControlPoint(GhsControlPointOpCode(data[0]))


def encode_ghs_control_point(value: GhsControlPoint) -> bytes:
    """Encode 0x2BF4."""
    op_code = int(value.op_code)
    if not 0 <= op_code <= 0xFF:
        raise EncodeError(_CP_NAME, f"Op Code {op_code} does not fit uint8")
    return bytes((op_code,))


# --- Observation Schedule -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservationSchedule:
    """Observation Schedule Changed 0x2BF1 / Observation Schedule descriptor 0x2910: how
    often an observation type is measured and how often it is sent, in seconds."""

    observation_type: int
    measurement_period_s: MedFloat
    update_interval_s: MedFloat


OBSERVATION_SCHEDULE_SIZE = 12


def decode_observation_schedule(
    data: bytes, *, characteristic: int = OBSERVATION_SCHEDULE_CHANGED
) -> ObservationSchedule:
    """Decode 0x2BF1 (or the 0x2910 descriptor): exactly 12 bytes."""
    if len(data) != OBSERVATION_SCHEDULE_SIZE:
        layout = (("Observation Type", 4), ("Measurement Period", 4), ("Update Interval", 4))
        raise length_error(characteristic, _SCHEDULE_NAME, layout, len(data))
    return ObservationSchedule(
        int.from_bytes(data[0:4], "little"),
        float_from_raw(int.from_bytes(data[4:8], "little")),
        float_from_raw(int.from_bytes(data[8:12], "little")),
    )


def encode_observation_schedule(value: ObservationSchedule) -> bytes:
    """Encode 0x2BF1 (or the 0x2910 descriptor)."""
    if not 0 <= value.observation_type <= 0xFFFFFFFF:
        raise EncodeError(_SCHEDULE_NAME, f"observation type {value.observation_type} too big")
    return (
        value.observation_type.to_bytes(4, "little")
        + encode_medfloat32(value.measurement_period_s)
        + encode_medfloat32(value.update_interval_s)
    )


# --- registration ---------------------------------------------------------------------------
# Registered: a value that carries a whole message (first and last segment); a segmented
# message goes through :class:`HealthObservationReceiver`.

_GHSS = "GHSS 1.0"
_REGISTERED: tuple[tuple[int, str, type, Decoder, Encoder, str], ...] = (
    (
        LIVE_HEALTH_OBSERVATIONS,
        _LIVE_NAME,
        HealthObservation,
        decode_live_health_observations,
        encode_live_health_observations,
        "",
    ),
    (
        STORED_HEALTH_OBSERVATIONS,
        _STORED_NAME,
        StoredHealthObservation,
        decode_stored_health_observations,
        encode_stored_health_observations,
        "",
    ),
    (
        HEALTH_SENSOR_FEATURES,
        _FEATURES_NAME,
        HealthSensorFeatures,
        decode_health_sensor_features,
        encode_health_sensor_features,
        "",
    ),
    (
        GHS_CONTROL_POINT,
        _CP_NAME,
        GhsControlPoint,
        decode_ghs_control_point,
        encode_ghs_control_point,
        "",
    ),
    (
        OBSERVATION_SCHEDULE_CHANGED,
        _SCHEDULE_NAME,
        ObservationSchedule,
        decode_observation_schedule,
        encode_observation_schedule,
        ", 0x2910 descriptor",
    ),
)
# Each characteristic's GSS name is its name; the service cites the GHSS characteristic.
for _uuid, _name, _value, _decode, _encode, _also in _REGISTERED:
    codec(
        _uuid,
        _name,
        gss=_name,
        service=f"{_GHSS} ({_name} characteristic{_also})",
        values=(_value,),
        encode=_encode,
    )(_decode)
