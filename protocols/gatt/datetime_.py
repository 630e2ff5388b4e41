"""Date Time (0x2A08, also every 7-byte "Time Stamp" field), Day of Week and Day Date Time.

GATT Specification Supplement (GSS) section 3.70 *Date Time*: year uint16 (1582..9999, 0 = not
known), month (1..12, 0 = not known), day (1..31, 0 = not known), hours (0..23), minutes (0..59),
seconds (0..59). There is no time zone: it is the device's wall clock (docs/protocols/phd.md
section 1.2). GSS 3.72 *Day Date Time* (0x2A0A) appends GSS 3.73 *Day of Week* (1 = Monday ..
7 = Sunday, 0 = not known, 8..255 reserved).

:data:`DATE_TIME_FIELD` is the field kind every table with a Time Stamp uses: its fast path
checks the six ranges inline and builds the :class:`DateTime` through its slots.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail
from protocols.gatt.generator import emit_construct, slot_constructor
from protocols.gatt.kinds import Enumerated
from protocols.gatt.numbers import DATE_TIME, DAY_DATE_TIME
from protocols.gatt.registry import characteristic
from protocols.gatt.schema import BAIL, Field, Kind, Problem, Source, Table

DATE_TIME_SIZE = 7
DAY_DATE_TIME_SIZE = 8

_PARTS = ("year", "month", "day", "hours", "minutes", "seconds")


def _problem(
    year: int, month: int, day: int, hours: int, minutes: int, seconds: int
) -> Problem | None:
    """The first out-of-range field (GSS 3.70) and its offset in the 7 bytes, if any."""
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
            return f"Date Time {field} {value} out of range", rel
    return None


class _DateTimeKind(Kind):
    """A Date Time field: built into one :class:`DateTime` (``cls``), or, for the Date Time
    characteristic itself, into its six parts."""

    fmt = "HBBBBB"
    size = DATE_TIME_SIZE

    def __init__(self, cls: type | None) -> None:
        self.cls = cls
        self.width = 1 if cls is not None else len(_PARTS)

    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        y, mo, d, h, mi, s = raws
        src.line(
            f"if {mo} > 12 or {d} > 31 or {h} > 23 or {mi} > 59 or {s} > 59"
            f" or ({y} and not 1582 <= {y} <= 9999): {BAIL}"
        )
        if self.cls is None:
            return tuple(raws)
        return (emit_construct(src, self.cls, dict(zip(_PARTS, raws, strict=True))),)

    def check(self, raws: Sequence[int]) -> Problem | None:
        return _problem(*raws)

    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        if self.cls is None:
            return tuple(raws)
        return (_new_date_time(*raws),)

    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        value = values[0] if self.cls is not None else DateTime(*values)  # type: ignore[arg-type]
        if not isinstance(value, DateTime):
            raise EncodeError("Date Time", f"not a DateTime: {value!r}")
        return _parts(value)


@characteristic(
    DATE_TIME,
    "Date Time",
    gss="3.70 Date Time",
    service="no SIG service requires it; A&D devices expose it (quirks.AND_MEDICAL)",
    table=Table(fields=(Field("Date Time", _DateTimeKind(None), _PARTS),)),
)
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


_new_date_time = slot_constructor(DateTime)

#: The kind of a 7-byte Date Time field (Time Stamp, Base Time, ...), GSS 3.70.
DATE_TIME_FIELD: Kind = _DateTimeKind(DateTime)


def _parts(value: DateTime) -> tuple[int, int, int, int, int, int]:
    parts = (value.year, value.month, value.day, value.hours, value.minutes, value.seconds)
    ok = (value.year == 0 or 1582 <= value.year <= 9999) and all(
        0 <= part <= top for part, top in zip(parts[1:], (12, 31, 23, 59, 59), strict=True)
    )
    if not ok:
        raise EncodeError("Date Time", f"field out of range in {value}")
    return parts


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
    parts = (
        data[offset] | (data[offset + 1] << 8),
        data[offset + 2],
        data[offset + 3],
        data[offset + 4],
        data[offset + 5],
        data[offset + 6],
    )
    problem = _problem(*parts)
    if problem is not None:
        fail(characteristic, name, problem[0], offset + problem[1])
    return _new_date_time(*parts)


def encode_date_time(value: DateTime) -> bytes:
    """Encode a :class:`DateTime` to its 7 wire bytes; fields must be in their GSS ranges."""
    year, *rest = _parts(value)
    return year.to_bytes(2, "little") + bytes(rest)


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


#: The fields of Day Date Time (GSS 3.72), also the first 8 bytes of Current Time.
DAY_DATE_TIME_FIELDS = (
    Field("Date Time", DATE_TIME_FIELD, "date_time"),
    Field("Day of Week", Enumerated(DayOfWeek, "Day of Week"), "day_of_week"),
)


@characteristic(
    DAY_DATE_TIME,
    "Day Date Time",
    gss="3.72 Day Date Time",
    service="CTS 1.1 section 3.1 (inside Current Time's Exact Time 256)",
    table=Table(fields=DAY_DATE_TIME_FIELDS),
)
@dataclass(frozen=True, slots=True)
class DayDateTime:
    """Day Date Time 0x2A0A (GSS 3.72): a Date Time and its Day of Week."""

    date_time: DateTime
    day_of_week: DayOfWeek = DayOfWeek.UNKNOWN

    @classmethod
    def from_datetime(cls, value: dt.datetime) -> DayDateTime:
        """The Day Date Time of a wall-clock :class:`datetime.datetime`."""
        return cls(DateTime.from_datetime(value), DayOfWeek.of(value))
