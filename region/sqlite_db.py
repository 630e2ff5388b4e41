"""How the region's SQLite files are opened: one way for every store kept in them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

#: sqlite3.connect's own default wait for a locked database (seconds).
SQLITE_TIMEOUT_S = 5.0


def open_sqlite(
    path: Path,
    schema: Iterable[str] = (),
    *,
    timeout_s: float = SQLITE_TIMEOUT_S,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A connection in autocommit mode (``isolation_level=None``: each store begins its own
    transactions), the file in WAL mode (SQLite, "Write-Ahead Logging") with
    ``synchronous=FULL`` (SQLite, "PRAGMA synchronous": a committed transaction survives a
    power loss), then the ``schema`` statements run in order."""
    db = sqlite3.connect(
        path, isolation_level=None, timeout=timeout_s, check_same_thread=check_same_thread
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for statement in schema:
        db.execute(statement)
    return db


def insert_new(db: sqlite3.Connection, insert: str, rows: Sequence[Sequence[object]]) -> int:
    """Run ``insert`` (an INSERT that skips a row already stored) for every row in one
    ``BEGIN IMMEDIATE`` transaction; how many rows it added (the connection's
    ``total_changes`` before and after: SQLite C API, "sqlite3_total_changes()")."""
    if not rows:
        return 0
    with db:
        db.execute("BEGIN IMMEDIATE")
        before = db.total_changes
        db.executemany(insert, rows)
        return db.total_changes - before
