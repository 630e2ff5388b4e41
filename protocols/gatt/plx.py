"""Pulse Oximeter Service 0x1822: PLX Spot-check Measurement 0x2A5E, PLX Continuous
Measurement 0x2A5F and PLX Features 0x2A60 (PLXS 1.0; docs/protocols/phd.md 2.4).

Spot-check (GSS 3.170): Flags (bit0 time stamp, bit1 measurement status, bit2 device and sensor
status, bit3 pulse amplitude index, bit4 device clock is not set, bits 5-7 RFU); SpO2 (SFLOAT %);
PR (SFLOAT /min); [Time Stamp 7]; [Measurement Status 2]; [Device and Sensor Status 3];
[Pulse Amplitude Index SFLOAT %].

Continuous (GSS 3.169): Flags (bit0 SpO2PR-Fast, bit1 SpO2PR-Slow, bit2 measurement status,
bit3 device and sensor status, bit4 pulse amplitude index, bits 5-7 RFU); SpO2PR-Normal (2+2);
[SpO2PR-Fast 2+2]; [SpO2PR-Slow 2+2]; [Measurement Status 2]; [Device and Sensor Status 3];
[PAI 2].

PLX Features (GSS 3.171): Supported Features uint16 (bits 8-15 RFU), then Measurement Status
Support uint16 only if bit0, then Device and Sensor Status Support uint24 only if bit1.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt import observation as obs
from protocols.gatt._wire import fail, length_error
from protocols.gatt.datetime_ import DATE_TIME_SIZE, DateTime, decode_date_time, encode_date_time
from protocols.gatt.medfloat import _SFLOAT_CACHE, MedFloat, encode_medfloat16, sfloat_from_raw

PULSE_OXIMETER_SERVICE = 0x1822
PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_CONTINUOUS_MEASUREMENT = 0x2A5F
PLX_FEATURES = 0x2A60


class PlxMeasurementStatus(enum.IntFlag):
    """PLX Measurement Status (GSS 3.170.2.4); bits 0-4 are RFU."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(enum.IntFlag):
    """PLX Device and Sensor Status (GSS 3.170.2.5), 24 bits; bits 16-23 are RFU."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


_MS_RFU = 0x001F
_DSS_RFU = 0xFF0000

# Validated flag values by raw value (devices repeat a handful of values; the caches are capped).
_MS_CACHE: dict[int, PlxMeasurementStatus] = {}
_DSS_CACHE: dict[int, PlxDeviceAndSensorStatus] = {}
_CACHE_CAP = 4096


def _measurement_status(
    data: bytes, offset: int, characteristic: int, name: str
) -> PlxMeasurementStatus:
    raw = data[offset] | data[offset + 1] << 8
    cached = _MS_CACHE.get(raw)
    if cached is not None:
        return cached
    if raw & _MS_RFU:
        fail(characteristic, name, f"reserved Measurement Status bits set (0x{raw:04X})", offset)
    value = PlxMeasurementStatus(raw)
    if len(_MS_CACHE) < _CACHE_CAP:
        _MS_CACHE[raw] = value
    return value


def _device_status(
    data: bytes, offset: int, characteristic: int, name: str
) -> PlxDeviceAndSensorStatus:
    raw = data[offset] | data[offset + 1] << 8 | data[offset + 2] << 16
    cached = _DSS_CACHE.get(raw)
    if cached is not None:
        return cached
    if raw & _DSS_RFU:
        fail(
            characteristic,
            name,
            f"reserved Device and Sensor Status bits set (0x{raw:06X})",
            offset,
        )
    value = PlxDeviceAndSensorStatus(raw)
    if len(_DSS_CACHE) < _CACHE_CAP:
        _DSS_CACHE[raw] = value
    return value


def _sfloat(data: bytes, offset: int) -> MedFloat:
    raw = data[offset] | data[offset + 1] << 8
    return _SFLOAT_CACHE.get(raw) or sfloat_from_raw(raw)


def _check_statuses(
    what: str,
    status: PlxMeasurementStatus | None,
    device: PlxDeviceAndSensorStatus | None,
) -> None:
    if status is not None and (int(status) & _MS_RFU or not 0 <= int(status) <= 0xFFFF):
        raise EncodeError(what, f"reserved Measurement Status bits in 0x{int(status):04X}")
    if device is not None and (int(device) & _DSS_RFU or int(device) < 0):
        raise EncodeError(what, f"reserved Device and Sensor Status bits in 0x{int(device):06X}")


# --- Spot-check -------------------------------------------------------------------------------

_SC_TIME_STAMP = 0x01
_SC_STATUS = 0x02
_SC_DEVICE_STATUS = 0x04
_SC_PAI = 0x08
_SC_CLOCK_NOT_SET = 0x10
_SC_RFU = 0xE0
_SC_NAME = "PLX Spot-check Measurement"


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    """PLX Spot-check Measurement 0x2A5E (GSS 3.170): SpO2 in %, pulse rate in /min."""

    spo2_percent: MedFloat
    pulse_rate_bpm: MedFloat
    time_stamp: DateTime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index_percent: MedFloat | None = None
    device_clock_not_set: bool = False
    corrections: frozenset[str] = frozenset()


def _sc_layout(flags: int) -> tuple[tuple[str, int], ...]:
    fields: list[tuple[str, int]] = [("Flags", 1), ("SpO2", 2), ("PR", 2)]
    if flags & _SC_TIME_STAMP:
        fields.append(("Time Stamp", DATE_TIME_SIZE))
    if flags & _SC_STATUS:
        fields.append(("Measurement Status", 2))
    if flags & _SC_DEVICE_STATUS:
        fields.append(("Device and Sensor Status", 3))
    if flags & _SC_PAI:
        fields.append(("Pulse Amplitude Index", 2))
    return tuple(fields)


_SC_SIZES = tuple(sum(size for _, size in _sc_layout(f)) for f in range(0x20))


def decode_plx_spot_check(data: bytes) -> PlxSpotCheckMeasurement:
    """Decode 0x2A5E strictly."""
    c, name = PLX_SPOT_CHECK_MEASUREMENT, _SC_NAME
    n = len(data)
    if not n:
        fail(c, name, "empty value: needs Flags", 0)
    flags = data[0]
    if flags & _SC_RFU:
        fail(c, name, f"reserved flag bits set (0x{flags:02X})", 0)
    if n != _SC_SIZES[flags]:
        raise length_error(c, name, _sc_layout(flags), n)
    offset = 5
    time_stamp = None
    if flags & _SC_TIME_STAMP:
        time_stamp = decode_date_time(data, offset, characteristic=c, name=name)
        offset += DATE_TIME_SIZE
    status = None
    if flags & _SC_STATUS:
        status = _measurement_status(data, offset, c, name)
        offset += 2
    device = None
    if flags & _SC_DEVICE_STATUS:
        device = _device_status(data, offset, c, name)
        offset += 3
    pai = _sfloat(data, offset) if flags & _SC_PAI else None
    return PlxSpotCheckMeasurement(
        _sfloat(data, 1),
        _sfloat(data, 3),
        time_stamp,
        status,
        device,
        pai,
        bool(flags & _SC_CLOCK_NOT_SET),
    )


def encode_plx_spot_check(m: PlxSpotCheckMeasurement) -> bytes:
    """Encode 0x2A5E; flags follow from which optional fields are set."""
    _check_statuses(_SC_NAME, m.measurement_status, m.device_and_sensor_status)
    flags = _SC_CLOCK_NOT_SET if m.device_clock_not_set else 0
    tail = b""
    if m.time_stamp is not None:
        flags |= _SC_TIME_STAMP
        tail += encode_date_time(m.time_stamp)
    if m.measurement_status is not None:
        flags |= _SC_STATUS
        tail += int(m.measurement_status).to_bytes(2, "little")
    if m.device_and_sensor_status is not None:
        flags |= _SC_DEVICE_STATUS
        tail += int(m.device_and_sensor_status).to_bytes(3, "little")
    if m.pulse_amplitude_index_percent is not None:
        flags |= _SC_PAI
        tail += encode_medfloat16(m.pulse_amplitude_index_percent)
    return (
        bytes((flags,))
        + encode_medfloat16(m.spo2_percent)
        + encode_medfloat16(m.pulse_rate_bpm)
        + tail
    )


# --- Continuous -------------------------------------------------------------------------------

_CT_FAST = 0x01
_CT_SLOW = 0x02
_CT_STATUS = 0x04
_CT_DEVICE_STATUS = 0x08
_CT_PAI = 0x10
_CT_RFU = 0xE0
_CT_NAME = "PLX Continuous Measurement"


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    """PLX Continuous Measurement 0x2A5F (GSS 3.169): SpO2 in %, pulse rates in /min."""

    spo2_percent: MedFloat
    pulse_rate_bpm: MedFloat
    spo2_fast_percent: MedFloat | None = None
    pulse_rate_fast_bpm: MedFloat | None = None
    spo2_slow_percent: MedFloat | None = None
    pulse_rate_slow_bpm: MedFloat | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index_percent: MedFloat | None = None
    corrections: frozenset[str] = frozenset()


def _ct_layout(flags: int) -> tuple[tuple[str, int], ...]:
    fields: list[tuple[str, int]] = [("Flags", 1), ("SpO2", 2), ("PR", 2)]
    if flags & _CT_FAST:
        fields += [("SpO2 Fast", 2), ("PR Fast", 2)]
    if flags & _CT_SLOW:
        fields += [("SpO2 Slow", 2), ("PR Slow", 2)]
    if flags & _CT_STATUS:
        fields.append(("Measurement Status", 2))
    if flags & _CT_DEVICE_STATUS:
        fields.append(("Device and Sensor Status", 3))
    if flags & _CT_PAI:
        fields.append(("Pulse Amplitude Index", 2))
    return tuple(fields)


_CT_SIZES = tuple(sum(size for _, size in _ct_layout(f)) for f in range(0x20))


def decode_plx_continuous(data: bytes) -> PlxContinuousMeasurement:
    """Decode 0x2A5F strictly."""
    c, name = PLX_CONTINUOUS_MEASUREMENT, _CT_NAME
    n = len(data)
    if not n:
        fail(c, name, "empty value: needs Flags", 0)
    flags = data[0]
    if flags & _CT_RFU:
        fail(c, name, f"reserved flag bits set (0x{flags:02X})", 0)
    if n != _CT_SIZES[flags]:
        raise length_error(c, name, _ct_layout(flags), n)
    offset = 5
    spo2_fast = pr_fast = spo2_slow = pr_slow = None
    if flags & _CT_FAST:
        spo2_fast, pr_fast = _sfloat(data, 5), _sfloat(data, 7)
        offset = 9
    if flags & _CT_SLOW:
        spo2_slow, pr_slow = _sfloat(data, offset), _sfloat(data, offset + 2)
        offset += 4
    status = None
    if flags & _CT_STATUS:
        status = _measurement_status(data, offset, c, name)
        offset += 2
    device = None
    if flags & _CT_DEVICE_STATUS:
        device = _device_status(data, offset, c, name)
        offset += 3
    pai = _sfloat(data, offset) if flags & _CT_PAI else None
    return PlxContinuousMeasurement(
        _sfloat(data, 1),
        _sfloat(data, 3),
        spo2_fast,
        pr_fast,
        spo2_slow,
        pr_slow,
        status,
        device,
        pai,
    )


def encode_plx_continuous(m: PlxContinuousMeasurement) -> bytes:
    """Encode 0x2A5F; fast and slow pairs must each be both set or both ``None``."""
    _check_statuses(_CT_NAME, m.measurement_status, m.device_and_sensor_status)
    flags = 0
    tail = b""
    for bit, spo2, pr in (
        (_CT_FAST, m.spo2_fast_percent, m.pulse_rate_fast_bpm),
        (_CT_SLOW, m.spo2_slow_percent, m.pulse_rate_slow_bpm),
    ):
        if (spo2 is None) != (pr is None):
            raise EncodeError(_CT_NAME, "SpO2 and PR of the fast/slow pair go together")
        if spo2 is not None and pr is not None:
            flags |= bit
            tail += encode_medfloat16(spo2) + encode_medfloat16(pr)
    if m.measurement_status is not None:
        flags |= _CT_STATUS
        tail += int(m.measurement_status).to_bytes(2, "little")
    if m.device_and_sensor_status is not None:
        flags |= _CT_DEVICE_STATUS
        tail += int(m.device_and_sensor_status).to_bytes(3, "little")
    if m.pulse_amplitude_index_percent is not None:
        flags |= _CT_PAI
        tail += encode_medfloat16(m.pulse_amplitude_index_percent)
    return (
        bytes((flags,))
        + encode_medfloat16(m.spo2_percent)
        + encode_medfloat16(m.pulse_rate_bpm)
        + tail
    )


# --- PLX Features -----------------------------------------------------------------------------


class PlxSupportedFeatures(enum.IntFlag):
    """PLX Features, Supported Features field (GSS 3.171); bits 8-15 are RFU."""

    MEASUREMENT_STATUS = 1 << 0
    DEVICE_AND_SENSOR_STATUS = 1 << 1
    SPOT_CHECK_MEASUREMENT_STORAGE = 1 << 2
    SPOT_CHECK_TIME_STAMP = 1 << 3
    SPO2PR_FAST = 1 << 4
    SPO2PR_SLOW = 1 << 5
    PULSE_AMPLITUDE_INDEX = 1 << 6
    MULTIPLE_BONDS = 1 << 7


_FEATURES_RFU = 0xFF00
_F_NAME = "PLX Features"


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """PLX Features 0x2A60 (GSS 3.171).

    The two support fields are present exactly when their Supported Features bit is set.
    """

    supported_features: PlxSupportedFeatures
    measurement_status_support: PlxMeasurementStatus | None = None
    device_and_sensor_status_support: PlxDeviceAndSensorStatus | None = None


def decode_plx_features(data: bytes) -> PlxFeatures:
    """Decode 0x2A60 strictly."""
    c = PLX_FEATURES
    n = len(data)
    if n < 2:
        raise length_error(c, _F_NAME, (("Supported Features", 2),), n)
    raw = data[0] | data[1] << 8
    if raw & _FEATURES_RFU:
        fail(c, _F_NAME, f"reserved Supported Features bits set (0x{raw:04X})", 0)
    layout: list[tuple[str, int]] = [("Supported Features", 2)]
    if raw & PlxSupportedFeatures.MEASUREMENT_STATUS:
        layout.append(("Measurement Status Support", 2))
    if raw & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS:
        layout.append(("Device and Sensor Status Support", 3))
    if n != sum(size for _, size in layout):
        raise length_error(c, _F_NAME, layout, n)
    offset = 2
    status = None
    if raw & PlxSupportedFeatures.MEASUREMENT_STATUS:
        status = _measurement_status(data, offset, c, _F_NAME)
        offset += 2
    device = None
    if raw & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS:
        device = _device_status(data, offset, c, _F_NAME)
    return PlxFeatures(PlxSupportedFeatures(raw), status, device)


def encode_plx_features(m: PlxFeatures) -> bytes:
    """Encode 0x2A60; the support fields must match the Supported Features bits."""
    raw = int(m.supported_features)
    if raw & _FEATURES_RFU or raw < 0:
        raise EncodeError(_F_NAME, f"reserved Supported Features bits in 0x{raw:04X}")
    has_status = bool(raw & PlxSupportedFeatures.MEASUREMENT_STATUS)
    has_device = bool(raw & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS)
    if has_status != (m.measurement_status_support is not None) or has_device != (
        m.device_and_sensor_status_support is not None
    ):
        raise EncodeError(_F_NAME, "support fields must match the Supported Features bits")
    _check_statuses(_F_NAME, m.measurement_status_support, m.device_and_sensor_status_support)
    out = raw.to_bytes(2, "little")
    if m.measurement_status_support is not None:
        out += int(m.measurement_status_support).to_bytes(2, "little")
    if m.device_and_sensor_status_support is not None:
        out += int(m.device_and_sensor_status_support).to_bytes(3, "little")
    return out


# --- observations -----------------------------------------------------------------------------


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
