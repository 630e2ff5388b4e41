"""The durable outbox: readings and signed batches in SQLite, safe across power cuts.

SQLite in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns; see
https://www.sqlite.org/pragma.html#pragma_synchronous). A reading is acknowledged to its
source only after the transaction that stored it has committed; a batch is deleted only
after the broker's PUBACK carried a reason code below 0x80.

All methods are blocking; the async hub calls them through one worker thread
(:class:`AsyncOutbox`) so the event loop never waits on an fsync.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import cbor2

from gateway.reading import Reading
from protocols.uplink import BatchHeader, BatchSigner, Priority, WireReading, encode_body

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    priority INTEGER NOT NULL,
    payload BLOB NOT NULL,
    batch_id INTEGER REFERENCES batches(id)
);
CREATE INDEX IF NOT EXISTS readings_unbatched ON readings(priority, id) WHERE batch_id IS NULL;
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    message BLOB NOT NULL,
    rejected_reason INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS source_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class PendingBatch:
    """A signed batch waiting for its PUBACK."""

    batch_id: int
    seq: int
    priority: Priority
    message: bytes


def _pack(reading: WireReading) -> bytes:
    value = None if reading.value is None else str(reading.value)
    return cbor2.dumps(
        [
            reading.stream,
            reading.device,
            reading.mdc_code,
            reading.unit,
            reading.t_ms,
            value,
            reading.special,
            sorted(reading.flags),
        ]
    )


def _unpack(payload: bytes) -> WireReading:
    stream, device, mdc, unit, t_ms, value, special, flags = cbor2.loads(payload)
    return WireReading(
        stream=stream,
        device=device,
        mdc_code=mdc,
        unit=unit,
        t_ms=t_ms,
        value=None if value is None else Decimal(value),
        special=special,
        flags=frozenset(flags),
    )


class Outbox:
    """Readings in, signed batches out; every change is one durable transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        #: A new boot id each time the store is opened: (hub, boot id, seq) names a batch.
        self.boot_id = uuid.uuid4().hex[:12]

    def close(self) -> None:
        """Close the database (a checkpoint leaves the WAL small)."""
        self._db.close()

    def _tx(self, sql: str, rows: Sequence[Sequence[Any]] = ()) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(sql, rows)

    def add(self, readings: Sequence[Reading]) -> int:
        """Store readings in one transaction; when this returns they are on disk.

        A reading whose ``source_key`` was stored before is skipped (sources resend what they
        could not see acknowledged). Returns how many readings were new.
        """
        added = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for r in readings:
                if r.source_key is not None:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO source_keys(key) VALUES (?)", (r.source_key,)
                    )
                    if cursor.rowcount == 0:
                        continue
                self._db.execute(
                    "INSERT INTO readings(priority, payload) VALUES (?, ?)",
                    (int(r.priority), _pack(r.to_wire())),
                )
                added += 1
        return added

    def unbatched_count(self) -> int:
        """Readings not yet sealed into a batch."""
        row = self._db.execute("SELECT count(*) FROM readings WHERE batch_id IS NULL").fetchone()
        return int(row[0])

    def _next_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return 0 if row is None else int(row[0])

    def seal(
        self, signer: BatchSigner, *, now_ms: int, max_readings: int = 5000
    ) -> PendingBatch | None:
        """Seal the most urgent unbatched readings into one signed batch (one transaction)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            first = self._db.execute(
                "SELECT priority FROM readings WHERE batch_id IS NULL ORDER BY priority, id LIMIT 1"
            ).fetchone()
            if first is None:
                return None
            priority = Priority(first[0])
            rows = self._db.execute(
                "SELECT id, payload FROM readings WHERE batch_id IS NULL AND priority=? "
                "ORDER BY id LIMIT ?",
                (int(priority), max_readings),
            ).fetchall()
            seq = self._next_seq()
            readings = [_unpack(payload) for _, payload in rows]
            header = BatchHeader(
                hub_id=signer.hub_id,
                boot_id=self.boot_id,
                seq=seq,
                created_ms=now_ms,
                priority=priority,
                count=len(readings),
            )
            message = signer.sign(encode_body(header, readings))
            cursor = self._db.execute(
                "INSERT INTO batches(seq, priority, created_ms, message) VALUES (?, ?, ?, ?)",
                (seq, int(priority), now_ms, message),
            )
            batch_id = int(cursor.lastrowid or 0)
            self._db.executemany(
                "UPDATE readings SET batch_id=? WHERE id=?", [(batch_id, rid) for rid, _ in rows]
            )
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('next_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(seq + 1),),
            )
        return PendingBatch(batch_id, seq, priority, message)

    def pending(self, limit: int = 100) -> list[PendingBatch]:
        """Unsent, unrejected batches, alerts first, oldest first within a priority."""
        rows = self._db.execute(
            "SELECT id, seq, priority, message FROM batches WHERE rejected_reason IS NULL "
            "ORDER BY priority, id LIMIT ?",
            (limit,),
        ).fetchall()
        return [PendingBatch(r[0], r[1], Priority(r[2]), r[3]) for r in rows]

    def acknowledge(self, batch_id: int) -> None:
        """The broker accepted the batch (reason code < 0x80): delete it and its readings."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM readings WHERE batch_id=?", (batch_id,))
            self._db.execute("DELETE FROM batches WHERE id=?", (batch_id,))

    def reject(self, batch_id: int, reason_code: int) -> None:
        """The broker refused the batch: keep it, with the reason, for the technician."""
        self._tx("UPDATE batches SET rejected_reason=? WHERE id=?", [(reason_code, batch_id)])

    def all_batches(self) -> list[tuple[PendingBatch, int | None]]:
        """Every stored batch with its rejection reason (None while still to send)."""
        rows = self._db.execute(
            "SELECT id, seq, priority, message, rejected_reason FROM batches ORDER BY priority, id"
        ).fetchall()
        return [(PendingBatch(r[0], r[1], Priority(r[2]), r[3]), r[4]) for r in rows]

    def oldest_unsent_ms(self) -> int | None:
        """Epoch ms of the oldest reading not yet acknowledged by the broker, or None."""
        oldest: int | None = None
        row = self._db.execute("SELECT payload FROM readings ORDER BY id LIMIT 1").fetchone()
        if row is not None:
            oldest = _unpack(row[0]).t_ms
        return oldest

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check``: "ok" or the first problem found."""
        return str(self._db.execute("PRAGMA quick_check").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Queue depths: unbatched readings, pending and rejected batches."""
        pending, rejected = self._db.execute(
            "SELECT sum(rejected_reason IS NULL), sum(rejected_reason IS NOT NULL) FROM batches"
        ).fetchone()
        return {
            "unbatched_readings": self.unbatched_count(),
            "pending_batches": int(pending or 0),
            "rejected_batches": int(rejected or 0),
        }


class AsyncOutbox:
    """The :class:`Outbox` behind one worker thread: SQLite calls stay serialised."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="narhub-store")
        self.changed = asyncio.Event()

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def add(self, readings: Sequence[Reading]) -> int:
        """Durably store readings; only then may the source be acknowledged."""
        count: int = await self._run(self.outbox.add, readings)
        self.changed.set()
        return count

    async def seal(self, signer: BatchSigner, *, now_ms: int) -> PendingBatch | None:
        """See :meth:`Outbox.seal`."""
        batch: PendingBatch | None = await self._run(self.outbox.seal, signer, now_ms=now_ms)
        return batch

    async def pending(self) -> list[PendingBatch]:
        """See :meth:`Outbox.pending`."""
        result: list[PendingBatch] = await self._run(self.outbox.pending)
        return result

    async def acknowledge(self, batch_id: int) -> None:
        """See :meth:`Outbox.acknowledge`."""
        await self._run(self.outbox.acknowledge, batch_id)

    async def reject(self, batch_id: int, reason_code: int) -> None:
        """See :meth:`Outbox.reject`."""
        await self._run(self.outbox.reject, batch_id, reason_code)

    async def counts(self) -> dict[str, int]:
        """See :meth:`Outbox.counts`."""
        result: dict[str, int] = await self._run(self.outbox.counts)
        return result

    def close(self) -> None:
        """Finish queued work and close the database."""
        self._executor.shutdown(wait=True)
        self.outbox.close()
