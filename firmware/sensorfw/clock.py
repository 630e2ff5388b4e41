"""Board clocks: a monotonic ms counter that does not wrap, and wall time once synced."""

import time


class Clock:
    """``mono_ms()`` counts ms since boot from ``time.ticks_ms`` (which wraps); it must be
    called at least once per ``ticks_ms`` half-period (days), which the samplers do."""

    def __init__(self) -> None:
        self._last = time.ticks_ms()
        self._mono_ms = 0
        self._wall_offset_ms: int | None = None

    def mono_ms(self) -> int:
        now = time.ticks_ms()
        self._mono_ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._mono_ms

    def set_wall_ms(self, wall_ms: int) -> None:
        """TIME from the hub: Unix ms UTC now."""
        self._wall_offset_ms = wall_ms - self.mono_ms()

    def wall_ms(self, mono_ms: int) -> int | None:
        """Wall time of a monotonic instant of this boot, or None before the first TIME."""
        if self._wall_offset_ms is None:
            return None
        return mono_ms + self._wall_offset_ms
