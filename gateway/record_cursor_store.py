"""The persisted RACP record cursors: the last committed sequence number per device.

Implements :class:`drivers.ble.RecordCursorStore` in SQLite (WAL, ``synchronous=FULL``, as
the outbox: a committed cursor survives a power cut). The central calls :meth:`commit` only
after the pipeline has acknowledged the records' readings as stored in the outbox, so after a
crash the hub asks again for what it may not have, and never skips a record. Commits are rare
(once per download), so each runs on a worker thread and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS record_cursors (
    device TEXT PRIMARY KEY,
    sequence_number INTEGER NOT NULL
) WITHOUT ROWID;
"""


class SqliteRecordCursorStore:
    """Record cursors in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def _load(self, device: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sequence_number FROM record_cursors WHERE device = ?", (device,)
            ).fetchone()
        return None if row is None else int(row[0])

    def _commit(self, device: str, sequence_number: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO record_cursors (device, sequence_number) VALUES (?, ?) "
                "ON CONFLICT(device) DO UPDATE SET sequence_number = excluded.sequence_number",
                (device, sequence_number),
            )

    async def load(self, device: str) -> int | None:
        """The last committed sequence number of ``device``, ``None`` if never committed."""
        return await asyncio.to_thread(self._load, device)

    async def commit(self, device: str, sequence_number: int) -> None:
        """Durably store the cursor (the statement commits; ``synchronous=FULL``)."""
        await asyncio.to_thread(self._commit, device, sequence_number)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
