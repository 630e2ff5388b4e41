"""Record cursors: which stored records of a device the hub already has.

A RACP download (GLS 1.0 4.9) asks only for records after the last committed sequence
number. The cursor lives behind :class:`RecordCursorStore` (the gateway persists it in
SQLite) and advances only when the consumer has acknowledged every event of the records up
to it (``MeasurementEvent.ack``), so a crash or a dropped link never skips a record and a
resumed download never repeats a committed one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

logger = logging.getLogger(__name__)

#: Sequence numbers are uint16 (GSS 3.106.2.2).
MAX_SEQUENCE = 0xFFFF


class RecordCursorStore(Protocol):
    """Persistence for the last committed record sequence number per device."""

    async def load(self, device: str) -> int | None:
        """The last committed sequence number, ``None`` when nothing was ever committed."""
        ...

    async def commit(self, device: str, sequence_number: int) -> None:
        """Durably record that every record up to ``sequence_number`` is committed."""
        ...


class MemoryRecordCursorStore:
    """A :class:`RecordCursorStore` in memory (tests, the bench, a hub without storage)."""

    def __init__(self) -> None:
        self.cursors: dict[str, int] = {}
        self.commits = 0

    async def load(self, device: str) -> int | None:
        """The last committed sequence number."""
        return self.cursors.get(device)

    async def commit(self, device: str, sequence_number: int) -> None:
        """Remember ``sequence_number``."""
        self.cursors[device] = sequence_number
        self.commits += 1


class RecordTracker:
    """Per device: records received but not yet committed, and the committed cursor.

    Survives sessions, so a download that dropped half-way resumes from the last record the
    pipeline committed, once the acks of the records already received have come in.
    """

    def __init__(self, device: str, store: RecordCursorStore) -> None:
        self.device = device
        self._store = store
        self._pending: deque[tuple[int | None, asyncio.Future[None]]] = deque()
        self._cursor: int | None = None
        self._loaded = False
        self._lock = asyncio.Lock()
        #: Records skipped because they were at or below the cursor.
        self.duplicates = 0

    def new_ack(self, sequence_number: int | None) -> asyncio.Future[None]:
        """A future for one event of record ``sequence_number``, tracked until settled."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((sequence_number, future))
        return future

    def already_committed(self, sequence_number: int) -> bool:
        """True for a record at or below the committed cursor (a re-sent old record)."""
        return self._cursor is not None and sequence_number <= self._cursor

    @property
    def committed(self) -> int | None:
        """The committed cursor as last loaded or advanced."""
        return self._cursor

    @property
    def pending(self) -> int:
        """Events received and not yet settled."""
        return len(self._pending)

    def discard(self) -> None:
        """Forget the records received and not settled: they are asked for again (a
        download that did not complete, when its records cannot be trusted to be
        contiguous). Their acknowledgements still arrive and change nothing."""
        self._pending.clear()

    async def cursor(self) -> int | None:
        """The committed cursor (loaded from the store once)."""
        if not self._loaded:
            self._cursor = await self._store.load(self.device)
            self._loaded = True
        return self._cursor

    async def settle(self, timeout_s: float) -> bool:
        """Wait (up to ``timeout_s``) for the acks of records received, then commit the
        highest sequence number whose events, and all events before them, are acknowledged.

        Returns True when nothing is left pending. An ack that fails or is cancelled (the
        pipeline could not commit) leaves its record uncommitted: it is asked for again.
        """
        async with self._lock:
            await self.cursor()
            if self._pending:
                futures = [f for _, f in self._pending]
                await asyncio.wait(futures, timeout=timeout_s)
            highest: int | None = None
            while self._pending:
                seq, future = self._pending[0]
                if not future.done():
                    break
                if future.cancelled() or future.exception() is not None:
                    # Not committed: drop everything after it too, to be asked for again.
                    self._pending.clear()
                    break
                self._pending.popleft()
                if seq is not None and (highest is None or seq > highest):
                    highest = seq
            if highest is not None and (self._cursor is None or highest > self._cursor):
                await self._store.commit(self.device, highest)
                self._cursor = highest
                logger.debug("record cursor advanced")
            return not self._pending
