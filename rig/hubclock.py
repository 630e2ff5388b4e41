"""The hub's wall clock, steppable by the rig: ``python -m rig.hubclock FILE ARGS...``.

A Raspberry Pi without a real-time clock sees its wall clock jump: back to what
``fake-hwclock`` saved (or to 1970) after a power cut, forward when NTP answers, by any amount
when someone sets it by hand. The virtual rig plays that on a running hub through this seam:
the hub runs as ``python -m rig.hubclock FILE run --config ...``, and every wall-clock
read of the hub's Python code (``time.time``, ``time.time_ns``, ``datetime.datetime.now``,
``utcnow``, ``today``; with them ``datetime.date.today`` through ``time.time``) is the real
clock plus the offset in seconds written in FILE. The rig steps the clock by rewriting FILE
(:meth:`rig.home.VirtualHomeRig.step_hub_clock`); the hub sees the step within
:data:`RELOAD_S`. Monotonic clocks are untouched, as on a Pi (a step moves only the wall
clock). What runs below Python (OpenSSL's certificate checks, SQLite) keeps the real time:
the rig checks what narhub makes of a step, not what TLS does with a clock hours off.

This module only ever runs inside the rig's hub process; narhub itself never imports it.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Self

#: How often (monotonic seconds) the offset file is read again.
RELOAD_S = 0.05

_real_time = time.time
_real_time_ns = time.time_ns
_RealDateTime = dt.datetime


class SteppedWallClock:
    """The real wall clock plus an offset read from a file (seconds, a decimal number)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset_ns = 0
        self._checked = -RELOAD_S

    def offset_ns(self) -> int:
        """The current offset (the file is read again at most every :data:`RELOAD_S`)."""
        now = time.monotonic()
        if now - self._checked >= RELOAD_S:
            self._checked = now
            try:
                text = self.path.read_text(encoding="ascii").strip()
                self._offset_ns = round(float(text) * 1e9) if text else 0
            except (OSError, ValueError):
                pass  # being rewritten, or gone: keep the last offset
        return self._offset_ns

    def time(self) -> float:
        """``time.time()`` on the stepped clock."""
        return _real_time() + self.offset_ns() / 1e9

    def time_ns(self) -> int:
        """``time.time_ns()`` on the stepped clock."""
        return _real_time_ns() + self.offset_ns()


def install(clock: SteppedWallClock) -> None:
    """Route the process's Python wall-clock reads through ``clock``."""

    class SteppedDateTime(_RealDateTime):
        """``datetime.datetime`` whose ``now``/``utcnow``/``today`` read the stepped clock."""

        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Self:
            return cls.fromtimestamp(clock.time(), tz)

        @classmethod
        def utcnow(cls) -> Self:
            return cls.fromtimestamp(clock.time(), dt.UTC).replace(tzinfo=None)

        @classmethod
        def today(cls) -> Self:
            return cls.fromtimestamp(clock.time())

    time.time = clock.time
    time.time_ns = clock.time_ns
    dt.datetime = SteppedDateTime  # type: ignore[misc]


def main() -> None:
    """``python -m rig.hubclock OFFSET_FILE narhub-args...``."""
    if len(sys.argv) < 2:
        sys.exit("usage: python -m rig.hubclock OFFSET_FILE NARHUB_ARGS...")
    install(SteppedWallClock(Path(sys.argv[1])))
    sys.argv = ["narhub", *sys.argv[2:]]
    from technician.entry import main as narhub  # noqa: PLC0415 - after the clock is installed

    narhub()


if __name__ == "__main__":
    main()
