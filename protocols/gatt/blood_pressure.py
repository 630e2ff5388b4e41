"""Blood Pressure Service 0x1810: Blood Pressure Measurement 0x2A35, Intermediate Cuff Pressure
0x2A36 and Blood Pressure Feature 0x2A49.

GSS section 3.31 *Blood Pressure Measurement* (BLS 1.0 section 3.1; docs/protocols/phd.md 2.1):

====== ==== =================================================== ============
Offset Size Field                                               Present if
====== ==== =================================================== ============
0      1    Flags: bit0 unit (0 mmHg, 1 kPa), bit1 time stamp,  always
            bit2 pulse rate, bit3 user ID, bit4 measurement
            status, bits 5-7 RFU
1      2    Systolic (SFLOAT)                                   always
3      2    Diastolic (SFLOAT)                                  always
5      2    Mean Arterial Pressure (SFLOAT)                     always
7      7    Time Stamp (Date Time, GSS 3.70)                    bit1
+0     2    Pulse Rate (SFLOAT, beats/min)                      bit2
+0     1    User ID (uint8, 0xFF = unknown user)                bit3
+0     2    Measurement Status (16 bits)                        bit4
====== ==== =================================================== ============

Measurement Status (GSS 3.31.2.6): bit0 body movement detected, bit1 cuff too loose, bit2
irregular pulse detected, bits 3-4 pulse rate range (0 within, 1 exceeds upper limit, 2 below
lower limit, 3 reserved), bit5 improper measurement position, bits 6-15 RFU.

Intermediate Cuff Pressure (GSS 3.129) has the same layout; its first SFLOAT is the current cuff
pressure and the other two "shall be NaN" (Nordic's test data sends 0), so they are kept only
to re-encode the value exactly. It is display-only and yields no observation.

Blood Pressure Feature (GSS 3.32) is a uint16; BLS 1.1 defines bits 0-8, bits 9-15 are RFU.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

from protocols.errors import EncodeError
from protocols.gatt import observation as obs
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import (
    DATE_TIME_SIZE,
    DateTime,
    _new_date_time,
    build_date_time,
    encode_date_time,
)
from protocols.gatt.medfloat import (
    _SFLOAT_CACHE,
    MedFloat,
    Special,
    encode_medfloat16,
    sfloat_from_raw,
)

BLOOD_PRESSURE_SERVICE = 0x1810
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
INTERMEDIATE_CUFF_PRESSURE = 0x2A36
BLOOD_PRESSURE_FEATURE = 0x2A49

#: The User ID value meaning "unknown user" (GSS 3.31.2.5).
UNKNOWN_USER = 0xFF

_FLAG_KPA = 0x01
_FLAG_TIME_STAMP = 0x02
_FLAG_PULSE_RATE = 0x04
_FLAG_USER_ID = 0x08
_FLAG_STATUS = 0x10
_FLAGS_RFU = 0xE0

_BPM_NAME = "Blood Pressure Measurement"
_ICP_NAME = "Intermediate Cuff Pressure"


class PressureUnit(enum.Enum):
    """Unit selected by flag bit 0, as its UCUM code."""

    MMHG = "mm[Hg]"
    KPA = "kPa"


_UNITS = (PressureUnit.MMHG, PressureUnit.KPA)


class PulseRateRange(enum.IntEnum):
    """Measurement Status bits 3-4 (GSS 3.31.2.6); 3 is reserved."""

    WITHIN_RANGE = 0
    EXCEEDS_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2


_STATUS_RFU = 0xFFC0
_STATUS_RANGE_SHIFT = 3
_STATUS_RANGE_MASK = 0x18


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurementStatus:
    """Measurement Status of 0x2A35/0x2A36 (GSS 3.31.2.6), kept as its raw 16 bits."""

    raw: int

    def __post_init__(self) -> None:
        if not 0 <= self.raw <= 0xFFFF or self.raw & _STATUS_RFU:
            raise ValueError(f"reserved Measurement Status bits in 0x{self.raw:04X}")
        if (self.raw & _STATUS_RANGE_MASK) == _STATUS_RANGE_MASK:
            raise ValueError("reserved pulse rate range 3")

    @classmethod
    def of(
        cls,
        *,
        body_movement_detected: bool = False,
        cuff_too_loose: bool = False,
        irregular_pulse_detected: bool = False,
        pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN_RANGE,
        improper_measurement_position: bool = False,
    ) -> BloodPressureMeasurementStatus:
        """Build from named fields."""
        return cls(
            int(body_movement_detected)
            | int(cuff_too_loose) << 1
            | int(irregular_pulse_detected) << 2
            | int(pulse_rate_range) << _STATUS_RANGE_SHIFT
            | int(improper_measurement_position) << 5
        )

    @property
    def body_movement_detected(self) -> bool:
        """Bit 0: body movement detected during measurement."""
        return bool(self.raw & 0x01)

    @property
    def cuff_too_loose(self) -> bool:
        """Bit 1: cuff fit too loose."""
        return bool(self.raw & 0x02)

    @property
    def irregular_pulse_detected(self) -> bool:
        """Bit 2: irregular pulse detected."""
        return bool(self.raw & 0x04)

    @property
    def pulse_rate_range(self) -> PulseRateRange:
        """Bits 3-4: pulse rate within, above or below the device's range."""
        return PulseRateRange((self.raw & _STATUS_RANGE_MASK) >> _STATUS_RANGE_SHIFT)

    @property
    def improper_measurement_position(self) -> bool:
        """Bit 5: improper measurement position."""
        return bool(self.raw & 0x20)

    def flag_names(self) -> frozenset[str]:
        """The set status conditions as observation flag names."""
        names = set()
        if self.body_movement_detected:
            names.add("body-movement-detected")
        if self.cuff_too_loose:
            names.add("cuff-too-loose")
        if self.irregular_pulse_detected:
            names.add("irregular-pulse-detected")
        if self.pulse_rate_range is PulseRateRange.EXCEEDS_UPPER_LIMIT:
            names.add("pulse-rate-exceeds-upper-limit")
        elif self.pulse_rate_range is PulseRateRange.BELOW_LOWER_LIMIT:
            names.add("pulse-rate-below-lower-limit")
        if self.improper_measurement_position:
            names.add("improper-measurement-position")
        return frozenset(names)


# Validated statuses by raw value: at most 2**6 - 2**4 valid values, so the cache is bounded.
_STATUS_CACHE: dict[int, BloodPressureMeasurementStatus] = {}


def _status(
    raw: int, characteristic: int, name: str, offset: int
) -> BloodPressureMeasurementStatus:
    cached = _STATUS_CACHE.get(raw)
    if cached is not None:
        return cached
    if raw & _STATUS_RFU:
        fail(characteristic, name, f"reserved Measurement Status bits set (0x{raw:04X})", offset)
    if (raw & _STATUS_RANGE_MASK) == _STATUS_RANGE_MASK:
        fail(characteristic, name, "reserved pulse rate range 3 in Measurement Status", offset)
    status = _STATUS_CACHE[raw] = BloodPressureMeasurementStatus(raw)
    return status


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """Blood Pressure Measurement 0x2A35 (GSS 3.31).

    Pressures are in ``unit`` (mmHg or kPa); the pulse rate is in beats per minute.
    ``corrections`` names the device quirks applied to decode it (empty when strict).
    """

    systolic: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp: DateTime | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None
    corrections: frozenset[str] = frozenset()


_NAN = MedFloat(None, Special.NAN)


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """Intermediate Cuff Pressure 0x2A36 (GSS 3.129): live cuff pressure, display only."""

    current_cuff_pressure: MedFloat
    unit: PressureUnit = PressureUnit.MMHG
    time_stamp: DateTime | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: BloodPressureMeasurementStatus | None = None
    unused_diastolic: MedFloat = _NAN
    unused_mean_arterial_pressure: MedFloat = _NAN
    corrections: frozenset[str] = frozenset()


def _layout(flags: int) -> tuple[tuple[str, int], ...]:
    fields: list[tuple[str, int]] = [
        ("Flags", 1),
        ("SFLOAT 1", 2),
        ("SFLOAT 2", 2),
        ("SFLOAT 3", 2),
    ]
    if flags & _FLAG_TIME_STAMP:
        fields.append(("Time Stamp", DATE_TIME_SIZE))
    if flags & _FLAG_PULSE_RATE:
        fields.append(("Pulse Rate", 2))
    if flags & _FLAG_USER_ID:
        fields.append(("User ID", 1))
    if flags & _FLAG_STATUS:
        fields.append(("Measurement Status", 2))
    return tuple(fields)


def _struct(flags: int) -> struct.Struct:
    fmt = "<BHHH"
    if flags & _FLAG_TIME_STAMP:
        fmt += "HBBBBB"
    if flags & _FLAG_PULSE_RATE:
        fmt += "H"
    if flags & _FLAG_USER_ID:
        fmt += "B"
    if flags & _FLAG_STATUS:
        fmt += "H"
    return struct.Struct(fmt)


# Per valid flags value (0..31): (exact length, precompiled struct, offset of the status field).
_PLANS: tuple[tuple[int, struct.Struct, int], ...] = tuple(
    (_struct(f).size, _struct(f), _struct(f).size - 2) for f in range(0x20)
)


def _decode_fields(
    data: bytes, characteristic: int, name: str
) -> tuple[
    int,
    int,
    int,
    int,
    DateTime | None,
    MedFloat | None,
    int | None,
    BloodPressureMeasurementStatus | None,
]:
    """Validate and unpack: (flags, raw SFLOAT 1..3, time stamp, pulse, user, status)."""
    n = len(data)
    if not n:
        fail(characteristic, name, "empty value: needs Flags", 0)
    flags = data[0]
    if flags & _FLAGS_RFU:
        fail(characteristic, name, f"reserved flag bits set (0x{flags:02X})", 0)
    size, unpacker, status_offset = _PLANS[flags]
    if n != size:
        raise length_error(characteristic, name, _layout(flags), n)
    values = unpacker.unpack(data)
    i = 4
    time_stamp = None
    if flags & _FLAG_TIME_STAMP:
        time_stamp = build_date_time(
            *values[4:10], characteristic=characteristic, name=name, offset=7
        )
        i = 10
    pulse = None
    if flags & _FLAG_PULSE_RATE:
        raw = values[i]
        pulse = _SFLOAT_CACHE.get(raw) or sfloat_from_raw(raw)
        i += 1
    user_id = None
    if flags & _FLAG_USER_ID:
        user_id = values[i]
        i += 1
    status = None
    if flags & _FLAG_STATUS:
        status = _status(values[i], characteristic, name, status_offset)
    return flags, values[1], values[2], values[3], time_stamp, pulse, user_id, status


# The hot path builds the frozen instance through its slot descriptors (see
# ``protocols.gatt._wire.fast_constructor``); the values are validated first.
_new = object.__new__
_BPM_SET = tuple(
    BloodPressureMeasurement.__dict__[f].__set__
    for f in BloodPressureMeasurement.__dataclass_fields__
)
(
    _set_sys,
    _set_dia,
    _set_map,
    _set_unit,
    _set_ts,
    _set_pulse,
    _set_user,
    _set_status,
    _set_corr,
) = _BPM_SET
_NO_CORRECTIONS: frozenset[str] = frozenset()


def _bpm_plan(flags: int) -> tuple[int, Any, int, int, int, int]:
    """(size, bound unpack, index of: time stamp, pulse, user ID, status; 0 when absent)."""
    unpacker = _PLANS[flags][1]
    i = 4
    ts = pulse = user = status = 0
    if flags & _FLAG_TIME_STAMP:
        ts, i = i, i + 6
    if flags & _FLAG_PULSE_RATE:
        pulse, i = i, i + 1
    if flags & _FLAG_USER_ID:
        user, i = i, i + 1
    if flags & _FLAG_STATUS:
        status = i
    return unpacker.size, unpacker.unpack, ts, pulse, user, status


_BPM_PLANS = tuple(_bpm_plan(f) for f in range(0x20))


def decode_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    """Decode 0x2A35 strictly: RFU flags, reserved status values, truncation and trailing
    bytes are :class:`~protocols.gatt.DecodeError`.

    This is the hottest decoder (stored-record replays), so the valid path is inlined: one
    length check against a per-flags plan, one precompiled unpack, cached SFLOATs and statuses.
    Anything unusual falls through to the general path, which raises the precise error.
    """
    n = len(data)
    if n and data[0] < 0x20:
        flags = data[0]
        size, unpack, ts_i, pulse_i, user_i, status_i = _BPM_PLANS[flags]
        if n == size:
            v = unpack(data)
            time_stamp = None
            if ts_i:
                year, month, day, hours, minutes, seconds = v[4:10]
                if (
                    month <= 12
                    and day <= 31
                    and hours <= 23
                    and minutes <= 59
                    and seconds <= 59
                    and (not year or 1582 <= year <= 9999)
                ):
                    time_stamp = _new_date_time(year, month, day, hours, minutes, seconds)
                else:
                    return _decode_bpm_general(data)
            status = None
            if status_i:
                status = _STATUS_CACHE.get(v[status_i])
                if status is None:
                    return _decode_bpm_general(data)
            cache = _SFLOAT_CACHE
            raw = v[1]
            obj = _new(BloodPressureMeasurement)
            _set_sys(obj, cache.get(raw) or sfloat_from_raw(raw))
            raw = v[2]
            _set_dia(obj, cache.get(raw) or sfloat_from_raw(raw))
            raw = v[3]
            _set_map(obj, cache.get(raw) or sfloat_from_raw(raw))
            _set_unit(obj, _UNITS[flags & _FLAG_KPA])
            _set_ts(obj, time_stamp)
            if pulse_i:
                raw = v[pulse_i]
                _set_pulse(obj, cache.get(raw) or sfloat_from_raw(raw))
            else:
                _set_pulse(obj, None)
            _set_user(obj, v[user_i] if user_i else None)
            _set_status(obj, status)
            _set_corr(obj, _NO_CORRECTIONS)
            return obj
    return _decode_bpm_general(data)


def _decode_bpm_general(data: bytes) -> BloodPressureMeasurement:
    flags, s, d, m, time_stamp, pulse, user_id, status = _decode_fields(
        data, BLOOD_PRESSURE_MEASUREMENT, _BPM_NAME
    )
    return BloodPressureMeasurement(
        sfloat_from_raw(s),
        sfloat_from_raw(d),
        sfloat_from_raw(m),
        _UNITS[flags & _FLAG_KPA],
        time_stamp,
        pulse,
        user_id,
        status,
    )


def decode_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    """Decode 0x2A36 strictly (same layout as 0x2A35)."""
    flags, s, d, m, time_stamp, pulse, user_id, status = _decode_fields(
        data, INTERMEDIATE_CUFF_PRESSURE, _ICP_NAME
    )
    return IntermediateCuffPressure(
        current_cuff_pressure=sfloat_from_raw(s),
        unit=_UNITS[flags & _FLAG_KPA],
        time_stamp=time_stamp,
        pulse_rate_bpm=pulse,
        user_id=user_id,
        measurement_status=status,
        unused_diastolic=sfloat_from_raw(d),
        unused_mean_arterial_pressure=sfloat_from_raw(m),
    )


def _encode(
    what: str,
    unit: PressureUnit,
    *,
    first: MedFloat,
    second: MedFloat,
    third: MedFloat,
    time_stamp: DateTime | None,
    pulse: MedFloat | None,
    user_id: int | None,
    status: BloodPressureMeasurementStatus | None,
) -> bytes:
    flags = _FLAG_KPA if unit is PressureUnit.KPA else 0
    tail = b""
    if time_stamp is not None:
        flags |= _FLAG_TIME_STAMP
        tail += encode_date_time(time_stamp)
    if pulse is not None:
        flags |= _FLAG_PULSE_RATE
        tail += encode_medfloat16(pulse)
    if user_id is not None:
        if not 0 <= user_id <= 0xFF:
            raise EncodeError(what, f"user ID {user_id} out of range")
        flags |= _FLAG_USER_ID
        tail += bytes((user_id,))
    if status is not None:
        flags |= _FLAG_STATUS
        tail += status.raw.to_bytes(2, "little")
    return (
        bytes((flags,))
        + encode_medfloat16(first)
        + encode_medfloat16(second)
        + encode_medfloat16(third)
        + tail
    )


def encode_blood_pressure_measurement(m: BloodPressureMeasurement) -> bytes:
    """Encode to the wire layout; flags follow from which optional fields are set."""
    return _encode(
        _BPM_NAME,
        m.unit,
        first=m.systolic,
        second=m.diastolic,
        third=m.mean_arterial_pressure,
        time_stamp=m.time_stamp,
        pulse=m.pulse_rate_bpm,
        user_id=m.user_id,
        status=m.measurement_status,
    )


def encode_intermediate_cuff_pressure(m: IntermediateCuffPressure) -> bytes:
    """Encode to the wire layout; flags follow from which optional fields are set."""
    return _encode(
        _ICP_NAME,
        m.unit,
        first=m.current_cuff_pressure,
        second=m.unused_diastolic,
        third=m.unused_mean_arterial_pressure,
        time_stamp=m.time_stamp,
        pulse=m.pulse_rate_bpm,
        user_id=m.user_id,
        status=m.measurement_status,
    )


class BloodPressureFeatureBits(enum.IntFlag):
    """Blood Pressure Feature bits (GSS 3.32, BLS 1.1)."""

    BODY_MOVEMENT_DETECTION = 0x0001
    CUFF_FIT_DETECTION = 0x0002
    IRREGULAR_PULSE_DETECTION = 0x0004
    PULSE_RATE_RANGE_DETECTION = 0x0008
    MEASUREMENT_POSITION_DETECTION = 0x0010
    MULTIPLE_BONDS = 0x0020
    E2E_CRC = 0x0040
    USER_DATA_SERVICE = 0x0080
    USER_FACING_TIME = 0x0100


_FEATURE_RFU = 0xFE00


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """Blood Pressure Feature 0x2A49 (GSS 3.32): what the cuff can detect."""

    features: BloodPressureFeatureBits


def decode_blood_pressure_feature(data: bytes) -> BloodPressureFeature:
    """Decode 0x2A49: exactly 2 bytes, RFU bits 9-15 rejected."""
    name = "Blood Pressure Feature"
    if len(data) != 2:
        raise length_error(BLOOD_PRESSURE_FEATURE, name, (("Feature", 2),), len(data))
    raw = data[0] | data[1] << 8
    if raw & _FEATURE_RFU:
        fail(BLOOD_PRESSURE_FEATURE, name, f"reserved feature bits set (0x{raw:04X})", 0)
    return BloodPressureFeature(BloodPressureFeatureBits(raw))


def encode_blood_pressure_feature(m: BloodPressureFeature) -> bytes:
    """Encode 0x2A49."""
    raw = int(m.features)
    if raw & _FEATURE_RFU or raw < 0:
        raise EncodeError("Blood Pressure Feature", f"reserved bits in 0x{raw:04X}")
    return raw.to_bytes(2, "little")


# --- observations ------------------------------------------------------------------------------


def blood_pressure_observations(m: BloodPressureMeasurement) -> list[obs.Observation]:
    """Systolic, diastolic and mean (components of MDC_PRESS_BLD_NONINV, LOINC 85354-9) and the
    cuff's pulse rate (MDC_PULS_RATE_NON_INV, a separate observation per the PHD IG).

    A mean arterial pressure of exactly 0 is "not provided" (Beurer BM85 sends 0 in the
    mandatory field; docs/protocols/phd.md 2.1) and yields no observation. Status bits become
    flags on every observation.
    """
    flags = obs.quirk_flags(m.corrections)
    if m.measurement_status is not None:
        flags |= m.measurement_status.flag_names()
    timestamp = None
    if m.time_stamp is not None:
        timestamp = m.time_stamp.to_datetime()
        if timestamp is None:
            flags |= {"device-time-unknown"}
    unit = m.unit.value
    out = []
    components = (
        (obs.MDC_PRESS_BLD_NONINV_SYS, m.systolic),
        (obs.MDC_PRESS_BLD_NONINV_DIA, m.diastolic),
        (obs.MDC_PRESS_BLD_NONINV_MEAN, m.mean_arterial_pressure),
    )
    for code, value in components:
        if code == obs.MDC_PRESS_BLD_NONINV_MEAN and value.value is not None and not value.value:
            continue
        out.append(
            obs.Observation.from_medfloat(
                code,
                obs.MDC_TABLE[code][1],
                value,
                unit,
                timestamp=timestamp,
                flags=flags | {f"component-of:{obs.MDC_PRESS_BLD_NONINV}"},
                user_id=m.user_id,
            )
        )
    if m.pulse_rate_bpm is not None:
        out.append(
            obs.Observation.from_medfloat(
                obs.MDC_PULS_RATE_NON_INV,
                obs.LOINC_HEART_RATE,
                m.pulse_rate_bpm,
                "/min",
                timestamp=timestamp,
                flags=flags,
                user_id=m.user_id,
            )
        )
    return out
