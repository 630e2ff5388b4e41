"""Opening the outbox file: settings, schema and its upgrades, and recovery from damage.

SQLite in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns; see
https://www.sqlite.org/pragma.html#pragma_synchronous). Tables, versions and why each setting:
docs/pipeline.md, "The store" and "Bytes on the SD card". A damaged file is moved aside and a
fresh store started when asked (``recover=True``, the hub), never otherwise (``doctor``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import cbor2

from gateway.outbox import chunks
from gateway.outbox.consent_gate import WITHHELD_SCHEMA
from gateway.outbox.errors import DamagedStoreError, NewerSchemaError, StoreBusyError
from gateway.outbox.streams import Streams
from gateway.outbox.transaction import Database, Transaction
from gateway.reading import Reading
from protocols.uplink import Priority

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 6
#: Schema 2 is schema 3 without ``chunks.held_boot``, schema 3 schema 4 without
#: ``chunks.keys``, schema 4 schema 5 without the ``withheld`` table, schema 5 schema 6
#: with one recipient (no ``batches.recipient``, no ``taken``, tombstones and the sequence
#: number of the one recipient): all added at open (:func:`_upgrade_v5`).
_SCHEMA_V2 = 2
_SCHEMA_V3 = 3
_SCHEMA_V4 = 4
_SCHEMA_V5 = 5
#: The recipient an older file's batches, tombstones and sequence number belong to when the
#: caller names none (the one ``[uplink]`` of older configurations).
DEFAULT_HOME = "region"

#: Signed batches, each one recipient's, numbered per recipient.
BATCHES_SCHEMA = """CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER,
    message BLOB NOT NULL,
    rejected_reason INTEGER,
    recipient TEXT NOT NULL DEFAULT '',
    UNIQUE (recipient, seq)
)"""
#: Tombstones per recipient: readings evicted before that recipient took them.
TOMBSTONES_SCHEMA = """CREATE TABLE IF NOT EXISTS tombstones (
    recipient TEXT NOT NULL,
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    priority INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    evicted_ms INTEGER NOT NULL,
    PRIMARY KEY (recipient, stream_id, priority)
) WITHOUT ROWID"""
#: Per-recipient delivery state of a waiting chunk: a row says the recipient has taken the
#: chunk (sealed into its batch, withheld, or evicted for it). A chunk every recipient has
#: taken is deleted, its rows with it; with one recipient no row is ever written.
TAKEN_SCHEMA = """CREATE TABLE IF NOT EXISTS taken (
    recipient TEXT NOT NULL,
    chunk_id INTEGER NOT NULL,
    PRIMARY KEY (recipient, chunk_id)
) WITHOUT ROWID"""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    device TEXT NOT NULL,
    mdc INTEGER NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (stream, device, mdc, unit)
)""",
    """CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    priority INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    payload BLOB NOT NULL,
    held_boot TEXT,
    keys BLOB
)""",
    BATCHES_SCHEMA,
    TOMBSTONES_SCHEMA,
    TAKEN_SCHEMA,
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    WITHHELD_SCHEMA,
    """CREATE TABLE IF NOT EXISTS recent_keys (
    id INTEGER PRIMARY KEY,
    stored_ms INTEGER NOT NULL,
    keys BLOB NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS source_keys (
    key TEXT PRIMARY KEY,
    stored_ms INTEGER NOT NULL
) WITHOUT ROWID""",
)

#: SQLite page size for a new store. A commit rewrites every page it touches into the WAL and
#: the kernel writes whole 4 KiB pages: with 4 KiB SQLite pages a WAL frame (page + 24 bytes)
#: straddles two of them, with 1 KiB pages a typical commit touches one (docs/pipeline.md).
PAGE_SIZE = 512
#: WAL frames between automatic checkpoints (SQLite's default is 1000). A checkpoint writes
#: every page changed since the last one into the database file and syncs it: the fewer
#: checkpoints, the fewer times the same pages (page 1, the tables' last leaves) are written.
#: 8000 frames of 512-byte pages keep the WAL file near 4 MiB.
WAL_AUTOCHECKPOINT_PAGES = 8000
#: SQLite errors that mean the file is not a usable database (moved aside on recover).
_DAMAGE_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
#: SQLite result codes of a database another connection holds (SQLITE_BUSY, SQLITE_LOCKED).
BUSY_CODES = frozenset({5, 6})


@dataclass(frozen=True)
class RecoveryReport:
    """What happened when a damaged store was found at start."""

    moved_to: Path
    reason: str


def open_store(
    path: Path,
    *,
    recover: bool,
    exclusive: bool,
    busy_timeout_s: float,
    home: str = DEFAULT_HOME,
) -> tuple[Database, RecoveryReport | None]:
    """The outbox at ``path``, created or upgraded; with ``recover``, a damaged file is moved
    aside (the report says where) and a fresh one opened.

    ``exclusive``: hold the database for this connection (``locking_mode=EXCLUSIVE``): SQLite
    then keeps the WAL index in this process's memory instead of a shared ``-shm`` file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        opened = _open(
            path, check=recover, exclusive=exclusive, timeout_s=busy_timeout_s, home=home
        )
        return opened, None
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        if not recover:
            raise DamagedStoreError(path, str(exc)) from exc
        reason = str(exc)
    except DamagedStoreError as exc:
        if not recover:
            raise
        reason = exc.reason
    report = _move_aside(path, reason)
    opened = _open(path, check=False, exclusive=exclusive, timeout_s=busy_timeout_s, home=home)
    return opened, report


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _DAMAGE_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _open(path: Path, *, check: bool, exclusive: bool, timeout_s: float, home: str) -> Database:
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=timeout_s
    )
    try:
        if exclusive:  # before the first access: no shared-memory WAL index at all
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        # Only takes effect on a new file (before WAL mode): see PAGE_SIZE.
        connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        # Debian builds SQLite with SECURE_DELETE: every freed page (a sealed chunk's) is
        # overwritten with zeros, a WAL frame each. FAST zeroes what a commit writes anyway
        # (docs/pipeline.md, "Bytes on the SD card"; on flash a zeroed page is no erasure).
        connection.execute("PRAGMA secure_delete=FAST")
        connection.execute("PRAGMA foreign_keys=ON")
        # Page cache 512 KiB, not SQLite's 2 MiB: it is heap the service keeps (its RSS
        # budget, narhub bench footprint); a page not in it is read from the OS page cache.
        connection.execute("PRAGMA cache_size=-512")
        db = Database(connection)
        if check:
            _check_integrity(db, path)
        _upgrade(db, path, home)
    except sqlite3.OperationalError as exc:
        connection.close()
        if exc.sqlite_errorcode in BUSY_CODES:
            raise StoreBusyError(path) from exc
        raise
    except BaseException:
        connection.close()
        raise
    return db


def _check_integrity(db: Database, path: Path) -> None:
    result = str(db.scalar("PRAGMA quick_check"))
    if result != "ok":
        raise DamagedStoreError(path, result)


def _upgrade(db: Database, path: Path, home: str) -> None:
    """Create the tables of a new file, or bring an older schema to :data:`SCHEMA_VERSION`,
    in one transaction (nothing is written when the file is current)."""
    version = int(db.scalar("PRAGMA user_version"))
    if version not in {0, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, SCHEMA_VERSION}:
        raise NewerSchemaError(path, version)
    keys_columns = {row[1] for row in db.execute("PRAGMA table_info(source_keys)")}
    if version == SCHEMA_VERSION and "stored_ms" in keys_columns:
        return
    with db.write() as tx:
        if (
            version == 0
            and tx.execute("SELECT 1 FROM sqlite_master WHERE name='readings'").fetchone()
        ):
            _migrate_v1(db, tx)
        if _has_table(tx, "batches"):  # an older file (a new one has no tables yet)
            _upgrade_v5(tx, home)
        for statement in SCHEMA:
            tx.execute(statement)
        columns = {row[1] for row in tx.execute("PRAGMA table_info(chunks)")}
        if "held_boot" not in columns:  # schema 2: held readings are additive
            tx.execute("ALTER TABLE chunks ADD COLUMN held_boot TEXT")
        if "keys" not in columns:  # schema 3: its chunks' keys are in source_keys
            tx.execute("ALTER TABLE chunks ADD COLUMN keys BLOB")
        if keys_columns and "stored_ms" not in keys_columns:
            # Schema 1 kept keys without a time: they are kept from the upgrade on.
            now_ms = time.time_ns() // 1_000_000
            tx.execute(
                f"ALTER TABLE source_keys ADD COLUMN stored_ms INTEGER NOT NULL DEFAULT {now_ms}"
            )
        tx.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _has_table(tx: Transaction, name: str) -> bool:
    return (
        tx.scalar("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)) is not None
    )


def _upgrade_v5(tx: Transaction, home: str) -> None:
    """Schema 5 (or older) to 6, within the upgrade's transaction: its one recipient becomes
    ``home``. Its batches are ``home``'s (``batches.recipient``), its tombstones too (the
    table rebuilt with ``recipient`` first in its key) and its sequence number becomes
    ``next_seq:{home}``; no chunk was taken by anyone yet (``taken`` is created empty)."""
    # Rebuilt: ``seq`` was unique on its own, it is unique per recipient now.
    _rebuild_v5(
        tx,
        "batches",
        BATCHES_SCHEMA,
        "INSERT INTO batches(id, seq, priority, created_ms, n, first_ms, message, "
        "rejected_reason) SELECT id, seq, priority, created_ms, n, first_ms, message, "
        "rejected_reason FROM batches_v5",
    )
    tx.execute("UPDATE batches SET recipient=? WHERE recipient=''", (home,))
    _rebuild_v5(
        tx,
        "tombstones",
        TOMBSTONES_SCHEMA,
        "INSERT INTO tombstones(recipient, stream_id, priority, n, first_ms, last_ms, "
        "evicted_ms) SELECT ?, stream_id, priority, n, first_ms, last_ms, evicted_ms "
        "FROM tombstones_v5",
        (home,),
    )
    tx.execute("UPDATE meta SET key=? WHERE key='next_seq'", (f"next_seq:{home}",))


def _rebuild_v5(
    tx: Transaction, table: str, schema: str, copy: str, params: tuple[str, ...] = ()
) -> None:
    """``table`` of schema 5, when it has no ``recipient`` column yet, rebuilt as ``schema``
    (SQLite cannot change a table's key in place): renamed to ``{table}_v5``, created anew,
    its rows copied by ``copy`` (an INSERT ... SELECT from ``{table}_v5`` with ``params``),
    the old one dropped. A table that does not exist yet is left alone."""
    columns = {row[1] for row in tx.execute(f"PRAGMA table_info({table})")}
    if not columns or "recipient" in columns:
        return
    tx.execute(f"ALTER TABLE {table} RENAME TO {table}_v5")
    tx.execute(schema)
    tx.execute(copy, params)
    tx.execute(f"DROP TABLE {table}_v5")


def _migrate_v1(db: Database, tx: Transaction) -> None:
    """Schema 1 (one row per reading): its unsent readings become chunks, its batches stay,
    within the upgrade's transaction (nothing acknowledged is lost across it)."""
    rows = tx.execute("SELECT priority, payload FROM readings WHERE batch_id IS NULL").fetchall()
    old = [(Priority(p), cbor2.loads(payload)) for p, payload in rows]
    tx.execute("ALTER TABLE readings RENAME TO readings_v1")
    tx.execute("ALTER TABLE batches RENAME TO batches_v1")
    for statement in SCHEMA:
        tx.execute(statement)
    tx.execute(
        "INSERT INTO batches(seq, priority, created_ms, n, message) "
        "SELECT seq, priority, created_ms, 0, message FROM batches_v1"
    )
    readings = [
        Reading(
            stream=stream,
            device=device,
            mdc_code=mdc,
            unit=unit,
            value=None if value is None else Decimal(value),
            special=special,
            hub_wall_ms=t_ms,
            hub_mono_ns=0,
            priority=priority,
            flags=frozenset(flags),
        )
        for priority, (stream, device, mdc, unit, t_ms, value, special, flags) in old
    ]
    chunks.write(tx, readings, Streams(db), held_boot=None)
    tx.execute("DROP TABLE readings_v1")
    tx.execute("DROP TABLE batches_v1")


def _move_aside(path: Path, reason: str) -> RecoveryReport:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.replace(Path(f"{moved}{suffix}"))
    logger.error(
        "outbox damaged (%s): moved aside to %s, starting a fresh store", reason, moved.name
    )
    return RecoveryReport(moved, reason)
