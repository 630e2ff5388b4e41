"""Waiting, in a benchmark, for a count that a callback raises and signals with an event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


async def wait_until(done: Callable[[], bool], changed: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``done()`` holds, checked again each time ``changed`` is set; False when
    ``timeout_s`` passes first (``done()`` is checked once more after every wake-up)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        changed.clear()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), remaining)
    return True
