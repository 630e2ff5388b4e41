"""Heart Rate Service 0x180D: Heart Rate Measurement 0x2A37 (notify).

GSS section 3.113 *Heart Rate Measurement* (HRS 1.0 section 3.1; docs/protocols/phd.md 2.7; the
wire format, observations are in :mod:`protocols.gatt.mapping.heart_rate`):
Flags (bit0 value format 0 uint8 / 1 uint16; bits 1-2 Sensor Contact Status: 0 or 1 not
supported, 2 supported but not detected, 3 detected; bit3 Energy Expended present; bit4
RR-Interval present; bits 5-7 RFU); Heart Rate (uint8 or uint16, beats/min); [Energy Expended
uint16 kJ, saturates at 65535]; [RR-Interval uint16 each, 1/1024 s, one or more].

The RR-Interval list runs to the end of the value, which a flags-and-fields table cannot say,
so this codec is written by hand and registered with
:meth:`~protocols.gatt.registry.Registry.codec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.generator import slot_constructor
from protocols.gatt.numbers import HEART_RATE_MEASUREMENT
from protocols.gatt.registry import codec

_NAME = "Heart Rate Measurement"

_FLAG_UINT16 = 0x01
_FLAG_CONTACT_MASK = 0x06
_FLAG_ENERGY = 0x08
_FLAG_RR = 0x10
_FLAGS_RFU = 0xE0


class SensorContact(enum.IntEnum):
    """Sensor Contact Status bits 1-2 (GSS 3.113.2.1); 0 and 1 both mean "not supported"."""

    NOT_SUPPORTED = 0
    NOT_SUPPORTED_ALT = 1
    NOT_DETECTED = 2
    DETECTED = 3

    @property
    def supported(self) -> bool:
        """True when the sensor reports contact at all."""
        return self >= SensorContact.NOT_DETECTED


_CONTACTS = tuple(SensorContact)


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """Heart Rate Measurement 0x2A37.

    ``rr_intervals_1024th_s`` is ``None`` when the RR flag is clear, else one or more values in
    units of 1/1024 s (use :attr:`rr_intervals_ms` for milliseconds). ``uint16_format`` keeps
    the wire format of the heart rate so the value re-encodes byte for byte.
    """

    heart_rate_bpm: int
    sensor_contact: SensorContact = SensorContact.NOT_SUPPORTED
    energy_expended_kj: int | None = None
    rr_intervals_1024th_s: tuple[int, ...] | None = None
    uint16_format: bool = False
    corrections: frozenset[str] = frozenset()

    @property
    def rr_intervals_ms(self) -> tuple[Decimal, ...]:
        """RR intervals in milliseconds, exact (n x 1000/1024 = n x 0.9765625)."""
        return tuple(Decimal(v * 1000) / 1024 for v in self.rr_intervals_1024th_s or ())


_new_heart_rate_measurement = slot_constructor(HeartRateMeasurement)
_NO_CORRECTIONS: frozenset[str] = frozenset()


def encode_heart_rate_measurement(m: HeartRateMeasurement) -> bytes:
    """Encode 0x2A37."""
    flags = int(SensorContact(m.sensor_contact)) << 1
    if m.uint16_format:
        if not 0 <= m.heart_rate_bpm <= 0xFFFF:
            raise EncodeError(_NAME, f"heart rate {m.heart_rate_bpm} out of uint16 range")
        flags |= _FLAG_UINT16
        body = m.heart_rate_bpm.to_bytes(2, "little")
    else:
        if not 0 <= m.heart_rate_bpm <= 0xFF:
            raise EncodeError(_NAME, f"heart rate {m.heart_rate_bpm} needs the uint16 format")
        body = bytes((m.heart_rate_bpm,))
    if m.energy_expended_kj is not None:
        if not 0 <= m.energy_expended_kj <= 0xFFFF:
            raise EncodeError(_NAME, f"energy expended {m.energy_expended_kj} out of range")
        flags |= _FLAG_ENERGY
        body += m.energy_expended_kj.to_bytes(2, "little")
    if m.rr_intervals_1024th_s is not None:
        if not m.rr_intervals_1024th_s:
            raise EncodeError(_NAME, "an RR-Interval list needs at least one value")
        flags |= _FLAG_RR
        for value in m.rr_intervals_1024th_s:
            if not 0 <= value <= 0xFFFF:
                raise EncodeError(_NAME, f"RR-Interval {value} out of range")
            body += value.to_bytes(2, "little")
    return bytes((flags,)) + body


@codec(
    HEART_RATE_MEASUREMENT,
    _NAME,
    gss="3.113 Heart Rate Measurement",
    service="HRS 1.0 section 3.1",
    values=(HeartRateMeasurement,),
    encode=encode_heart_rate_measurement,
)
def decode_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Decode 0x2A37 strictly: RFU flags, truncation, an odd RR byte and an empty RR list are
    errors."""
    c = HEART_RATE_MEASUREMENT
    n = len(data)
    if not n:
        fail(c, _NAME, "empty value: needs Flags", 0)
    flags = data[0]
    if flags & _FLAGS_RFU:
        fail(c, _NAME, f"reserved flag bits set (0x{flags:02X})", 0)
    hr_size = 2 if flags & _FLAG_UINT16 else 1
    layout: list[tuple[str, int]] = [("Flags", 1), ("Heart Rate", hr_size)]
    if flags & _FLAG_ENERGY:
        layout.append(("Energy Expended", 2))
    fixed = 1 + hr_size + (2 if flags & _FLAG_ENERGY else 0)
    if n < fixed or (not flags & _FLAG_RR and n != fixed):
        raise length_error(c, _NAME, layout, n)
    heart_rate = data[1] | data[2] << 8 if hr_size == 2 else data[1]
    energy = None
    if flags & _FLAG_ENERGY:
        energy = data[1 + hr_size] | data[2 + hr_size] << 8
    rr = None
    if flags & _FLAG_RR:
        remaining = n - fixed
        if remaining == 0:
            fail(c, _NAME, "RR-Interval flag set but no RR-Interval", fixed)
        if remaining % 2:
            fail(c, _NAME, "truncated RR-Interval: 1 odd trailing byte", n - 1)
        rr = tuple(data[i] | data[i + 1] << 8 for i in range(fixed, n, 2))
    return _new_heart_rate_measurement(
        heart_rate,
        _CONTACTS[(flags & _FLAG_CONTACT_MASK) >> 1],
        energy,
        rr,
        bool(flags & _FLAG_UINT16),
        _NO_CORRECTIONS,
    )
