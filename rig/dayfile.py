"""Days as JSON Lines: any day of readings, read and written for ``narhub bench wire --input``
(docs/protocols/uplink.md, "Other days")."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal

from protocols.uplink import Priority

#: 2025-03-12T06:00:00Z: the default start of the reference day.
from rig.refday import (
    ALERT_DELAY_MS,
    CONTINUOUS_DELAY_MS,
    SPOT_DELAY_MS,
    DayReading,
)

#: Default maximum wait per priority for readings from a JSONL day (the gateway's policy).
DEFAULT_DELAY_MS: dict[Priority, int] = {
    Priority.ALERT: ALERT_DELAY_MS,
    Priority.CLINICAL: SPOT_DELAY_MS,
    Priority.ENVIRONMENTAL: CONTINUOUS_DELAY_MS,
    Priority.TELEMETRY: CONTINUOUS_DELAY_MS,
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SPECIAL_VALUES = frozenset({"nan", "nres", "+inf", "-inf", "reserved"})


def _parse_time(where: str, t: object) -> int:
    if isinstance(t, Decimal) and t == t.to_integral_value():
        return int(t)
    if isinstance(t, str):
        try:
            moment = dt.datetime.fromisoformat(t)
        except ValueError:
            raise ValueError(f"{where}: t {t!r} is not ISO 8601") from None
        if moment.tzinfo is None:
            raise ValueError(f"{where}: t {t!r} has no UTC offset")
        return (moment - _EPOCH) // dt.timedelta(milliseconds=1)  # exact; sub-ms dropped
    raise ValueError(f"{where}: t must be epoch ms (an integer) or ISO 8601 text")


def _parse_priority(where: str, p: object) -> Priority:
    if p is None:
        return Priority.CLINICAL
    if isinstance(p, str) and p.upper() in Priority.__members__:
        return Priority[p.upper()]
    if isinstance(p, Decimal) and int(p) in Priority._value2member_map_:
        return Priority(int(p))
    raise ValueError(f"{where}: unknown priority {p!r}")


def readings_from_jsonl(lines: Iterable[str]) -> tuple[DayReading, ...]:
    """Readings from JSONL: one object per line (blank lines skipped); see uplink.md.

    Keys: ``stream``, ``mdc_code``, ``unit``, ``t`` (epoch ms or ISO 8601 with offset), ``v``
    (a JSON number, kept exactly, or a special value name such as ``"nan"``); optional
    ``priority`` (``alert``, ``clinical``, ``environmental``, ``telemetry`` or 0-3),
    ``device`` (default: the stream name up to its first ``/``), ``flags`` (list of text)
    and ``max_delay_ms`` (default by priority: 0, 10 s, 5 min, 5 min). Readings are sorted
    by time (stable) as the hub would receive them.
    """
    out: list[DayReading] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = json.loads(line, parse_float=Decimal, parse_int=Decimal)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise ValueError(f"{where}: not a JSON object")
        missing = {"stream", "mdc_code", "unit", "t", "v"} - item.keys()
        if missing:
            raise ValueError(f"{where}: missing {', '.join(sorted(missing))}")
        stream, unit, v = item["stream"], item["unit"], item["v"]
        mdc = item["mdc_code"]
        if not isinstance(stream, str) or not isinstance(unit, str):
            raise ValueError(f"{where}: stream and unit must be text")
        if not (isinstance(mdc, Decimal) and mdc == mdc.to_integral_value() and mdc >= 0):
            raise ValueError(f"{where}: mdc_code must be a non-negative integer")
        if isinstance(v, str) and v in SPECIAL_VALUES:
            value, special = None, v
        elif isinstance(v, Decimal):
            value, special = v, None
        else:
            raise ValueError(f"{where}: v must be a number or one of {sorted(SPECIAL_VALUES)}")
        priority = _parse_priority(where, item.get("priority"))
        flags = item.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise ValueError(f"{where}: flags must be a list of text")
        delay = item.get("max_delay_ms", DEFAULT_DELAY_MS[priority])
        device = item.get("device", stream.split("/", 1)[0])
        if not isinstance(device, str):
            raise ValueError(f"{where}: device must be text")
        out.append(
            DayReading(
                stream=stream,
                device=device,
                mdc_code=int(mdc),
                unit=unit,
                t_ms=_parse_time(where, item["t"]),
                value=value,
                special=special,
                priority=priority,
                max_delay_ms=int(delay),
                flags=frozenset(flags),
            )
        )
    order = sorted(range(len(out)), key=lambda i: out[i].t_ms)
    return tuple(out[i] for i in order)


def to_jsonl(readings: Iterable[DayReading]) -> Iterator[str]:
    """JSONL lines (without newlines) for readings, exact values kept as JSON numbers."""
    for r in readings:
        v = r.special if r.value is None else f"\x00{r.value}\x00"
        item: dict[str, object] = {
            "stream": r.stream,
            "mdc_code": r.mdc_code,
            "unit": r.unit,
            "t": r.t_ms,
            "v": v,
            "priority": r.priority.topic_name,
            "device": r.device,
            "max_delay_ms": r.max_delay_ms,
        }
        if r.flags:
            item["flags"] = sorted(r.flags)
        yield (
            json.dumps(item, separators=(",", ":")).replace('"\\u0000', "").replace('\\u0000"', "")
        )
