"""Opening and upgrading the outbox file (gateway/outbox/schema.py)."""

from __future__ import annotations

import hashlib
import sqlite3
from decimal import Decimal
from pathlib import Path

import cbor2

from gateway.outbox import SCHEMA_VERSION, Outbox
from gateway.reading import Reading

T0 = 1_763_800_000_000

#: The tables of a schema-1 file (one row per reading; keys without a time).
_SCHEMA_1 = """
CREATE TABLE readings (id INTEGER PRIMARY KEY, priority INTEGER NOT NULL,
    payload BLOB NOT NULL, batch_id INTEGER REFERENCES batches(id));
CREATE TABLE batches (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
    priority INTEGER NOT NULL, created_ms INTEGER NOT NULL, message BLOB NOT NULL,
    rejected_reason INTEGER);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE source_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
"""


def _keyed(i: int, key: str) -> Reading:
    return Reading("dev/1", "dev", 150364, "Cel", Decimal(i), None, T0 + i, i, source_key=key)


def test_a_schema_1_file_takes_new_keyed_readings_and_keeps_its_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_SCHEMA_1)
    payload = cbor2.dumps(["dev/1", "dev", 150364, "Cel", T0, "37.20", None, []])
    db.execute("INSERT INTO readings(priority, payload) VALUES (1, ?)", (payload,))
    db.execute("INSERT INTO source_keys VALUES ('board/1/1')")
    db.close()
    store = Outbox(path, wall_ms=lambda: T0)
    assert store.unbatched_count() == 1
    assert store.add([_keyed(2, "board/1/2")]) == 1  # its keys table has a time now
    assert store.add([_keyed(1, "board/1/1")]) == 0  # a key of schema 1: still known
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not {"readings_v1", "batches_v1", "readings"} & tables
    db.close()


def test_opening_a_current_file_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    Outbox(path).close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    store = Outbox(path)
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # no frame: no sync at start
    store.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_schema_4_file_gets_the_withheld_table_and_keeps_its_readings(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    store = Outbox(path)
    store.add([_keyed(1, "board/1/1")])
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE withheld")
    db.execute("PRAGMA user_version=4")
    db.close()
    store = Outbox(path)
    assert store.unbatched_count() == 1
    assert store.withheld() == {}
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    db.close()
