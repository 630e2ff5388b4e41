"""Opt-in lossy reduction for non-clinical sensor data: deadband with heartbeat, window aggregates.

Off by default (``[pipeline] reduction = []``). It never touches a clinical reading or an alert:
:meth:`Reducer.process` passes any reading whose priority is more urgent than
``environmental`` through unchanged whatever the configuration (docs/clinical-boundary.md: lossy
filtering of clinical data could make narhub a medical device).

- **Deadband**: a value is forwarded when it moved at least ``deadband`` from the last value
  forwarded on its stream, when ``heartbeat_s`` passed since then, or when it is special or
  flagged differently. Others are dropped (and still acknowledged to their source).
- **Window**: the readings of a stream in each ``window_s`` window (aligned to the epoch)
  become four readings at the window's start: ``{stream}/min``, ``/mean``, ``/max`` (the unit
  of the stream) and ``/count`` (``{readings}``), flagged ``aggregate`` and
  ``window-s:{seconds}``. The mean is exact to one more digit than the most precise input
  (half-even). A window is emitted when a later reading of the stream arrives, or on
  :meth:`Reducer.flush`. Specials bypass the window. An open window lives in memory only:
  a crash loses the partial aggregate (documented in docs/pipeline.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal

from gateway.reading import Reading
from protocols.uplink import Priority

FLAG_AGGREGATE = "aggregate"


@dataclass(frozen=True, slots=True)
class ReductionRule:
    """Reduction of one MDC code (see the module docstring)."""

    mdc_code: int
    deadband: Decimal | None = None
    heartbeat_s: float = 900.0
    window_s: float | None = None


def deadband_keeps(
    last: Reading | None, reading: Reading, *, deadband: Decimal, heartbeat_ms: int
) -> bool:
    """Whether ``reading`` must be forwarded, given the last forwarded one (pure)."""
    if last is None or reading.value is None or last.value is None:
        return True
    if reading.flags != last.flags or reading.unit != last.unit:
        return True
    if reading.effective_ms() - last.effective_ms() >= heartbeat_ms:
        return True
    return abs(reading.value - last.value) >= deadband


@dataclass(slots=True)
class _Window:
    start_ms: int
    template: Reading
    low: Decimal
    high: Decimal
    total: Decimal
    count: int
    exponent: int


_EXACT = Context(prec=60)


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def window_readings(window: _Window, window_s: float) -> list[Reading]:
    """The four aggregate readings of a closed window (pure)."""
    mean = _EXACT.divide(window.total, Decimal(window.count))
    mean = mean.quantize(Decimal(1).scaleb(window.exponent - 1), context=_EXACT)
    t = window.template
    flags = t.flags | {FLAG_AGGREGATE, f"window-s:{window_s:g}"}
    base = t._replace(
        hub_wall_ms=window.start_ms,
        source_wall_ms=window.start_ms,
        source_key=None,
        flags=flags,
    )
    return [
        base._replace(stream=f"{t.stream}/min", value=window.low),
        base._replace(stream=f"{t.stream}/mean", value=mean),
        base._replace(stream=f"{t.stream}/max", value=window.high),
        base._replace(stream=f"{t.stream}/count", value=Decimal(window.count), unit="{readings}"),
    ]


class Reducer:
    """Applies the configured reduction rules; keeps per-stream state in memory."""

    def __init__(self, rules: Iterable[ReductionRule]) -> None:
        self._rules = {r.mdc_code: r for r in rules}
        self._last: dict[str, Reading] = {}
        self._windows: dict[str, _Window] = {}

    @property
    def active(self) -> bool:
        """Whether any rule is configured."""
        return bool(self._rules)

    def process(self, readings: Iterable[Reading]) -> list[Reading]:
        """The readings to store: reduced where a rule applies, all others unchanged."""
        out: list[Reading] = []
        rules = self._rules
        for r in readings:
            rule = rules.get(r.mdc_code)
            if rule is None or r.priority < Priority.ENVIRONMENTAL:
                out.append(r)
            elif rule.window_s is not None and r.value is not None:
                out.extend(self._window(r, rule.window_s))
            elif rule.deadband is not None:
                last = self._last.get(r.stream)
                heartbeat_ms = round(rule.heartbeat_s * 1000)
                if deadband_keeps(last, r, deadband=rule.deadband, heartbeat_ms=heartbeat_ms):
                    self._last[r.stream] = r
                    out.append(r)
            else:
                out.append(r)
        return out

    def _window(self, r: Reading, window_s: float) -> list[Reading]:
        assert r.value is not None
        window_ms = round(window_s * 1000)
        start = r.effective_ms() // window_ms * window_ms
        current = self._windows.get(r.stream)
        out: list[Reading] = []
        if current is not None and current.start_ms != start:
            out = window_readings(current, window_s)
            current = None
        if current is None:
            self._windows[r.stream] = _Window(
                start, r, r.value, r.value, r.value, 1, _exponent(r.value)
            )
        else:
            current.low = min(current.low, r.value)
            current.high = max(current.high, r.value)
            current.total = _EXACT.add(current.total, r.value)
            current.count += 1
            current.exponent = min(current.exponent, _exponent(r.value))
        return out

    def flush(self) -> list[Reading]:
        """Close every open window (at shutdown)."""
        out: list[Reading] = []
        for stream, window in list(self._windows.items()):
            rule = self._rules.get(window.template.mdc_code)
            window_s = rule.window_s if rule is not None and rule.window_s else 0.0
            out.extend(window_readings(window, window_s))
            del self._windows[stream]
        return out
