"""Playing the light's patterns (gateway/feedback/patterns.py) on an open light.

The status (``calm``, ``attention``, ``quiet``, the button's ``show_*``) is held until it
changes; a one-shot pattern (``stored``, ``delivered``) plays over it and the status comes
back. One-shot patterns wait in a queue of :data:`QUEUE_SIZE`; beyond it the oldest is
dropped. Each colour given to the light is kept in :attr:`LightPlayer.steps` with its time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from drivers._aio import reraise_if_cancelling
from gateway.feedback.patterns import Pattern

#: One-shot patterns waiting, at most (drop-oldest beyond).
QUEUE_SIZE = 4

Rgb = tuple[float, float, float]


class Light(Protocol):
    """An open light (drivers/feedback/light.py, RgbLight)."""

    def set(self, rgb: Rgb) -> None: ...


@dataclass(frozen=True, slots=True)
class LightStep:
    """A colour the light was given, when (monotonic s) and in which pattern."""

    at_s: float
    pattern: Pattern
    rgb: Rgb


class LightPlayer:
    """The status and the queued one-shot patterns; :meth:`play_on` runs them on a light."""

    def __init__(
        self, brightness: float, changed: asyncio.Event, on_played: Callable[[], None]
    ) -> None:
        """``changed`` is set at every colour; ``on_played`` is called after each one-shot
        pattern."""
        self.brightness = brightness
        self._on_played = on_played
        self.base = Pattern.CALM
        self._transients: deque[Pattern] = deque(maxlen=QUEUE_SIZE)
        self._wake = asyncio.Event()
        self._changed = changed
        #: The colours given, newest last.
        self.steps: deque[LightStep] = deque(maxlen=512)

    def show(self, base: Pattern) -> None:
        """Hold ``base`` as the status from now (after a one-shot pattern that is playing)."""
        if base is not self.base:
            self.base = base
            self._wake.set()

    def queue(self, pattern: Pattern) -> None:
        """Play ``pattern`` once over the status."""
        self._transients.append(pattern)  # deque(maxlen): the oldest goes
        self._wake.set()

    async def play_on(self, light: Light) -> None:
        """Run until cancelled."""
        while True:
            if self._transients:
                pattern = self._transients.popleft()
                self._wake.clear()
                await self._once(light, pattern)
                self._on_played()
                continue
            base = self.base
            self._wake.clear()
            await self._hold(light, base)

    def _step(self, light: Light, pattern: Pattern, rgb: Rgb) -> None:
        light.set(rgb)
        self.steps.append(LightStep(asyncio.get_running_loop().time(), pattern, rgb))
        self._changed.set()

    async def _once(self, light: Light, pattern: Pattern) -> None:
        for step in pattern.steps:
            self._step(light, pattern, step.colour.scaled(self.brightness))
            await asyncio.sleep(step.hold_ms / 1000)  # the pattern's timing, not a sync

    async def _hold(self, light: Light, pattern: Pattern) -> None:
        """Show the status until it changes or a one-shot pattern comes."""
        if not pattern.repeats:
            rgb = pattern.steps[0].colour.scaled(self.brightness)
            if not self.steps or self.steps[-1].rgb != rgb:
                self._step(light, pattern, rgb)
            await self._wake.wait()
            return
        while not self._wake.is_set():
            for step in pattern.steps:
                self._step(light, pattern, step.colour.scaled(self.brightness))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), step.hold_ms / 1000)
                reraise_if_cancelling()  # Python 3.11's wait_for can swallow a racing cancel
                if self._wake.is_set():
                    return
