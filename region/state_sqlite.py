"""One receiver's state in SQLite, its Observations in an NDJSON file (the embedded default;
:mod:`region.state` describes the seam)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from region.sqlite_db import open_sqlite
from region.state import (
    BatchKey,
    JointWrites,
    ObservationLine,
    line_keys,
    queued_lines,
    resolve,
)

logger = logging.getLogger(__name__)

_ID_QUERY_CHUNK = 500


SQLITE_QUEUE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fhir_queue ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, lines TEXT NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0, refused TEXT)"
)


class SqliteState:
    """One receiver's state in SQLite (WAL, ``synchronous=FULL``); Observations in NDJSON."""

    def __init__(self, state_db: Path, output: Path, *, fhir_queue: bool = False) -> None:
        """``fhir_queue``: also queue each batch's new Observations for a FHIR server, in
        the transaction that records the batch (:mod:`region.fhir_post`)."""
        self._fhir_queue = fhir_queue
        self._db = open_sqlite(state_db)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (hub TEXT, boot TEXT, seq INTEGER, "
            "PRIMARY KEY (hub, boot, seq))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS observations (id TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outputs (path TEXT PRIMARY KEY, recorded INTEGER NOT NULL)"
        )
        if fhir_queue:
            self._db.execute(SQLITE_QUEUE_SCHEMA)
        self._path = state_db
        self._output = output
        self._recover_output()

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file (the enrolment store's default home)."""
        return self._path

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether the batch (hub, boot id, seq) was already written."""
        key = (hub_id, boot_id, seq)
        row = self._db.execute("SELECT 1 FROM seen WHERE hub=? AND boot=? AND seq=?", key)
        return row.fetchone() is not None

    def commit_batch(
        self,
        key: BatchKey,
        observations: Sequence[ObservationLine],
        *,
        writes: JointWrites | None = None,
    ) -> list[str] | None:
        """Append the new lines to the NDJSON file and fsync it, then record the key and the
        ids in one transaction (one process owns the file and the database). No ``writes``:
        the SQLite enrolment store writes its own before the batch (held readings are then
        on disk first, released ones forgotten after)."""
        if writes is not None:
            raise TypeError("a SQLite state takes no joint writes (a PostgreSQL store's)")
        if self.seen(key.hub_id, key.boot_id, key.seq):
            return None
        known = self._known_ids(
            [o.id for o in observations] + [o.alias for o in observations if o.alias]
        )
        resolution = resolve(observations, known)
        lines = [o.line for o in resolution.fresh]
        with self._output.open("ab") as out:
            out.writelines((line + "\n").encode() for line in lines)
            out.flush()
            os.fsync(out.fileno())
            end = out.tell()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO seen(hub, boot, seq) VALUES (?, ?, ?)",
                (key.hub_id, key.boot_id, key.seq),
            )
            self._record(resolution.keys, end, queued_lines(resolution.view, lines))
        return lines

    def _known_ids(self, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for i in range(0, len(ids), _ID_QUERY_CHUNK):
            part = ids[i : i + _ID_QUERY_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT id FROM observations WHERE id IN ({marks})",  # noqa: S608 - marks only
                part,
            )
            known.update(row[0] for row in rows)
        return known

    def _record(self, ids: list[str], end: int, lines: list[str]) -> None:
        if self._fhir_queue and lines:
            self._db.execute("INSERT INTO fhir_queue(lines) VALUES (?)", ("\n".join(lines),))
        self._db.executemany(
            "INSERT OR IGNORE INTO observations(id) VALUES (?)", [(i,) for i in ids]
        )
        self._db.execute(
            "INSERT INTO outputs(path, recorded) VALUES (?, ?) "
            "ON CONFLICT(path) DO UPDATE SET recorded = excluded.recorded",
            (str(self._output.resolve()), end),
        )

    def _recover_output(self) -> None:
        """Record the ids of lines written after the last recorded offset; cut a torn tail."""
        if not self._output.exists():
            return
        row = self._db.execute(
            "SELECT recorded FROM outputs WHERE path = ?", (str(self._output.resolve()),)
        ).fetchone()
        recorded = 0 if row is None else int(row[0])
        if recorded > self._output.stat().st_size:
            recorded = 0  # another file now: record all of it (ids already known are kept)
        with self._output.open("rb+") as out:
            out.seek(recorded)
            tail = out.read()
            complete = tail[: tail.rfind(b"\n") + 1]
            ids: list[str] = []
            recovered: list[str] = []
            for number, line in enumerate(complete.splitlines(), 1):
                try:
                    resource = json.loads(line)
                    ids.extend(line_keys(resource))
                    recovered.append(line.decode())
                except (ValueError, KeyError, TypeError):
                    logger.warning(
                        "output line %d after the last record is not a FHIR resource", number
                    )
            if len(complete) < len(tail):
                out.truncate(recorded + len(complete))
                out.flush()
                os.fsync(out.fileno())
                logger.warning("cut %d bytes of a torn last line", len(tail) - len(complete))
        if tail:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                # Their FHIR POST too (conditional creates: posting twice creates once).
                self._record(ids, recorded + len(complete), recovered)
            if ids:
                logger.info("recorded %d resources written before the last stop", len(ids))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class SqliteFhirQueue:
    """The FHIR queue in the SQLite state file; a connection per operation, so the poster's
    worker thread uses its own (SQLite objects are bound to the thread that made them)."""

    def __init__(self, state_db: Path) -> None:
        self._state_db = state_db
        db = self._db()
        try:
            db.execute(SQLITE_QUEUE_SCHEMA)  # the receiver may not have made it yet
        finally:
            db.close()

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._state_db, isolation_level=None, timeout=30)
        db.execute("PRAGMA synchronous=FULL")
        return db

    def claim(self) -> tuple[int, list[str]] | None:
        """The oldest waiting Bundle (one poster per SQLite file: no lease needed)."""
        db = self._db()
        try:
            row = db.execute(
                "SELECT id, lines FROM fhir_queue WHERE refused IS NULL ORDER BY id LIMIT 1"
            ).fetchone()
        finally:
            db.close()
        return None if row is None else (int(row[0]), str(row[1]).splitlines())

    def done(self, row_id: int, refused: str | None) -> None:
        """Delete it, or mark it refused."""
        db = self._db()
        try:
            if refused is None:
                db.execute("DELETE FROM fhir_queue WHERE id = ?", (row_id,))
            else:
                db.execute(
                    "UPDATE fhir_queue SET refused = ?, attempts = attempts + 1 WHERE id = ?",
                    (refused, row_id),
                )
        finally:
            db.close()

    def retry_refused(self) -> int:
        """Refused Bundles back in the queue."""
        db = self._db()
        try:
            return db.execute(
                "UPDATE fhir_queue SET refused = NULL WHERE refused IS NOT NULL"
            ).rowcount
        finally:
            db.close()

    def pending(self) -> int:
        """Bundles waiting."""
        db = self._db()
        try:
            row = db.execute("SELECT count(*) FROM fhir_queue WHERE refused IS NULL").fetchone()
        finally:
            db.close()
        return int(row[0])

    def close(self) -> None:
        """Nothing held between operations."""
