"""What the display shows, as a model: rows of large text, no pixels (docs/feedback.md).

The renderer (drivers/feedback/render.py) draws this model with Pillow; tests assert on the
model and check the drawn text against it. Status only: a device's last reading time and
whether it reached the care centre, and the one thing that needs a look. Never a value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.feedback.sentences import Language, fixed, label


@dataclass(frozen=True, slots=True)
class Row:
    """One device: 'Blodtryck 08:14' over 'skickat' (or 'väntar på nätet')."""

    label: str
    time_text: str
    status_text: str
    sent: bool


@dataclass(frozen=True, slots=True)
class Screen:
    """The whole screen: device rows (newest first), or a line saying there are none yet,
    and at most one sentence about what needs a look."""

    rows: tuple[Row, ...]
    empty_text: str | None
    attention: str | None


@dataclass(frozen=True, slots=True)
class LastReading:
    """A device's newest reading, as the feedback component knows it."""

    kind: str
    taken_ms: int
    sent: bool


def time_text(taken: dt.datetime, now: dt.datetime, language: Language) -> str:
    """'08:14' today, 'igår 21:03' yesterday, '3/2 08:14' (day/month) before."""
    clock = taken.strftime("%H:%M")
    days = (now.date() - taken.date()).days
    if days == 0 or days < 0:  # a device clock slightly ahead still reads as today
        return clock
    if days == 1:
        return f"{fixed('yesterday', language)} {clock}"
    if language == "sv":
        return f"{taken.day}/{taken.month} {clock}"
    return f"{taken.day} {taken.strftime('%b')} {clock}"


def screen_model(
    last: list[LastReading],
    attention: str | None,
    *,
    language: Language,
    now: dt.datetime,
    local: dt.tzinfo | None = None,
) -> Screen:
    """The screen for these readings (any order) and this attention sentence. ``now`` is
    aware; reading times are shown in ``local`` (default: ``now``'s zone)."""
    zone = local or now.tzinfo
    rows = tuple(
        Row(
            label(r.kind, language),
            time_text(dt.datetime.fromtimestamp(r.taken_ms / 1000, zone), now, language),
            fixed("sent" if r.sent else "waiting", language),
            r.sent,
        )
        for r in sorted(last, key=lambda r: -r.taken_ms)
    )
    return Screen(rows, None if rows else fixed("no_readings", language), attention)
