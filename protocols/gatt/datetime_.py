"""Date Time (0x2A08, also every 7-byte "Time Stamp" field), Day of Week and Day Date Time.

GATT Specification Supplement (GSS) section 3.70 *Date Time*: year uint16 (1582..9999, 0 = not
known), month (1..12, 0 = not known), day (1..31, 0 = not known), hours (0..23), minutes (0..59),
seconds (0..59). There is no time zone: it is the device's wall clock
(docs/protocols/phd.md section 1.2). GSS 3.72 *Day Date Time* (0x2A0A) appends GSS 3.73
*Day of Week* (1 = Monday .. 7 = Sunday, 0 = not known, 8..255 reserved).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, fast_constructor, length_error

DATE_TIME = 0x2A08
DAY_OF_WEEK = 0x2A09
DAY_DATE_TIME = 0x2A0A

DATE_TIME_SIZE = 7
DAY_DATE_TIME_SIZE = 8


@dataclass(frozen=True, slots=True)
class DateTime:
    """Date Time 0x2A08, a device wall-clock time; year, month or day 0 mean "not known"."""

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

        A time with year, month or day 0 must not become an absolute time stamp, nor may a
        calendar-impossible date (31 April).
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


_new_date_time = fast_constructor(DateTime, ("year", "month", "day", "hours", "minutes", "seconds"))


def date_time_error(
    year: int,
    month: int,
    day: int,
    hours: int,
    minutes: int,
    seconds: int,
    *,
    characteristic: int | None,
    name: str,
    offset: int,
) -> None:
    """Raise the :class:`DecodeError` naming the first out-of-range field (GSS 3.70), if any."""
    checks = (
        (year == 0 or 1582 <= year <= 9999, "year", 0, year),
        (month <= 12, "month", 2, month),
        (day <= 31, "day", 3, day),
        (hours <= 23, "hours", 4, hours),
        (minutes <= 59, "minutes", 5, minutes),
        (seconds <= 59, "seconds", 6, seconds),
    )
    for ok, field, rel, value in checks:
        if not ok:
            fail(characteristic, name, f"Date Time {field} {value} out of range", offset + rel)


def build_date_time(
    year: int,
    month: int,
    day: int,
    hours: int,
    minutes: int,
    seconds: int,
    *,
    characteristic: int | None,
    name: str,
    offset: int,
) -> DateTime:
    """Validate already-unpacked Date Time fields (GSS 3.70) and build the value."""
    if (
        month > 12
        or day > 31
        or hours > 23
        or minutes > 59
        or seconds > 59
        or (year and not 1582 <= year <= 9999)
    ):
        date_time_error(
            year,
            month,
            day,
            hours,
            minutes,
            seconds,
            characteristic=characteristic,
            name=name,
            offset=offset,
        )
    return _new_date_time(year, month, day, hours, minutes, seconds)


def decode_date_time(
    data: bytes | memoryview,
    offset: int = 0,
    *,
    characteristic: int | None = DATE_TIME,
    name: str = "Date Time",
) -> DateTime:
    """Decode the 7 bytes at ``offset``; field ranges are checked (GSS 3.70)."""
    if len(data) - offset < DATE_TIME_SIZE:
        fail(characteristic, name, "truncated Date Time", offset)
    return build_date_time(
        data[offset] | (data[offset + 1] << 8),
        data[offset + 2],
        data[offset + 3],
        data[offset + 4],
        data[offset + 5],
        data[offset + 6],
        characteristic=characteristic,
        name=name,
        offset=offset,
    )


def decode_date_time_characteristic(data: bytes) -> DateTime:
    """Decode the Date Time characteristic 0x2A08: exactly 7 bytes."""
    if len(data) != DATE_TIME_SIZE:
        raise length_error(DATE_TIME, "Date Time", (("Date Time", DATE_TIME_SIZE),), len(data))
    return decode_date_time(data, 0)


def encode_date_time(value: DateTime) -> bytes:
    """Encode a :class:`DateTime` to its 7 wire bytes; fields must be in their GSS ranges."""
    ok = (
        (value.year == 0 or 1582 <= value.year <= 9999)
        and 0 <= value.month <= 12
        and 0 <= value.day <= 31
        and 0 <= value.hours <= 23
        and 0 <= value.minutes <= 59
        and 0 <= value.seconds <= 59
    )
    if not ok:
        raise EncodeError("Date Time", f"field out of range in {value}")
    return value.year.to_bytes(2, "little") + bytes(
        (value.month, value.day, value.hours, value.minutes, value.seconds)
    )


class DayOfWeek(enum.IntEnum):
    """Day of Week (GSS 3.73); 0 means "not known"."""

    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def of(cls, value: dt.date) -> DayOfWeek:
        """The day of week of a date (ISO weekday: Monday is 1)."""
        return cls(value.isoweekday())


_DAYS_OF_WEEK = tuple(DayOfWeek)


def decode_day_of_week(
    data: bytes, offset: int, *, characteristic: int | None, name: str
) -> DayOfWeek:
    """Decode a Day of Week byte; 8..255 are reserved (GSS 3.73) and rejected."""
    raw = data[offset]
    if raw > 7:
        fail(characteristic, name, f"reserved Day of Week {raw}", offset)
    return _DAYS_OF_WEEK[raw]


@dataclass(frozen=True, slots=True)
class DayDateTime:
    """Day Date Time 0x2A0A (GSS 3.72): a Date Time and its Day of Week."""

    date_time: DateTime
    day_of_week: DayOfWeek = DayOfWeek.UNKNOWN

    @classmethod
    def from_datetime(cls, value: dt.datetime) -> DayDateTime:
        """The Day Date Time of a wall-clock :class:`datetime.datetime`."""
        return cls(DateTime.from_datetime(value), DayOfWeek.of(value))


def decode_day_date_time(data: bytes) -> DayDateTime:
    """Decode the Day Date Time characteristic 0x2A0A: exactly 8 bytes."""
    name = "Day Date Time"
    if len(data) != DAY_DATE_TIME_SIZE:
        layout = (("Date Time", DATE_TIME_SIZE), ("Day of Week", 1))
        raise length_error(DAY_DATE_TIME, name, layout, len(data))
    return DayDateTime(
        decode_date_time(data, 0, characteristic=DAY_DATE_TIME, name=name),
        decode_day_of_week(data, 7, characteristic=DAY_DATE_TIME, name=name),
    )


def encode_day_date_time(value: DayDateTime) -> bytes:
    """Encode a :class:`DayDateTime` to its 8 wire bytes."""
    return encode_date_time(value.date_time) + bytes((int(value.day_of_week),))
