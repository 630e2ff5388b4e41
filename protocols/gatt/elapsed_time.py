"""Elapsed Time 0x2BF2 (Elapsed Time Service 0x183F) and the GHS time stamp that shares its layout.

GATT Specification Supplement (GSS) *Elapsed Time*; Elapsed Time Service (ETS) 1.0:

====== ==== ==============================================================================
Offset Size Field
====== ==== ==============================================================================
0      1    Flags: bit0 tick counter (else time of day), bit1 UTC (else local time), bits 2-3
            resolution (0 = 1 s, 1 = 100 ms, 2 = 1 ms, 3 = 100 us), bit4 TZ/DST offset used,
            bit5 time stamp is from the current timeline, bits 6-7 RFU
1      6    Time Value (uint48): time units since 2000-01-01 00:00:00 (time of day), or an
            implementation-defined start (tick counter)
7      1    Time Sync Source Type (GSS *Time Source*: 0 unknown, 1 NTP, 2 GPS, 3 radio time
            signal, 4 manual, 5 atomic clock, 6 cellular network, 7 not synchronized)
8      1    TZ/DST Offset (sint8, 15-minute units): local time = UTC + offset x 15 min
====== ==== ==============================================================================

The GHS Health Observation *Time Stamp* field (GHSS 1.0) is the same 9 bytes. Times are kept as
sent (an integer count in the stated resolution); :meth:`ElapsedTime.to_datetime` converts a
time of day without ever guessing a zone the device did not state.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._enum import OpenIntEnum
from protocols.gatt._wire import fail, length_error
from protocols.gatt.numbers import ELAPSED_TIME
from protocols.gatt.registry import codec

ELAPSED_TIME_SIZE = 9

_NAME = "Elapsed Time"
_FLAG_TICK_COUNTER = 0x01
_FLAG_UTC = 0x02
_FLAG_RESOLUTION_SHIFT = 2
_FLAG_TZ_DST_USED = 0x10
_FLAG_CURRENT_TIMELINE = 0x20
_FLAGS_RFU = 0xC0
_MAX_TIME_VALUE = (1 << 48) - 1

#: The start of the time-of-day timeline (GSS *Elapsed Time*, Time Value).
EPOCH_2000 = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - UTC or local as the flags say


class TimeResolution(enum.IntEnum):
    """Flags bits 2-3: the unit of the Time Value."""

    SECOND = 0
    HUNDRED_MILLISECONDS = 1
    MILLISECOND = 2
    HUNDRED_MICROSECONDS = 3

    @property
    def microseconds(self) -> int:
        """Length of one time unit in microseconds."""
        return (1_000_000, 100_000, 1_000, 100)[self]


class TimeSource(OpenIntEnum):
    """Time Sync Source Type (GSS *Time Source*); 8-255 are RFU and kept as pseudo-members."""

    UNKNOWN = 0
    NETWORK_TIME_PROTOCOL = 1
    GPS = 2
    RADIO_TIME_SIGNAL = 3
    MANUAL = 4
    ATOMIC_CLOCK = 5
    CELLULAR_NETWORK = 6
    NOT_SYNCHRONIZED = 7


@dataclass(frozen=True, slots=True)
class ElapsedTime:
    """An Elapsed Time value (GSS *Elapsed Time*; also the GHS observation Time Stamp).

    ``time_value`` counts ``resolution`` units. For a tick counter ``utc``,
    ``tz_dst_offset_used``, ``time_sync_source`` and ``tz_dst_offset_15min`` have no meaning
    but are kept so that the value re-encodes exactly.
    """

    time_value: int
    resolution: TimeResolution = TimeResolution.SECOND
    tick_counter: bool = False
    utc: bool = False
    tz_dst_offset_used: bool = False
    current_timeline: bool = True
    time_sync_source: TimeSource = TimeSource.UNKNOWN
    tz_dst_offset_15min: int = 0

    @property
    def flags(self) -> int:
        """The Flags byte this value encodes to."""
        return (
            int(self.tick_counter)
            | int(self.utc) << 1
            | int(self.resolution) << _FLAG_RESOLUTION_SHIFT
            | int(self.tz_dst_offset_used) << 4
            | int(self.current_timeline) << 5
        )

    @property
    def elapsed(self) -> dt.timedelta:
        """The Time Value as a duration (since 2000-01-01 for a time of day)."""
        return dt.timedelta(microseconds=self.time_value * self.resolution.microseconds)

    def to_datetime(self) -> dt.datetime | None:
        """The time of day: aware UTC when ``utc``, naive device-local otherwise.

        ``None`` for a tick counter, which has no calendar meaning. A UTC time with the TZ/DST
        offset used converts only the UTC instant; :meth:`local_datetime` gives local time.
        """
        if self.tick_counter:
            return None
        naive = EPOCH_2000 + self.elapsed
        return naive.replace(tzinfo=dt.UTC) if self.utc else naive

    def local_datetime(self) -> dt.datetime | None:
        """Device-local wall-clock time, when the value says how to get it.

        A local time is returned as is; a UTC time needs the TZ/DST offset (flag bit 4).
        """
        if self.tick_counter:
            return None
        naive = EPOCH_2000 + self.elapsed
        if not self.utc:
            return naive
        if not self.tz_dst_offset_used:
            return None
        return naive + dt.timedelta(minutes=15 * self.tz_dst_offset_15min)


def decode_elapsed_time_at(
    data: bytes, offset: int, *, characteristic: int | None, name: str
) -> ElapsedTime:
    """Decode the 9 bytes at ``offset`` (the caller has checked that they are there)."""
    flags = data[offset]
    if flags & _FLAGS_RFU:
        fail(characteristic, name, f"reserved Elapsed Time flag bits set (0x{flags:02X})", offset)
    tz = data[offset + 8]
    return ElapsedTime(
        time_value=int.from_bytes(data[offset + 1 : offset + 7], "little"),
        resolution=TimeResolution((flags >> _FLAG_RESOLUTION_SHIFT) & 0x03),
        tick_counter=bool(flags & _FLAG_TICK_COUNTER),
        utc=bool(flags & _FLAG_UTC),
        tz_dst_offset_used=bool(flags & _FLAG_TZ_DST_USED),
        current_timeline=bool(flags & _FLAG_CURRENT_TIMELINE),
        time_sync_source=TimeSource(data[offset + 7]),
        tz_dst_offset_15min=tz - 0x100 if tz >= 0x80 else tz,
    )


def decode_elapsed_time(data: bytes) -> ElapsedTime:
    """Decode the Elapsed Time characteristic 0x2BF2: exactly 9 bytes, RFU flags refused."""
    if len(data) != ELAPSED_TIME_SIZE:
        layout = (("Flags", 1), ("Time Value", 6), ("Time Sync Source Type", 1), ("TZ/DST", 1))
        raise length_error(ELAPSED_TIME, _NAME, layout, len(data))
    return decode_elapsed_time_at(data, 0, characteristic=ELAPSED_TIME, name=_NAME)


def encode_elapsed_time(value: ElapsedTime) -> bytes:
    """Encode to the 9 wire bytes."""
    if not 0 <= value.time_value <= _MAX_TIME_VALUE:
        raise EncodeError(_NAME, f"Time Value {value.time_value} does not fit 48 bits")
    if not -128 <= value.tz_dst_offset_15min <= 127:
        raise EncodeError(_NAME, f"TZ/DST offset {value.tz_dst_offset_15min} does not fit sint8")
    if not 0 <= int(value.time_sync_source) <= 0xFF:
        raise EncodeError(_NAME, f"Time Sync Source {int(value.time_sync_source)} out of range")
    return (
        bytes((value.flags,))
        + value.time_value.to_bytes(6, "little")
        + bytes((int(value.time_sync_source), value.tz_dst_offset_15min & 0xFF))
    )


codec(
    ELAPSED_TIME,
    _NAME,
    gss="Elapsed Time",
    service="ETS 1.0 (Elapsed Time characteristic); GHSS 1.0 observation Time Stamp",
    values=(ElapsedTime,),
    encode=encode_elapsed_time,
)(decode_elapsed_time)
