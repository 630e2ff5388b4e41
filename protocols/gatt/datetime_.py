"""Date Time (0x2A08), also the 7-byte "Time Stamp" field of the health measurements.

GATT Specification Supplement section 3.70 (Date Time): year uint16 (1582..9999, 0 = not
known), month (1..12, 0 = not known), day (1..31, 0 = not known), hours, minutes, seconds.
There is no time zone: it is the device's wall clock (``health-profiles.md`` section 1.2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from protocols.errors import DecodeError, EncodeError

DATE_TIME_SIZE = 7


@dataclass(frozen=True, slots=True)
class DateTime:
    """A device wall-clock time stamp, as sent; fields of 0 in the date mean "not known"."""

    year: int
    month: int
    day: int
    hours: int
    minutes: int
    seconds: int

    @property
    def date_known(self) -> bool:
        """True when year, month and day are all known (none is 0)."""
        return self.year != 0 and self.month != 0 and self.day != 0

    def to_datetime(self) -> dt.datetime | None:
        """A naive :class:`datetime.datetime` in the device's zone, or ``None`` when unknown.

        A time with year, month or day 0 must not become an absolute time stamp.
        """
        if not self.date_known:
            return None
        try:
            return dt.datetime(  # noqa: DTZ001 - device wall clock, zone unknown by spec
                self.year, self.month, self.day, self.hours, self.minutes, self.seconds
            )
        except ValueError:
            return None

    @classmethod
    def from_datetime(cls, value: dt.datetime) -> DateTime:
        """The Date Time of a wall-clock :class:`datetime.datetime` (sub-seconds dropped)."""
        return cls(value.year, value.month, value.day, value.hour, value.minute, value.second)


def decode_date_time(data: bytes | memoryview, offset: int = 0, *, what: str) -> DateTime:
    """Decode 7 bytes at ``offset``; field ranges are checked (GSS 3.70)."""
    if len(data) - offset < DATE_TIME_SIZE:
        raise DecodeError(what, "truncated Date Time", offset=offset)
    year = data[offset] | (data[offset + 1] << 8)
    month, day, hours, minutes, seconds = (data[offset + i] for i in range(2, 7))
    checks = (
        (year == 0 or 1582 <= year <= 9999, "year", 0),
        (month <= 12, "month", 2),
        (day <= 31, "day", 3),
        (hours <= 23, "hours", 4),
        (minutes <= 59, "minutes", 5),
        (seconds <= 59, "seconds", 6),
    )
    for ok, name, rel in checks:
        if not ok:
            raise DecodeError(what, f"Date Time {name} out of range", offset=offset + rel)
    return DateTime(year, month, day, hours, minutes, seconds)


def encode_date_time(value: DateTime) -> bytes:
    """Encode a :class:`DateTime` to its 7 wire bytes."""
    if not (
        0 <= value.year <= 0xFFFF
        and all(
            0 <= f <= 0xFF
            for f in (value.month, value.day, value.hours, value.minutes, value.seconds)
        )
    ):
        raise EncodeError("Date Time", f"field out of range in {value}")
    return value.year.to_bytes(2, "little") + bytes(
        (value.month, value.day, value.hours, value.minutes, value.seconds)
    )
