"""Bounded connection slots with fair (first come, first served) queueing.

A BLE adapter holds only a few connections at once (BlueZ controllers commonly 3-7 and
fewer in practice with scanning on); Home Assistant's bluetooth stack bounds them per adapter.
:class:`ConnectionSlots` grants at most ``limit`` and serves waiters strictly in arrival
order, so a chatty device cannot starve one that woke up later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class ConnectionSlots:
    """At most ``limit`` holders; waiters served first in, first out."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one connection slot is needed")
        self.limit = limit
        self.in_use = 0
        #: The most slots ever held at once (for tests and status).
        self.max_in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Sessions queued for a slot."""
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self) -> None:
        """Take a slot, waiting in line if none is free."""
        if self.in_use < self.limit and not self.waiting:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted just as we were cancelled: hand the slot on.
                self.release()
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _take(self) -> None:
        self.in_use += 1
        self.max_in_use = max(self.max_in_use, self.in_use)

    def release(self) -> None:
        """Give a slot back; the longest waiter gets it."""
        self.in_use -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)
                return

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the ``async with`` body."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()
