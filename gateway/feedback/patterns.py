"""The light's patterns: what each status looks like on the RGB LED (docs/feedback.md).

A pattern is a sequence of steps, each a colour held for a time; a *steady* pattern is one
colour held until the status changes. Colours are (red, green, blue) duty cycles from 0 to 1,
scaled by the configured brightness. Pure data: the component (gateway/feedback/component.py) plays
them, docs/feedback.md prints them, and the tests compare the mock pins with them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Colour:
    """Duty cycles 0..1 per channel, with the name the table prints."""

    name: str
    red: float
    green: float
    blue: float

    def scaled(self, factor: float) -> tuple[float, float, float]:
        """The three duty cycles times ``factor`` (rounded to 1/1000: PWM has no finer step)."""
        return (
            round(self.red * factor, 3),
            round(self.green * factor, 3),
            round(self.blue * factor, 3),
        )


OFF = Colour("off", 0.0, 0.0, 0.0)
CALM_GREEN = Colour("dim green", 0.0, 0.08, 0.0)
GREEN = Colour("green", 0.0, 1.0, 0.0)
BLUE = Colour("blue", 0.0, 0.0, 1.0)
AMBER = Colour("amber", 1.0, 0.35, 0.0)


@dataclass(frozen=True, slots=True)
class Step:
    """One colour for ``hold_ms`` (0: until the next pattern)."""

    colour: Colour
    hold_ms: int


class Pattern(enum.Enum):
    """Every pattern, with its steps and what it means (the printable table's rows)."""

    value: tuple[str, tuple[Step, ...]]

    #: All is well: a dim, steady green.
    CALM = ("all is well", (Step(CALM_GREEN, 0),))
    #: A reading is stored on the hub: two short blue pulses.
    STORED = (
        "a reading is saved on the hub",
        (Step(BLUE, 300), Step(OFF, 200), Step(BLUE, 300), Step(OFF, 200)),
    )
    #: A reading reached the care team: bright green for two seconds.
    DELIVERED = ("a reading reached the care team", (Step(GREEN, 2000), Step(OFF, 200)))
    #: Something needs a look (battery, a device not heard from, no connection, the clock).
    ATTENTION = ("something needs a look (the display or the button says what)", (Step(AMBER, 0),))
    #: Quiet hours: nothing lit.
    QUIET = ("quiet hours: nothing lit", (Step(OFF, 0),))
    #: The button, all well: bright green while the status is shown.
    SHOW_CALM = ("button pressed, all is well", (Step(GREEN, 0),))
    #: The button, something needs a look: amber blinking while the status is shown.
    SHOW_ATTENTION = (
        "button pressed, something needs a look",
        (Step(AMBER, 500), Step(OFF, 500)),
    )

    @property
    def meaning(self) -> str:
        """What the pattern says, for the table."""
        return self.value[0]

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps; one step with ``hold_ms == 0`` is steady."""
        return self.value[1]

    @property
    def steady(self) -> bool:
        """True for a colour held until the status changes."""
        return len(self.steps) == 1 and self.steps[0].hold_ms == 0

    @property
    def repeats(self) -> bool:
        """True for a blinking base pattern (repeated while it is the status)."""
        return self is Pattern.SHOW_ATTENTION

    @property
    def duration_ms(self) -> int:
        """The time one run of the pattern takes (0 for a steady one)."""
        return sum(s.hold_ms for s in self.steps)


#: Patterns that play once over the status (a transient), then the status comes back.
TRANSIENTS = frozenset({Pattern.STORED, Pattern.DELIVERED})
