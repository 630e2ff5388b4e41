"""A patient's care plan: the measurements the care team expects, when, and the limits.

A plan is JSON (or TOML), set with ``narhub region plan set`` (docs/region.md, "Care plans")::

    {
      "zone": "Europe/Stockholm",
      "expect": [
        {"measure": "blood-pressure", "from": "05:00", "by": "10:00"},
        {"measure": "body-weight", "from": "00:00", "by": "24:00"},
        {"measure": "spo2", "from": "22:00", "by": "07:00"},
        {"measure": "sensor-board", "max_gap": "PT15M"}
      ],
      "limits": {"hub_silent_after": "PT30M", "battery_low_percent": 20}
    }

A **window** is a daily local time span in ``zone`` (IANA name); ``from`` after ``by`` spans
midnight (overnight oximetry: 22:00 to 07:00 the next morning). ``by`` is the deadline: when
it passes on the region's clock with no reading of the measure taken in the window, the
measurement is missed. A ``max_gap`` (ISO 8601 duration) expects a device to report
continuously: a sensor board always on. ``limits`` (all optional) tune the other findings.

Bad input raises :class:`PlanError` naming the key (``expect[2].by``), what is wrong, and
what is accepted. Pure: no I/O except the time-zone database :mod:`zoneinfo` reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from region.findings.errors import FindingsError
from region.findings.measures import MEASURES, NAMES, SENSOR_BOARD

_DAY_MS = 86_400_000
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")
_LIMITS = {
    "hub_silent_after": "duration",
    "device_unseen_after": "duration",
    "alert_stale_after": "duration",
    "battery_low_percent": "percent",
    "device_clock_off_s": "seconds",
}


class PlanError(FindingsError, ValueError):
    """A care plan refused: ``key`` names where (``expect[0].by``), ``reason`` what is wrong."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


@dataclass(frozen=True, slots=True)
class Limits:
    """When the findings other than a missed measurement open (defaults: docs/region.md)."""

    hub_silent_after_ms: int = 30 * 60_000
    device_unseen_after_ms: int = 2 * _DAY_MS
    alert_stale_after_ms: int = 12 * 3_600_000
    battery_low_percent: int = 20
    device_clock_off_s: int = 120

    def strictest(self, other: Limits) -> Limits:
        """The stricter of two plans' limits (a hub lent to two patients answers to both)."""
        return Limits(
            min(self.hub_silent_after_ms, other.hub_silent_after_ms),
            min(self.device_unseen_after_ms, other.device_unseen_after_ms),
            min(self.alert_stale_after_ms, other.alert_stale_after_ms),
            max(self.battery_low_percent, other.battery_low_percent),
            min(self.device_clock_off_s, other.device_clock_off_s),
        )


@dataclass(frozen=True, slots=True)
class Window:
    """One occurrence of a daily window: ``[start_ms, by_ms)`` on the region's clock."""

    start_ms: int
    by_ms: int


@dataclass(frozen=True, slots=True)
class Expectation:
    """A measure expected in a daily window (``start``/``by`` minutes of the local day), or a
    device expected to report with gaps of at most ``max_gap_ms``."""

    measure: str
    start_min: int | None = None
    by_min: int | None = None
    max_gap_ms: int | None = None

    @property
    def windowed(self) -> bool:
        """Whether this is a daily window (else a continuous device)."""
        return self.by_min is not None

    def to_json(self) -> dict[str, Any]:
        """As the plan file writes it."""
        if self.max_gap_ms is not None:
            return {"measure": self.measure, "max_gap": format_duration(self.max_gap_ms)}
        assert self.start_min is not None
        assert self.by_min is not None
        return {
            "measure": self.measure,
            "from": _format_minute(self.start_min),
            "by": _format_minute(self.by_min),
        }


@dataclass(frozen=True, slots=True)
class CarePlan:
    """What the care team expects of one patient (``zone``: an IANA time-zone name)."""

    zone: str
    expect: tuple[Expectation, ...]
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (every limit spelled out)."""
        limits = self.limits
        return {
            "zone": self.zone,
            "expect": [e.to_json() for e in self.expect],
            "limits": {
                "hub_silent_after": format_duration(limits.hub_silent_after_ms),
                "device_unseen_after": format_duration(limits.device_unseen_after_ms),
                "alert_stale_after": format_duration(limits.alert_stale_after_ms),
                "battery_low_percent": limits.battery_low_percent,
                "device_clock_off_s": limits.device_clock_off_s,
            },
        }

    def windows(self, expectation: Expectation, after_ms: int, until_ms: int) -> list[Window]:
        """The occurrences of a daily window that start at or after ``after_ms`` and whose
        deadline is at or before ``until_ms``, oldest first (local days in ``zone``: a
        window keeps its local times across daylight-saving changes)."""
        if not expectation.windowed or until_ms <= after_ms:
            return []
        assert expectation.start_min is not None
        assert expectation.by_min is not None
        zone = ZoneInfo(self.zone)
        first = _local_date(after_ms, zone) - dt.timedelta(days=1)
        last = _local_date(until_ms, zone)
        out = []
        day = first
        while day <= last:
            by = _at(day, expectation.by_min, zone)
            start_day = day if expectation.start_min < expectation.by_min else day - _ONE_DAY
            start = _at(start_day, expectation.start_min, zone)
            if start >= after_ms and by <= until_ms:
                out.append(Window(start, by))
            day += _ONE_DAY
        return out


_ONE_DAY = dt.timedelta(days=1)


def _local_date(t_ms: int, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(t_ms / 1000, tz=zone).date()


@functools.lru_cache(maxsize=8192)
def _at(day: dt.date, minute: int, zone: ZoneInfo) -> int:
    """Epoch ms of a local minute of a day (24:00: the next midnight); cached: the patients of
    a region share a few plans and the same days."""
    # Aware datetime + timedelta is wall-clock arithmetic: 10:00 stays 10:00 across DST.
    local = dt.datetime(day.year, day.month, day.day, tzinfo=zone) + dt.timedelta(minutes=minute)
    return round(local.timestamp() * 1000)


def parse_duration(key: str, text: object) -> int:
    """An ISO 8601 duration (``PT30M``, ``P2D``, ``P1DT12H``) as ms, above zero."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text == "P" or str(text).endswith("T"):
        raise PlanError(key, f"{text!r} is not a duration: give ISO 8601, e.g. PT30M or P2D")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    ms = ((parts["d"] * 24 + parts["h"]) * 60 + parts["m"]) * 60_000 + parts["s"] * 1000
    if ms <= 0:
        raise PlanError(key, "the duration must be longer than zero")
    return ms


def format_duration(ms: int) -> str:
    """Milliseconds as an ISO 8601 duration (whole seconds)."""
    seconds = ms // 1000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "" if days else "T0S")


def _parse_minute(key: str, text: object) -> int:
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise PlanError(key, f"{text!r} is not a time of day: give HH:MM, 00:00 to 24:00")
    if text == "24:00":
        return 24 * 60
    return int(match.group(1)) * 60 + int(match.group(2))


def _format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _object(key: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise PlanError(key, f"must be an object (a table), not {type(value).__name__}")
    return value


def _no_extra(key: str, data: Mapping[str, object], allowed: set[str]) -> None:
    for name in data:
        if name not in allowed:
            where = f"{key}.{name}" if key else (str(name) or "(an empty key)")
            raise PlanError(where, f"unknown key; expected one of {', '.join(sorted(allowed))}")


def _expectation(key: str, raw: object) -> Expectation:
    data = _object(key, raw)
    measure = data.get("measure")
    if measure not in NAMES:
        raise PlanError(f"{key}.measure", f"{measure!r} is not one of {', '.join(NAMES)}")
    assert isinstance(measure, str)
    if measure == SENSOR_BOARD:
        _no_extra(key, data, {"measure", "max_gap"})
        if "max_gap" not in data:
            raise PlanError(f"{key}.max_gap", "missing: a sensor board needs its longest gap")
        return Expectation(measure, max_gap_ms=parse_duration(f"{key}.max_gap", data["max_gap"]))
    _no_extra(key, data, {"measure", "from", "by"})
    if "by" not in data:
        raise PlanError(f"{key}.by", "missing: the deadline of the daily window (HH:MM)")
    by = _parse_minute(f"{key}.by", data["by"])
    start = _parse_minute(f"{key}.from", data.get("from", "00:00"))
    if start in (by, 24 * 60) or by == 0:
        raise PlanError(f"{key}.from", "the window is empty: give a 'from' before 'by'")
    return Expectation(measure, start_min=start, by_min=by)


def _limits(raw: object) -> Limits:
    data = _object("limits", raw)
    _no_extra("limits", data, set(_LIMITS))
    values: dict[str, int] = {}
    for name, kind in _LIMITS.items():
        if name not in data:
            continue
        key, value = f"limits.{name}", data[name]
        if kind == "duration":
            values[f"{name}_ms"] = parse_duration(key, value)
            continue
        high = 100 if kind == "percent" else 86_400
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= high:
            raise PlanError(key, f"{value!r} is not a whole number from 1 to {high}")
        values[name] = value
    return Limits(**values)


def parse_plan(data: object) -> CarePlan:
    """A plan from parsed JSON or TOML; :class:`PlanError` names the first bad key."""
    plan = _object("(plan)", data)
    _no_extra("", plan, {"zone", "expect", "limits"})
    zone = plan.get("zone", "Europe/Stockholm")
    if not isinstance(zone, str) or not zone:
        raise PlanError("zone", f"{zone!r} is not a time-zone name, e.g. Europe/Stockholm")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanError("zone", f"{zone!r} is not a time zone the system knows") from None
    expect = plan.get("expect", [])
    if not isinstance(expect, list):
        raise PlanError("expect", "must be a list of expected measurements")
    expectations = tuple(_expectation(f"expect[{i}]", e) for i, e in enumerate(expect))
    seen: set[str] = set()
    for i, e in enumerate(expectations):
        if e.measure in seen:
            raise PlanError(f"expect[{i}].measure", f"{e.measure!r} is expected twice")
        seen.add(e.measure)
    limits = _limits(plan["limits"]) if "limits" in plan else Limits()
    return CarePlan(zone, expectations, limits)


def plan_from_json(text: str) -> CarePlan:
    """A plan from JSON text (as stored)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError("(plan)", f"not valid JSON: {exc}") from None
    return parse_plan(data)


def measure_names(plan: CarePlan) -> list[str]:
    """The measures a plan expects in windows (for the worklist's columns)."""
    return [e.measure for e in plan.expect if e.windowed and e.measure in MEASURES]
