"""The enrolment store in SQLite: the embedded default, in the receiver's state database.

WAL and ``synchronous=FULL`` (a held reading is on disk when :meth:`hold` returns); each
write is one ``BEGIN IMMEDIATE`` transaction, so an overlap check and its insert cannot
interleave with another writer's (SQLite serialises writers). The SQL is plain enough for
PostgreSQL (``BIGINT`` times, ``ON CONFLICT DO NOTHING``): enrolling, ending and reading are
:class:`region.enrolment_sql.SqlEnrolmentStore`'s, shared with :mod:`region.enrolment_pg`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from protocols.fhir.identity import PatientRef
from region.enrolment import Enrolment, EnrolmentRequest
from region.enrolment_sql import SqlEnrolmentStore, held_rows
from region.enrolment_store import HeldReading
from region.sqlite_db import insert_new, open_sqlite

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS enrolments ("
    "id INTEGER PRIMARY KEY, hub TEXT NOT NULL, device TEXT, "
    "patient_system TEXT NOT NULL, patient_value TEXT NOT NULL, "
    "start_ms BIGINT NOT NULL, end_ms BIGINT, filed_until_ms BIGINT)",
    "CREATE INDEX IF NOT EXISTS enrolments_by_hub ON enrolments (hub)",
    "CREATE TABLE IF NOT EXISTS held_readings ("
    "key TEXT PRIMARY KEY, hub TEXT NOT NULL, device TEXT NOT NULL, mdc BIGINT NOT NULL, "
    "t_ms BIGINT NOT NULL, held_ms BIGINT NOT NULL, reading TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS held_by_hub ON held_readings (hub, t_ms)",
)


class SqliteEnrolmentStore(SqlEnrolmentStore):
    """:class:`region.enrolment_store.EnrolmentStore` in an SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path, SCHEMA, timeout_s=30)

    def _run(self, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Run one statement: its rows (none for a statement without)."""
        rows: list[tuple[Any, ...]] = self._db.execute(query, params).fetchall()
        return rows

    @contextlib.contextmanager
    def _writing(self, hub: str) -> Iterator[None]:
        """``BEGIN IMMEDIATE``: SQLite serialises writers."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            yield

    def note_filed(self, filed: Mapping[int, int]) -> None:
        """Raise each enrolment's ``filed_until_ms`` to the time given (never lower it)."""
        if not filed:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE enrolments SET filed_until_ms = ? "
                "WHERE id = ? AND (filed_until_ms IS NULL OR filed_until_ms < ?)",
                [(t, enrolment_id, t) for enrolment_id, t in filed.items()],
            )

    def hold(self, held: Sequence[HeldReading]) -> int:
        """Keep the readings (once per key); on disk when this returns."""
        return insert_new(
            self._db,
            "INSERT INTO held_readings (key, hub, device, mdc, t_ms, held_ms, reading) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            held_rows(held),
        )

    def release(self, keys: Sequence[str]) -> None:
        """Forget held readings that were filed."""
        if not keys:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM held_readings WHERE key = ?", [(k,) for k in keys])

    def joint(self, hub: str, attributed_by: Sequence[Enrolment], **writes: object) -> None:
        """None: the state's Observations are in an NDJSON file, not this database; the filer
        writes through :meth:`hold`, :meth:`note_filed` and :meth:`release`."""
        return

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def enrol_hub(path: Path, hub: str, patient: PatientRef, *, start_ms: int = 0) -> Enrolment:
    """Lend ``hub`` to ``patient`` from ``start_ms`` (default: the epoch), open-ended, in the
    store at ``path``: for a rig or a test, which has no region CA to check the hub against
    (``narhub region enrol`` does)."""
    store = SqliteEnrolmentStore(path)
    try:
        return store.enrol(EnrolmentRequest(hub, patient, start_ms))
    finally:
        store.close()
