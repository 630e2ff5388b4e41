"""The one transaction seam (gateway/outbox/transaction.py) on a real outbox file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox.schema import open_store
from gateway.outbox.transaction import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database, recovered = open_store(
        tmp_path / "o.sqlite3", recover=False, exclusive=False, busy_timeout_s=0.05
    )
    assert recovered is None
    yield database
    database.close()


def _other(tmp_path: Path) -> sqlite3.Connection:
    """Another process's connection (no busy wait: a held lock fails at once)."""
    return sqlite3.connect(tmp_path / "o.sqlite3", isolation_level=None, timeout=0)


def _meta(connection: sqlite3.Connection | Database) -> list[tuple[str, str]]:
    return list(connection.execute("SELECT key, value FROM meta ORDER BY key").fetchall())


def test_a_write_is_durable_when_it_returns_and_then_runs_its_commit_hooks(
    db: Database, tmp_path: Path
) -> None:
    events: list[str] = []
    with db.write() as tx:
        tx.execute("INSERT INTO meta VALUES ('a', '1')")
        tx.on_commit(lambda: events.append("committed"))
        tx.on_rollback(lambda: events.append("rolled back"))
        assert events == []  # not before the commit
    assert events == ["committed"]
    other = _other(tmp_path)
    assert _meta(other) == [("a", "1")]  # committed: visible to another connection
    other.close()


def test_a_failing_body_rolls_back_everything_and_runs_the_rollback_hooks(db: Database) -> None:
    events: list[str] = []
    with pytest.raises(ZeroDivisionError), db.write() as tx:
        tx.execute("INSERT INTO meta VALUES ('a', '1')")
        tx.on_commit(lambda: events.append("committed"))
        tx.on_rollback(lambda: events.append("rolled back"))
        _ = 1 / 0
    assert events == ["rolled back"]
    assert _meta(db) == []
    with db.write() as tx:  # the connection is usable again
        tx.execute("INSERT INTO meta VALUES ('b', '2')")
    assert _meta(db) == [("b", "2")]


def test_a_failing_commit_rolls_back_and_leaves_no_transaction_open(db: Database) -> None:
    """A deferred foreign key is checked at COMMIT: the commit itself fails."""
    events: list[str] = []
    with pytest.raises(sqlite3.IntegrityError), db.write() as tx:
        tx.execute("PRAGMA defer_foreign_keys=ON")
        tx.execute("INSERT INTO tombstones VALUES ('region', 99, 3, 1, 0, 0, 0)")  # no stream 99
        tx.execute("INSERT INTO meta VALUES ('a', '1')")
        tx.on_commit(lambda: events.append("committed"))
        tx.on_rollback(lambda: events.append("rolled back"))
    assert events == ["rolled back"]
    assert _meta(db) == []
    with db.write() as tx:
        tx.execute("INSERT INTO meta VALUES ('b', '2')")
    assert _meta(db) == [("b", "2")]


def test_writes_do_not_nest(db: Database) -> None:
    with db.write(), pytest.raises(RuntimeError, match="do not nest"), db.write():
        pass


def test_a_write_holds_the_write_lock_and_a_snapshot_does_not(db: Database, tmp_path: Path) -> None:
    other = _other(tmp_path)
    with db.write() as tx:
        tx.execute("INSERT INTO meta VALUES ('a', '1')")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    with db.snapshot():
        assert _meta(db) == [("a", "1")]
        other.execute("BEGIN IMMEDIATE")  # a reader blocks no writer
        other.execute("INSERT INTO meta VALUES ('b', '2')")
        other.execute("COMMIT")
        assert _meta(db) == [("a", "1")]  # one state of the file throughout
    assert _meta(db) == [("a", "1"), ("b", "2")]
    other.close()
