"""Continuous Glucose Monitoring Service 0x181F (CGMS 1.0.2): CGM Measurement 0x2AA7, CGM Feature
0x2AA8, CGM Status 0x2AA9, CGM Session Start Time 0x2AAA and CGM Session Run Time 0x2AAB; the CGM
Specific Ops Control Point 0x2AAC is in :mod:`protocols.gatt.cgm_control`. Stored records come
through the Record Access Control Point (:mod:`protocols.gatt.racp`), filtered by time offset.

CGM Measurement (GSS *CGM Measurement*) is one or more concatenated records:

====== ==== =============================================================== ============
Offset Size Field                                                           Present if
====== ==== =============================================================== ============
0      1    Size of the record, this byte included                          always
1      1    Flags: bit0 trend, bit1 quality, bits 2-4 RFU, bit5 Warning     always
            octet, bit6 Cal/Temp octet, bit7 Status octet
2      2    CGM Glucose Concentration (SFLOAT, mg/dL)                       always
4      2    Time Offset (uint16, minutes since the Session Start Time)     always
+0     1    Sensor Status Annunciation, Status octet (bits 0-7)             bit7
+0     1    Sensor Status Annunciation, Cal/Temp octet (bits 8-15)          bit6
+0     1    Sensor Status Annunciation, Warning octet (bits 16-23)          bit5
+0     2    CGM Trend Information (SFLOAT, mg/dL/min)                       bit0
+0     2    CGM Quality (SFLOAT, %)                                         bit1
+0     2    E2E-CRC over the record (:mod:`protocols.gatt.e2e_crc`)         E2E-CRC
                                                                            supported
====== ==== =============================================================== ============

The annunciation octets come in the order of the combined 24-bit field of CGM Status (Status,
Cal/Temp, Warning; GSS lists them so). Nordic's Android library names the first octet
"warning" but gives it the Status bits (battery low is its bit 1), so its vectors agree.

Whether an E2E-CRC follows is the CGM Feature's E2E-CRC Supported bit (bit 12). Every decoder
here takes ``e2e_crc``: ``True`` or ``False`` from the Feature the hub read, or ``None`` before
it has read one, when the length alone says whether the CRC is there. A CRC that is there is
always checked; a wrong one raises :class:`~protocols.gatt.e2e_crc.E2ECrcError`.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._enum import OpenIntEnum
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.e2e_crc import (
    CRC_NOT_SUPPORTED,
    E2E_CRC_SIZE,
    check_e2e_crc,
    with_e2e_crc,
)
from protocols.gatt.errors import DecodeError
from protocols.gatt.medfloat import MedFloat, encode_medfloat16, sfloat_from_raw
from protocols.gatt.numbers import (
    CGM_FEATURE,
    CGM_MEASUREMENT,
    CGM_SESSION_RUN_TIME,
    CGM_SESSION_START_TIME,
    CGM_STATUS,
)
from protocols.gatt.registry import codec

_MEASUREMENT_NAME = "CGM Measurement"
_FEATURE_NAME = "CGM Feature"
_STATUS_NAME = "CGM Status"
_SST_NAME = "CGM Session Start Time"
_SRT_NAME = "CGM Session Run Time"


def _sfloat(data: bytes, offset: int) -> MedFloat:
    return sfloat_from_raw(data[offset] | data[offset + 1] << 8)


def _u16(data: bytes, offset: int) -> int:
    return data[offset] | data[offset + 1] << 8


def _crc_present(
    n: int, base: int, e2e_crc: bool | None, *, characteristic: int, name: str
) -> bool:
    """Whether ``n`` bytes are ``base`` plus a CRC; raises for any other length."""
    if n == base and e2e_crc is not True:
        return False
    if n == base + E2E_CRC_SIZE and e2e_crc is not False:
        return True
    if n < base:
        fail(characteristic, name, f"truncated: needs {base} bytes, has {n}", n)
    expected = base + E2E_CRC_SIZE if e2e_crc else base
    if e2e_crc is None:
        reason = f"{n} bytes: expects {base}, or {base + E2E_CRC_SIZE} with an E2E-CRC"
    elif n < expected:
        reason = f"truncated E2E-CRC: needs {expected} bytes, has {n}"
    else:
        reason = f"{n - expected} trailing bytes"
    raise DecodeError(characteristic, name, reason, offset=min(n, expected))


def _whole_value_secured(
    data: bytes, base: int, e2e_crc: bool | None, *, characteristic: int, name: str
) -> bool:
    """Whether a whole value of ``base`` bytes carries an E2E-CRC, which is then checked."""
    secured = _crc_present(len(data), base, e2e_crc, characteristic=characteristic, name=name)
    if secured:
        check_e2e_crc(data, 0, base, characteristic=characteristic, name=name)
    return secured


def _finish(body: bytes, secured: bool) -> bytes:
    return with_e2e_crc(body) if secured else body


# --- sensor status annunciation -------------------------------------------------------------


class CgmSensorStatus(enum.IntFlag):
    """The 24-bit Sensor Status Annunciation / CGM Status (GSS *CGM Measurement*).

    Status octet bits 0-5, Cal/Temp octet bits 8-14, Warning octet bits 16-23; bits 6, 7 and 15
    are RFU.
    """

    SESSION_STOPPED = 1 << 0
    DEVICE_BATTERY_LOW = 1 << 1
    SENSOR_TYPE_INCORRECT_FOR_DEVICE = 1 << 2
    SENSOR_MALFUNCTION = 1 << 3
    DEVICE_SPECIFIC_ALERT = 1 << 4
    GENERAL_DEVICE_FAULT = 1 << 5
    TIME_SYNCHRONIZATION_REQUIRED = 1 << 8
    CALIBRATION_NOT_ALLOWED = 1 << 9
    CALIBRATION_RECOMMENDED = 1 << 10
    CALIBRATION_REQUIRED = 1 << 11
    SENSOR_TEMPERATURE_TOO_HIGH = 1 << 12
    SENSOR_TEMPERATURE_TOO_LOW = 1 << 13
    CALIBRATION_PROCESS_PENDING = 1 << 14
    RESULT_LOWER_THAN_PATIENT_LOW_LEVEL = 1 << 16
    RESULT_HIGHER_THAN_PATIENT_HIGH_LEVEL = 1 << 17
    RESULT_LOWER_THAN_HYPO_LEVEL = 1 << 18
    RESULT_HIGHER_THAN_HYPER_LEVEL = 1 << 19
    RATE_OF_DECREASE_EXCEEDED = 1 << 20
    RATE_OF_INCREASE_EXCEEDED = 1 << 21
    RESULT_LOWER_THAN_DEVICE_CAN_PROCESS = 1 << 22
    RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS = 1 << 23


#: RFU bits of the combined 24-bit status.
SENSOR_STATUS_RFU = 0x0080C0
_OCTET_RFU = (SENSOR_STATUS_RFU & 0xFF, (SENSOR_STATUS_RFU >> 8) & 0xFF, 0)
_OCTET_NAMES = ("Status", "Cal/Temp", "Warning")


# --- CGM Measurement ------------------------------------------------------------------------

_FLAG_TREND = 0x01
_FLAG_QUALITY = 0x02
_FLAGS_RFU = 0x1C
_FLAG_WARNING = 0x20
_FLAG_CAL_TEMP = 0x40
_FLAG_STATUS = 0x80
_RECORD_MIN = 6


@dataclass(frozen=True, slots=True)
class CgmMeasurementRecord:
    """One CGM Measurement Record (GSS *CGM Measurement*).

    The three annunciation octets are kept as sent (``None`` = octet absent) so the record
    re-encodes exactly; :attr:`sensor_status_annunciation` combines them. ``secured`` says the
    record carried an E2E-CRC, which decoding checked.
    """

    glucose_concentration_mg_dl: MedFloat
    time_offset_min: int
    status_octet: int | None = None
    cal_temp_octet: int | None = None
    warning_octet: int | None = None
    trend_mg_dl_per_min: MedFloat | None = None
    quality_percent: MedFloat | None = None
    secured: bool = False

    @property
    def sensor_status_annunciation(self) -> CgmSensorStatus | None:
        """The octets combined as a 24-bit status, ``None`` when no octet was sent."""
        octets = (self.status_octet, self.cal_temp_octet, self.warning_octet)
        if all(octet is None for octet in octets):
            return None
        raw = 0
        for shift, octet in zip((0, 8, 16), octets, strict=True):
            raw |= (octet or 0) << shift
        return CgmSensorStatus(raw)


@dataclass(frozen=True, slots=True)
class CgmMeasurement:
    """A CGM Measurement value: the records of one notification, in order."""

    records: tuple[CgmMeasurementRecord, ...]


def _record_base_size(flags: int) -> int:
    size = _RECORD_MIN
    size += bool(flags & _FLAG_STATUS) + bool(flags & _FLAG_CAL_TEMP) + bool(flags & _FLAG_WARNING)
    if flags & _FLAG_TREND:
        size += 2
    if flags & _FLAG_QUALITY:
        size += 2
    return size


def _decode_record(
    data: bytes, start: int, e2e_crc: bool | None
) -> tuple[CgmMeasurementRecord, int]:
    c, name = CGM_MEASUREMENT, _MEASUREMENT_NAME
    n = len(data)
    size = data[start]
    if size < _RECORD_MIN:
        fail(c, name, f"record Size {size} is below the minimum {_RECORD_MIN}", start)
    if start + size > n:
        fail(c, name, f"truncated record: Size {size}, has {n - start} bytes", n)
    flags = data[start + 1]
    if flags & _FLAGS_RFU:
        fail(c, name, f"reserved flag bits set (0x{flags:02X})", start + 1)
    base = _record_base_size(flags)
    secured = _crc_present(size, base, e2e_crc, characteristic=c, name=name)
    if secured:
        check_e2e_crc(data, start, start + base, characteristic=c, name=name)
    offset = start + 6
    octets: list[int | None] = []
    for index, bit in enumerate((_FLAG_STATUS, _FLAG_CAL_TEMP, _FLAG_WARNING)):
        if not flags & bit:
            octets.append(None)
            continue
        octet = data[offset]
        if octet & _OCTET_RFU[index]:
            reason = f"reserved bits set in the {_OCTET_NAMES[index]} octet (0x{octet:02X})"
            fail(c, name, reason, offset)
        octets.append(octet)
        offset += 1
    trend = quality = None
    if flags & _FLAG_TREND:
        trend = _sfloat(data, offset)
        offset += 2
    if flags & _FLAG_QUALITY:
        quality = _sfloat(data, offset)
    record = CgmMeasurementRecord(
        _sfloat(data, start + 2),
        _u16(data, start + 4),
        octets[0],
        octets[1],
        octets[2],
        trend,
        quality,
        secured,
    )
    return record, start + size


def decode_cgm_measurement(data: bytes, *, e2e_crc: bool | None = None) -> CgmMeasurement:
    """Decode 0x2AA7: one or more records; every byte must belong to a record.

    ``e2e_crc`` is the CGM Feature's E2E-CRC Supported bit (``None``: judge by each Size).
    """
    if not data:
        fail(CGM_MEASUREMENT, _MEASUREMENT_NAME, "empty value: needs a record", 0)
    records = []
    offset = 0
    while offset < len(data):
        record, offset = _decode_record(data, offset, e2e_crc)
        records.append(record)
    return CgmMeasurement(tuple(records))


@dataclass(frozen=True, slots=True)
class CgmSessionMeasurement:
    """A CGM Measurement placed in its session: the records and the CGM Session Start Time
    the collector read in that session (``None`` when it had none).

    Each record's Time Offset counts minutes from the Session Start Time (CGMS 1.0.2, CGM
    Measurement), so the session start is what turns a record into a time; it also names the
    session, so that a sensor change (a new start) is a new sequence of records.
    """

    measurement: CgmMeasurement
    session_start_time: CgmSessionStartTime | None = None

    @property
    def device_time(self) -> dt.datetime | None:
        """The newest record's time on the session's timeline (Session Start Time + its Time
        Offset); ``None`` without a session start or when the start has no date."""
        start = self.session_start_time
        when = None if start is None else start.session_start_time.to_datetime()
        if when is None:
            return None
        newest = max(r.time_offset_min for r in self.measurement.records)
        return when + dt.timedelta(minutes=newest)


def _check_u16(value: int, what: str, name: str) -> None:
    if not 0 <= value <= 0xFFFF:
        raise EncodeError(name, f"{what} {value} does not fit uint16")


def encode_cgm_measurement_record(record: CgmMeasurementRecord) -> bytes:
    """Encode one record, its Size and (when ``secured``) its E2E-CRC included."""
    name = _MEASUREMENT_NAME
    _check_u16(record.time_offset_min, "time offset", name)
    flags = 0
    tail = b""
    octets = (record.status_octet, record.cal_temp_octet, record.warning_octet)
    for index, (bit, octet) in enumerate(
        zip((_FLAG_STATUS, _FLAG_CAL_TEMP, _FLAG_WARNING), octets, strict=True)
    ):
        if octet is None:
            continue
        if not 0 <= octet <= 0xFF or octet & _OCTET_RFU[index]:
            raise EncodeError(name, f"{_OCTET_NAMES[index]} octet 0x{octet:X} not encodable")
        flags |= bit
        tail += bytes((octet,))
    if record.trend_mg_dl_per_min is not None:
        flags |= _FLAG_TREND
        tail += encode_medfloat16(record.trend_mg_dl_per_min)
    if record.quality_percent is not None:
        flags |= _FLAG_QUALITY
        tail += encode_medfloat16(record.quality_percent)
    size = _RECORD_MIN + len(tail) + (E2E_CRC_SIZE if record.secured else 0)
    body = (
        bytes((size, flags))
        + encode_medfloat16(record.glucose_concentration_mg_dl)
        + record.time_offset_min.to_bytes(2, "little")
        + tail
    )
    return _finish(body, record.secured)


def encode_cgm_measurement(value: CgmMeasurement) -> bytes:
    """Encode 0x2AA7: the records concatenated."""
    if not value.records:
        raise EncodeError(_MEASUREMENT_NAME, "needs at least one record")
    return b"".join(encode_cgm_measurement_record(record) for record in value.records)


# --- CGM Feature ----------------------------------------------------------------------------


class CgmFeatureBits(enum.IntFlag):
    """CGM Feature bits (GSS *CGM Feature*); bits 17-23 are RFU."""

    CALIBRATION = 1 << 0
    PATIENT_HIGH_LOW_ALERTS = 1 << 1
    HYPO_ALERTS = 1 << 2
    HYPER_ALERTS = 1 << 3
    RATE_OF_INCREASE_DECREASE_ALERTS = 1 << 4
    DEVICE_SPECIFIC_ALERT = 1 << 5
    SENSOR_MALFUNCTION_DETECTION = 1 << 6
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 7
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 8
    LOW_BATTERY_DETECTION = 1 << 9
    SENSOR_TYPE_ERROR_DETECTION = 1 << 10
    GENERAL_DEVICE_FAULT = 1 << 11
    E2E_CRC = 1 << 12
    MULTIPLE_BOND = 1 << 13
    MULTIPLE_SESSIONS = 1 << 14
    CGM_TREND_INFORMATION = 1 << 15
    CGM_QUALITY = 1 << 16


_FEATURE_RFU = 0xFE0000


class CgmType(OpenIntEnum):
    """CGM Type nibble (GSS *CGM Feature*); 0 and 11-15 are RFU (kept)."""

    CAPILLARY_WHOLE_BLOOD = 0x1
    CAPILLARY_PLASMA = 0x2
    VENOUS_WHOLE_BLOOD = 0x3
    VENOUS_PLASMA = 0x4
    ARTERIAL_WHOLE_BLOOD = 0x5
    ARTERIAL_PLASMA = 0x6
    UNDETERMINED_WHOLE_BLOOD = 0x7
    UNDETERMINED_PLASMA = 0x8
    INTERSTITIAL_FLUID = 0x9
    CONTROL_SOLUTION = 0xA


class CgmSampleLocation(OpenIntEnum):
    """CGM Sample Location nibble (GSS *CGM Feature*); 0 and 6-14 are RFU (kept)."""

    FINGER = 0x1
    ALTERNATE_SITE_TEST = 0x2
    EARLOBE = 0x3
    CONTROL_SOLUTION = 0x4
    SUBCUTANEOUS_TISSUE = 0x5
    NOT_AVAILABLE = 0xF


def _type_location(byte: int) -> tuple[CgmType, CgmSampleLocation]:
    return CgmType(byte & 0x0F), CgmSampleLocation(byte >> 4)


def _type_location_byte(what: str, type_: int, location: int) -> int:
    if not 0 <= type_ <= 0xF or not 0 <= location <= 0xF:
        raise EncodeError(what, f"type {type_} or sample location {location} is not a nibble")
    return int(type_) | int(location) << 4


@dataclass(frozen=True, slots=True)
class CgmFeature:
    """CGM Feature 0x2AA8 (GSS *CGM Feature*): what the sensor supports, its type and site."""

    features: CgmFeatureBits
    type: CgmType = CgmType.INTERSTITIAL_FLUID
    sample_location: CgmSampleLocation = CgmSampleLocation.SUBCUTANEOUS_TISSUE

    @property
    def e2e_crc_supported(self) -> bool:
        """Bit 12: every CGMS value carries an E2E-CRC."""
        return CgmFeatureBits.E2E_CRC in self.features


CGM_FEATURE_SIZE = 6


def decode_cgm_feature(data: bytes) -> CgmFeature:
    """Decode 0x2AA8: exactly 6 bytes; the E2E-CRC is checked when bit 12 says it is supported,
    and must be 0xFFFF when it is not (CGMS 1.0.2 section 3.2)."""
    c, name = CGM_FEATURE, _FEATURE_NAME
    if len(data) != CGM_FEATURE_SIZE:
        layout = (("CGM Feature", 3), ("Type-Sample Location", 1), ("E2E-CRC", 2))
        raise length_error(c, name, layout, len(data))
    raw = int.from_bytes(data[0:3], "little")
    if raw & _FEATURE_RFU:
        fail(c, name, f"reserved feature bits set (0x{raw:06X})", 0)
    features = CgmFeatureBits(raw)
    if CgmFeatureBits.E2E_CRC in features:
        check_e2e_crc(data, 0, 4, characteristic=c, name=name)
    elif _u16(data, 4) != CRC_NOT_SUPPORTED:
        fail(c, name, f"E2E-CRC 0x{_u16(data, 4):04X} must be 0xFFFF when not supported", 4)
    type_, location = _type_location(data[3])
    return CgmFeature(features, type_, location)


def encode_cgm_feature(value: CgmFeature) -> bytes:
    """Encode 0x2AA8 with its E2E-CRC (or 0xFFFF when E2E-CRC is not supported)."""
    raw = int(value.features)
    if raw < 0 or raw & _FEATURE_RFU:
        raise EncodeError(_FEATURE_NAME, f"reserved feature bits in 0x{raw:06X}")
    body = raw.to_bytes(3, "little") + bytes(
        (_type_location_byte(_FEATURE_NAME, value.type, value.sample_location),)
    )
    if value.e2e_crc_supported:
        return with_e2e_crc(body)
    return body + CRC_NOT_SUPPORTED.to_bytes(2, "little")


# --- CGM Status -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgmStatus:
    """CGM Status 0x2AA9 (GSS *CGM Status*): the status now, at ``time_offset_min``."""

    time_offset_min: int
    status: CgmSensorStatus
    secured: bool = False


def decode_cgm_status(data: bytes, *, e2e_crc: bool | None = None) -> CgmStatus:
    """Decode 0x2AA9: Time Offset, the 24-bit status, [E2E-CRC]."""
    c, name = CGM_STATUS, _STATUS_NAME
    secured = _whole_value_secured(data, 5, e2e_crc, characteristic=c, name=name)
    raw = int.from_bytes(data[2:5], "little")
    if raw & SENSOR_STATUS_RFU:
        fail(c, name, f"reserved status bits set (0x{raw:06X})", 2)
    return CgmStatus(_u16(data, 0), CgmSensorStatus(raw), secured)


def encode_cgm_status(value: CgmStatus) -> bytes:
    """Encode 0x2AA9."""
    _check_u16(value.time_offset_min, "time offset", _STATUS_NAME)
    raw = int(value.status)
    if raw < 0 or raw & SENSOR_STATUS_RFU or raw > 0xFFFFFF:
        raise EncodeError(_STATUS_NAME, f"reserved status bits in 0x{raw:X}")
    body = value.time_offset_min.to_bytes(2, "little") + raw.to_bytes(3, "little")
    return _finish(body, value.secured)


# --- CGM Session Start Time -----------------------------------------------------------------

#: Time Zone value meaning "unknown" (GSS *Time Zone*).
TIME_ZONE_UNKNOWN = -128


class DstOffset(enum.IntEnum):
    """DST Offset (GSS *DST Offset*); other values are RFU."""

    STANDARD_TIME = 0
    HALF_AN_HOUR_DAYLIGHT_TIME = 2
    DAYLIGHT_TIME = 4
    DOUBLE_DAYLIGHT_TIME = 8
    UNKNOWN = 255

    @property
    def minutes(self) -> int | None:
        """The offset in minutes, ``None`` when unknown."""
        return None if self is DstOffset.UNKNOWN else 15 * int(self)


_DST_OFFSETS = {member.value: member for member in DstOffset}


@dataclass(frozen=True, slots=True)
class CgmSessionStartTime:
    """CGM Session Start Time 0x2AAA (GSS *CGM Session Start Time*).

    ``time_zone_15min`` is -48..56 quarter hours, or :data:`TIME_ZONE_UNKNOWN`. The Time Offset
    of every record counts minutes from this time.
    """

    session_start_time: DateTime
    time_zone_15min: int = TIME_ZONE_UNKNOWN
    dst_offset: DstOffset = DstOffset.UNKNOWN
    secured: bool = False


_SST_SIZE = DATE_TIME_SIZE + 2


def decode_cgm_session_start_time(
    data: bytes, *, e2e_crc: bool | None = None
) -> CgmSessionStartTime:
    """Decode 0x2AAA: Date Time, Time Zone (sint8), DST Offset, [E2E-CRC]."""
    c, name = CGM_SESSION_START_TIME, _SST_NAME
    secured = _whole_value_secured(data, _SST_SIZE, e2e_crc, characteristic=c, name=name)
    start = decode_date_time(data, 0, characteristic=c, name=name)
    tz = data[7] - 0x100 if data[7] >= 0x80 else data[7]
    if not (-48 <= tz <= 56 or tz == TIME_ZONE_UNKNOWN):
        fail(c, name, f"reserved Time Zone {tz}", 7)
    dst = _DST_OFFSETS.get(data[8])
    if dst is None:
        fail(c, name, f"reserved DST Offset {data[8]}", 8)
    return CgmSessionStartTime(start, tz, dst, secured)


def encode_cgm_session_start_time(value: CgmSessionStartTime) -> bytes:
    """Encode 0x2AAA (the value a collector writes to start a session's clock)."""
    tz = value.time_zone_15min
    if not (-48 <= tz <= 56 or tz == TIME_ZONE_UNKNOWN):
        raise EncodeError(_SST_NAME, f"Time Zone {tz} out of range")
    body = encode_date_time(value.session_start_time) + bytes(
        (tz & 0xFF, int(DstOffset(value.dst_offset)))
    )
    return _finish(body, value.secured)


# --- CGM Session Run Time -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgmSessionRunTime:
    """CGM Session Run Time 0x2AAB (GSS *CGM Session Run Time*): expected run time in hours."""

    run_time_h: int
    secured: bool = False


def decode_cgm_session_run_time(data: bytes, *, e2e_crc: bool | None = None) -> CgmSessionRunTime:
    """Decode 0x2AAB: uint16 hours, [E2E-CRC]."""
    c, name = CGM_SESSION_RUN_TIME, _SRT_NAME
    secured = _whole_value_secured(data, 2, e2e_crc, characteristic=c, name=name)
    return CgmSessionRunTime(_u16(data, 0), secured)


def encode_cgm_session_run_time(value: CgmSessionRunTime) -> bytes:
    """Encode 0x2AAB."""
    _check_u16(value.run_time_h, "run time", _SRT_NAME)
    body = value.run_time_h.to_bytes(2, "little")
    return _finish(body, value.secured)


# --- registration ---------------------------------------------------------------------------
# Registered decoders judge the E2E-CRC by length (``e2e_crc=None``); a session that has read
# the CGM Feature calls the module functions with the Feature's bit instead.

for _uuid, _name, _value, _decode, _encode in (
    (CGM_MEASUREMENT, _MEASUREMENT_NAME, CgmMeasurement, decode_cgm_measurement,
     encode_cgm_measurement),
    (CGM_FEATURE, _FEATURE_NAME, CgmFeature, decode_cgm_feature, encode_cgm_feature),
    (CGM_STATUS, _STATUS_NAME, CgmStatus, decode_cgm_status, encode_cgm_status),
    (CGM_SESSION_START_TIME, _SST_NAME, CgmSessionStartTime, decode_cgm_session_start_time,
     encode_cgm_session_start_time),
    (CGM_SESSION_RUN_TIME, _SRT_NAME, CgmSessionRunTime, decode_cgm_session_run_time,
     encode_cgm_session_run_time),
):  # fmt: skip
    codec(
        _uuid,
        _name,
        gss=_name,
        service=f"CGMS 1.0.2 ({_name} characteristic)",
        values=(_value,),
        encode=_encode,
    )(_decode)
