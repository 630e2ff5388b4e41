"""Findings, their history and acknowledgements in SQLite (the region's state database).

Two unique indexes carry the rules: one open finding per key (a partial index on the open
ones), and one finding per key and evidence ever (never raised twice from the same data).
:meth:`SqliteFindingStore.apply` is one ``BEGIN IMMEDIATE`` transaction; an insert the
second index refuses (``ON CONFLICT DO NOTHING``) is simply not opened. The rules are
:class:`region.findings.store_sql.SqlFindingStore`'s, shared with PostgreSQL.

When the region posts to a FHIR server (:mod:`region.fhir_post`: the state database has a
``fhir_queue``), the same transaction queues the changed findings' resources
(:mod:`region.findings.fhir`) as one Bundle there, which the receiver's poster posts in
order: a change is never committed without its FHIR update, nor the other way round. That
holds for every process that changes findings in the file (``narhub region ingest``, the
worklist's acknowledgements, ``narhub region findings``), whichever started first.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from region.findings.sqlite_facts import connect
from region.findings.store_sql import SqlFindingStore, findings_schema
from region.state_sqlite import SQLITE_QUEUE_SCHEMA

SCHEMA = (
    *findings_schema("INTEGER PRIMARY KEY"),
    "CREATE TABLE IF NOT EXISTS finding_events (finding_id BIGINT NOT NULL, at_ms BIGINT NOT "
    "NULL, event TEXT NOT NULL, by_user TEXT, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS finding_events_by_finding ON finding_events (finding_id, at_ms)",
)
_CHUNK = 500


class SqliteFindingStore(SqlFindingStore):
    """:class:`region.findings.store.FindingStore` in SQLite."""

    _chunk = _CHUNK
    _event_order = "rowid"

    def __init__(self, path: Path, *, fhir_queue: bool = False) -> None:
        """``fhir_queue``: make the FHIR queue (changes are queued whenever it exists)."""
        self._db = connect(path)
        for statement in (*SCHEMA, SQLITE_QUEUE_SCHEMA) if fhir_queue else SCHEMA:
            self._db.execute(statement)

    def _execute(self, sql: str, args: Sequence[object] = ()) -> tuple[list[Sequence[Any]], int]:
        cursor = self._db.execute(sql, args)
        rows: list[Sequence[Any]] = cursor.fetchall()
        return rows, cursor.rowcount

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db

    def _in(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def _has_queue(self) -> bool:
        queue = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fhir_queue'"
        ).fetchone()
        return queue is not None

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
