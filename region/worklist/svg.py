"""A vital sign over time as inline SVG, drawn on the server (pure: data in, markup out).

One plot per vital sign and period: each line (systolic and diastolic, say) as its bucket
means joined, a band from each bucket's lowest to highest value, readings the hub's
threshold flagged as red rings, day ticks on the time axis in the plan's zone and a few
value ticks. Accessible: ``role="img"`` with a ``<title>`` and a ``<desc>`` that says in
words what the plot shows (how many values, lowest and highest per line), and colours that
differ in lightness too (a line is also told apart by its dash pattern).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from zoneinfo import ZoneInfo

from region.findings.store import Point

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28
#: Line colours (dark blue, dark orange) with dash patterns; both pass 4.5:1 on white.
_STYLES = (("#1f4e99", ""), ("#a34700", "6 3"))
_ALERT = "#b00020"
_Map = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a plot: its label and points."""

    label: str
    points: Sequence[Point]


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    span = high - low or 1.0
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= step * factor:
            step *= factor
            break
    first = math.ceil(low / step) * step
    out = []
    value = first
    while value <= high + 1e-9:
        out.append(round(value, 6))
        value += step
    return out


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.1f}"


def plot(
    series: Sequence[Series],
    *,
    from_ms: int,
    to_ms: int,
    zone: str,
    title: str,
    unit: str,
    empty_text: str,
    describe: str,
) -> str:
    """The SVG markup; ``describe`` is a template with ``{label}``, ``{count}``, ``{low}``,
    ``{high}``, ``{unit}`` for each line's sentence in the ``<desc>``."""
    values = [v for s in series for p in s.points for v in (p.low, p.high)]
    if not values:
        return (
            f'<svg class="plot" viewBox="0 0 {WIDTH} 60" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<text x="{WIDTH // 2}" y="34" text-anchor="middle">{escape(empty_text)}</text></svg>'
        )
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or max(abs(high) * 0.05, 1.0)
    low, high = low - pad, high + pad
    inner_w = WIDTH - _LEFT - _RIGHT
    inner_h = HEIGHT - _TOP - _BOTTOM

    def x(t_ms: float) -> float:
        return _LEFT + (t_ms - from_ms) / max(1, to_ms - from_ms) * inner_w

    def y(value: float) -> float:
        return _TOP + (high - value) / (high - low) * inner_h

    parts = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    sentences = []
    for s in series:
        if s.points:
            s_low = min(p.low for p in s.points)
            s_high = max(p.high for p in s.points)
            count = sum(p.count for p in s.points)
            sentences.append(
                describe.format(
                    label=s.label, count=count, low=_number(s_low), high=_number(s_high), unit=unit
                )
            )
    parts.append(f"<desc>{escape('. '.join(sentences))}</desc>")
    parts.append(_axes(from_ms, to_ms, zone, low, high, x, y))
    for index, s in enumerate(series):
        colour, dash = _STYLES[index % len(_STYLES)]
        parts.append(_line(s, colour, dash, x, y))
    parts.append(_legend(series, unit))
    parts.append("</svg>")
    return "".join(parts)


def _axes(from_ms: int, to_ms: int, zone: str, low: float, high: float, x: _Map, y: _Map) -> str:
    out = ['<g class="axes" font-size="11" fill="#333">']
    for value in _ticks(low, high):
        yy = y(value)
        out.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
            f'<text x="{_LEFT - 4}" y="{yy + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    tz = ZoneInfo(zone)
    day = dt.datetime.fromtimestamp(from_ms / 1000, tz=tz).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    days = max(1, round((to_ms - from_ms) / 86_400_000))
    every = 1 if days <= 8 else 5
    index = 0
    while (t_ms := round(day.timestamp() * 1000)) <= to_ms:
        if t_ms >= from_ms and index % every == 0:
            xx = x(t_ms)
            out.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_TOP}" y2="{HEIGHT - _BOTTOM}" '
                f'stroke="#e4e4e4"/><text x="{xx:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{day.strftime("%d/%m")}</text>'
            )
        index += 1
        day = (day + dt.timedelta(days=1, hours=2)).replace(hour=0)
    out.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{WIDTH - _LEFT - _RIGHT}" '
        f'height="{HEIGHT - _TOP - _BOTTOM}" fill="none" stroke="#767676"/></g>'
    )
    return "".join(out)


def _line(s: Series, colour: str, dash: str, x: _Map, y: _Map) -> str:
    out = [f'<g class="series" stroke="{colour}" fill="{colour}">']
    for p in s.points:
        if p.high > p.low:
            xx = x(p.t_ms)
            out.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y(p.low):.1f}" y2="{y(p.high):.1f}" '
                'stroke-width="3" stroke-opacity="0.35"/>'
            )
    if len(s.points) > 1:
        coords = " ".join(f"{x(p.t_ms):.1f},{y(p.mean):.1f}" for p in s.points)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{coords}" fill="none" stroke-width="2"{dashes}/>')
    for p in s.points:
        out.append(f'<circle cx="{x(p.t_ms):.1f}" cy="{y(p.mean):.1f}" r="2.5"/>')
        if p.alerts:
            out.append(
                f'<circle cx="{x(p.t_ms):.1f}" cy="{y(p.high):.1f}" r="6" fill="none" '
                f'stroke="{_ALERT}" stroke-width="2"/>'
            )
    out.append("</g>")
    return "".join(out)


def _legend(series: Sequence[Series], unit: str) -> str:
    out = ['<g class="legend" font-size="12">']
    xx = _LEFT + 6
    for index, s in enumerate(series):
        colour, dash = _STYLES[index % len(_STYLES)]
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{xx}" x2="{xx + 18}" y1="{_TOP + 10}" y2="{_TOP + 10}" '
            f'stroke="{colour}" stroke-width="2"{dashes}/>'
            f'<text x="{xx + 22}" y="{_TOP + 14}" fill="#222">'
            f"{escape(s.label)} ({escape(unit)})</text>"
        )
        xx += 30 + 8 * (len(s.label) + len(unit) + 3)
    out.append("</g>")
    return "".join(out)
