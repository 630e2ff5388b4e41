"""The durable outbox: readings and signed batches in SQLite, safe across power cuts.

SQLite in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns; see
https://www.sqlite.org/pragma.html#pragma_synchronous). A reading is acknowledged to its
source only after the transaction that stored it has committed; a batch is deleted only
after the broker's PUBACK carried a reason code below 0x80. Design, schema, quota and the
crash/power-cut proof: docs/pipeline.md.

- **Chunks.** One commit stores the readings of each priority as one row (a *chunk*, at most
  :data:`CHUNK_MAX_READINGS` readings, columnar CBOR) rather than one row per reading: one
  B-tree insert per chunk, few pages per commit. Streams (name, device, code, unit) are
  interned in ``streams``.
- **Batches.** :meth:`Outbox.seal` takes every waiting chunk, most urgent priority first, up to
  ``max_readings``, and turns them into one signed wire-format batch in one transaction (the
  chunks are deleted: the signed message is now the durable copy). When a batch is *due* is
  the batching policy's business (:class:`BatchingPolicy`, tracked in memory here).
- **Quota.** Beyond the quota the lowest priority, oldest chunks are evicted, each eviction
  recorded as a tombstone (per stream: count, time range) that the next batch carries to the
  region as a telemetry reading (:data:`MDC_NARHUB_EVICTED`).
- **Idempotency.** A reading with a ``source_key`` seen before is skipped; keys are pruned
  after ``dedup_retention_s``. A waiting chunk keeps its readings' keys in its own row
  (``chunks.keys``, and in memory); they move to ``source_keys`` when the chunk is sealed or
  evicted. So a commit of readings writes the chunk's page only, not a page of the
  ``source_keys`` B-tree too (where a key lands is random): one 4 KiB page per commit
  fewer on the SD card (docs/pipeline.md, "Bytes on the SD card").
- **Held readings.** With a clock source (:mod:`gateway.clock`), readings committed before
  the hub's wall clock is trusted are stored as *held* chunks (``held_boot`` = the kernel's
  boot id, with each reading's monotonic time): never sealed, never evicted, until the clock
  is trusted and their wall time is back-filled (docs/pipeline.md, "The hub's clock").
- **Damage.** :meth:`Outbox.__init__` with ``recover=True`` checks integrity; a damaged file
  is moved aside, a fresh store started and the fact reported (and forwarded).

All methods are blocking; the async hub calls them through one worker thread
(:class:`AsyncOutbox`), which also groups concurrent adds into one commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import cbor2

from gateway.clock import ClockSample, ClockSource
from gateway.reading import Reading
from gateway.validate import FLAG_HUB_CLOCK, FLAG_HUB_TIME_BACKFILLED, FLAG_HUB_TIME_ESTIMATED
from protocols.uplink import BatchHeader, BatchSigner, Priority, WireReading, encode_body

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 4
#: Schema 2 is schema 3 without ``chunks.held_boot``, schema 3 schema 4 without
#: ``chunks.keys`` (both added at open).
_SCHEMA_V2 = 2
_SCHEMA_V3 = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    device TEXT NOT NULL,
    mdc INTEGER NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (stream, device, mdc, unit)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    priority INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    payload BLOB NOT NULL,
    held_boot TEXT,
    keys BLOB
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER,
    message BLOB NOT NULL,
    rejected_reason INTEGER
);
CREATE TABLE IF NOT EXISTS tombstones (
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    priority INTEGER NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    evicted_ms INTEGER NOT NULL,
    PRIMARY KEY (stream_id, priority)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recent_keys (
    id INTEGER PRIMARY KEY,
    stored_ms INTEGER NOT NULL,
    keys BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS source_keys (
    key TEXT PRIMARY KEY,
    stored_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""

#: SQLite page size for a new store. A commit rewrites every page it touches into the WAL and
#: the kernel writes whole 4 KiB pages: with 4 KiB SQLite pages a WAL frame (page + 24 bytes)
#: straddles two of them, with 1 KiB pages a typical commit touches one (docs/pipeline.md).
PAGE_SIZE = 512
#: WAL frames between automatic checkpoints (SQLite's default is 1000). A checkpoint writes
#: every page changed since the last one into the database file and syncs it: the fewer
#: checkpoints, the fewer times the same pages (page 1, the tables' last leaves) are written.
#: 8000 frames of 512-byte pages keep the WAL file near 4 MiB.
WAL_AUTOCHECKPOINT_PAGES = 8000
#: Keys of recently sealed chunks held in memory (and ``recent_keys``) at most before they
#: are folded into ``source_keys`` ahead of the prune interval.
MAX_RECENT_KEYS = 20_000
#: Deferred acknowledgements (:meth:`Outbox.acknowledge`) waiting at most; then they commit.
MAX_DEFERRED_ACKS = 256
#: Readings per chunk row, at most (a commit of more writes several chunks).
CHUNK_MAX_READINGS = 4096
#: narhub private telemetry codes (docs/protocols/uplink.md): 2 x 65536 + 0xF100 + n.
NARHUB_TELEMETRY_BASE = 2 * 65536 + 0xF100
#: A tombstone: value = readings evicted from one stream (``{readings}``), see docs/pipeline.md.
MDC_NARHUB_EVICTED = NARHUB_TELEMETRY_BASE + 5
#: The hub found its store damaged at start, moved it aside and started a fresh one (value 1).
MDC_NARHUB_STORE_RECOVERED = NARHUB_TELEMETRY_BASE + 6
#: The device name of the hub's own readings.
HUB_DEVICE = "hub"
FLAG_EVICTED = "evicted"
FLAG_STORE_RECOVERED = "store-damaged-moved-aside"

DEFAULT_COMMIT_WINDOW_S = 1.0
DEFAULT_MAX_PENDING_READINGS = 100_000
DEFAULT_QUOTA_BYTES = 1024 * 2**20
DEFAULT_MIN_FREE_BYTES = 64 * 2**20
DEFAULT_DEDUP_RETENTION_S = 30 * 86_400.0
#: How often (wall clock) expired idempotency keys are pruned.
PRUNE_INTERVAL_S = 6 * 3600.0
#: SQLite errors that mean the file is not a usable database (moved aside on recover).
_DAMAGE_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
#: SQLite result codes of a database another connection holds (SQLITE_BUSY, SQLITE_LOCKED).
BUSY_CODES = frozenset({5, 6})
_KEY_QUERY_CHUNK = 500
#: While readings are held for the clock, how often (monotonic) the uplink's seal looks again.
HELD_RECHECK_S = 10.0
#: A change of the wall clock's offset to the monotonic clock beyond this is a step (NTP
#: slewing moves both clocks alike; systemd-timesyncd steps from 0.4 s).
CLOCK_STEP_TOLERANCE_NS = 100_000_000


class StoreError(Exception):
    """Base of the outbox's own errors."""


class NewerSchemaError(StoreError):
    """The database was written by a newer narhub (never moved aside: it is not damaged)."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version
        super().__init__(f"{path}: schema version {version} is newer than this narhub's")


class DamagedStoreError(StoreError):
    """The database failed its integrity check (``recover=False``: nothing was moved)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: damaged ({reason})")


class StoreBusyError(StoreError):
    """Another process holds the store (the running hub opens it exclusively)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path}: in use by another process (is narhub running?)")


@dataclass(frozen=True)
class RecoveryReport:
    """What happened when a damaged store was found at start."""

    moved_to: Path
    reason: str


@dataclass(frozen=True)
class BatchingPolicy:
    """How long readings may wait for their batch, per priority (docs/pipeline.md)."""

    alert_s: float = 0.0
    clinical_s: float = 10.0
    continuous_s: float = 300.0
    environmental_s: float = 300.0
    telemetry_s: float = 300.0
    max_batch_readings: int = 10_000

    def delay_s(self, priority: Priority, *, continuous: bool) -> float:
        """The longest wait for a reading of this priority."""
        if priority is Priority.ALERT:
            return self.alert_s
        if priority is Priority.CLINICAL:
            return self.continuous_s if continuous else self.clinical_s
        if priority is Priority.ENVIRONMENTAL:
            return self.environmental_s
        return self.telemetry_s


@dataclass(frozen=True)
class PendingBatch:
    """A signed batch waiting for its PUBACK."""

    batch_id: int
    seq: int
    priority: Priority
    message: bytes


@dataclass
class StoreStats:
    """Counters since open (reported by ``counts``; docs/pipeline.md)."""

    commits: int = 0
    readings_added: int = 0
    duplicates: int = 0
    evicted: int = 0
    over_quota: bool = False


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _DAMAGE_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _retimed(
    chunk_id: int, columns: list[Any], times: list[int], flag: str
) -> tuple[int, bytes, int]:
    """A held chunk as a waiting one: (id, payload with the new times and flag, first ms)."""
    sids, _deltas, values, specials, flags = columns[:5]
    deltas = []
    last = 0
    for t in times:
        deltas.append(t - last)
        last = t
    marked = [_retimed_flags(f, flag) for f in flags]
    return chunk_id, cbor2.dumps([sids, deltas, values, specials, marked]), times[0]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _unpack(payload: bytes) -> tuple[list[int], list[int], list[Any], list[Any], list[Any]]:
    # A held chunk carries two more columns (monotonic ns, effective - hub wall ms).
    columns = cbor2.loads(payload)
    sids, _deltas, values, specials, flags = columns[:5]
    return sids, _chunk_times(columns), values, specials, flags


def _retimed_flags(flags: str | None, add: str) -> str:
    """A chunk's flags text for a reading whose hub time was back-filled or estimated."""
    names = set(flags.split("\x1f")) if flags else set()
    names.discard(FLAG_HUB_CLOCK)  # its time no longer comes from the unsynced clock
    names.add(add)
    return "\x1f".join(sorted(names))


def backfilled_ms(trust: ClockSample, mono_ns: int) -> int:
    """Wall time (epoch ms) of a moment of the trusted sample's boot, from its monotonic time:
    ``wall_at_trust - (mono_at_trust - mono)``, floored to the ms."""
    return (trust.wall_ns - (trust.mono_ns - mono_ns)) // 1_000_000


def _hub_relative_offset(r: Reading) -> int | None:
    """For a held reading: its time minus the hub's wall stamp, which the back-fill keeps
    (the time is on the hub's clock: reception, a board synced by the hub, a BLE stamp
    corrected by an offset observed against the hub's clock); ``None`` when the time comes
    from a device's own clock the hub never observed (a stamp taken as it is,
    gateway.pipeline.device_wall_ms): the back-fill leaves it alone."""
    if r.device_time is not None and r.clock_offset_ms is None and r.source_wall_ms is not None:
        return None
    return r.effective_ms() - r.hub_wall_ms


def _chunk_times(columns: list[Any]) -> list[int]:
    """The times (epoch ms) a chunk's delta column holds."""
    times = []
    t = 0
    for d in columns[1]:
        t += d
        times.append(t)
    return times


def _backfilled(readings: Sequence[Reading], trust: ClockSample) -> Sequence[Reading]:
    """Readings received by this process before the clock was trusted, with back-filled
    times (the same boot: a process lives in one); the others unchanged."""
    cutoff = trust.mono_ns
    if all(r.hub_mono_ns >= cutoff for r in readings):
        return readings
    out = []
    for r in readings:
        if r.hub_mono_ns >= cutoff:
            out.append(r)
            continue
        wall_ms = backfilled_ms(trust, r.hub_mono_ns)
        shift = wall_ms - r.hub_wall_ms
        source = r.source_wall_ms
        if _hub_relative_offset(r) is None:
            shift = 0  # a device's own clock: not moved with the hub's
        out.append(
            r._replace(
                hub_wall_ms=wall_ms,
                source_wall_ms=None if source is None else source + shift,
                flags=(r.flags - {FLAG_HUB_CLOCK}) | {FLAG_HUB_TIME_BACKFILLED},
            )
        )
    return out


class Outbox:
    """Readings in, signed batches out; every change is one durable transaction."""

    def __init__(
        self,
        path: Path,
        *,
        recover: bool = False,
        batching: BatchingPolicy | None = None,
        quota_bytes: int = DEFAULT_QUOTA_BYTES,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        dedup_retention_s: float = DEFAULT_DEDUP_RETENTION_S,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
        clock_source: ClockSource | None = None,
        exclusive: bool = False,
        busy_timeout_s: float = 5.0,
    ) -> None:
        """``clock_source``: hold readings until it says the wall clock is trusted, then
        back-fill their times (None: every wall time is taken as it is, nothing is held).

        ``exclusive``: hold the database for this connection (``locking_mode=EXCLUSIVE``, the
        running hub): SQLite then keeps the WAL index in this process's memory instead of a
        shared ``-shm`` file, which the kernel would write back to the SD card every ~30 s
        while commits touch it (docs/pipeline.md, "Bytes on the SD card"). Anyone else
        opening it meanwhile gets :class:`StoreBusyError` after ``busy_timeout_s``.
        """
        self.exclusive = exclusive
        self.busy_timeout_s = busy_timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.batching = batching or BatchingPolicy()
        self.quota_bytes = quota_bytes
        self.min_free_bytes = min_free_bytes
        self.dedup_retention_s = dedup_retention_s
        self._clock = clock
        self._wall_ms = wall_ms
        self.stats = StoreStats()
        #: Monotonic time at which the waiting readings must leave (None: nothing waits).
        self._due_at: float | None = None
        self._next_prune_ms = 0
        self._db, recovered = self._open_or_recover(recover=recover)
        #: Set when a damaged store was moved aside at open (``recover=True``).
        self.recovered = recovered
        #: A new boot id each time the store is opened: (hub, boot id, seq) names a batch.
        self.boot_id = uuid.uuid4().hex[:12]
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._streams: dict[tuple[str, str, int, str], int] = {}
        self._stream_rows: dict[int, tuple[str, str, int, str]] = {}
        for sid, stream, device, mdc, unit in self._db.execute(
            "SELECT id, stream, device, mdc, unit FROM streams"
        ):
            self._streams[stream, device, mdc, unit] = sid
            self._stream_rows[sid] = (stream, device, mdc, unit)
        #: Source keys of waiting chunks and of ``recent_keys`` (their rows hold them too).
        self._recent_keys: set[str] = set()
        #: Keys folded into ``source_keys`` by the transaction under way.
        self._folded_keys: list[str] = []
        #: Batches acknowledged by the broker, deleted with the next transaction.
        self._acked: dict[int, None] = {}
        for (keys,) in self._db.execute(
            "SELECT keys FROM chunks WHERE keys IS NOT NULL UNION ALL SELECT keys FROM recent_keys"
        ):
            self._recent_keys.update(cbor2.loads(keys))
        if self._waiting():
            self._due_at = self._clock()  # they waited across a restart: due now
        self._clock_source = clock_source
        #: The first sample that said "trusted" (None: not yet, or no clock source).
        self.clock_trusted: ClockSample | None = None
        #: The latest sample taken (None: no clock source).
        self.clock_sample: ClockSample | None = None
        self._untrusted_logged = False
        (held,) = self._db.execute(
            "SELECT coalesce(sum(n), 0) FROM chunks WHERE held_boot IS NOT NULL"
        ).fetchone()
        self._held_readings = int(held)
        if clock_source is not None:
            self._trusted()  # before any reading this process receives
            if self._held_readings:
                self._due_at = self._clock()  # seal looks at once: back-fill if trusted
        if recovered is not None:
            self.add([self._recovery_reading()])

    # -- opening -------------------------------------------------------------------------

    def _open_or_recover(
        self, *, recover: bool
    ) -> tuple[sqlite3.Connection, RecoveryReport | None]:
        try:
            return self._open(check=recover), None
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            if not recover:
                raise DamagedStoreError(self.path, str(exc)) from exc
            reason = str(exc)
        except DamagedStoreError as exc:
            if not recover:
                raise
            reason = exc.reason
        report = self._move_aside(reason)
        return self._open(check=False), report

    def _open(self, *, check: bool) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_s
        )
        try:
            if self.exclusive:  # before the first access: no shared-memory WAL index at all
                db.execute("PRAGMA locking_mode=EXCLUSIVE")
            # Only takes effect on a new file (before WAL mode): see PAGE_SIZE.
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            # Debian builds SQLite with SECURE_DELETE: every freed page (a sealed chunk's) is
            # overwritten with zeros, a WAL frame each. FAST zeroes what a commit writes anyway
            # (docs/pipeline.md, "Bytes on the SD card"; on flash a zeroed page is no erasure).
            db.execute("PRAGMA secure_delete=FAST")
            db.execute("PRAGMA foreign_keys=ON")
            # Page cache 512 KiB, not SQLite's 2 MiB: it is heap the service keeps (its RSS
            # budget, narhub bench footprint); a page not in it is read from the OS page cache.
            db.execute("PRAGMA cache_size=-512")
            if check:
                self._check_integrity(db)
            version = self._schema_version(db)
            if (
                version == 0
                and db.execute("SELECT 1 FROM sqlite_master WHERE name='readings'").fetchone()
            ):
                # Schema 1 (one row per reading): its readings are still to send. Keep
                # them in chunks so nothing acknowledged is lost across the upgrade.
                self._migrate_v1(db)
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(chunks)")}
            if "held_boot" not in columns:  # schema 2: held readings are additive
                db.execute("ALTER TABLE chunks ADD COLUMN held_boot TEXT")
            if "keys" not in columns:  # schema 3: its chunks' keys are in source_keys
                db.execute("ALTER TABLE chunks ADD COLUMN keys BLOB")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            db.close()
            if exc.sqlite_errorcode in BUSY_CODES:
                raise StoreBusyError(self.path) from exc
            raise
        except BaseException:
            db.close()
            raise
        return db

    def _schema_version(self, db: sqlite3.Connection) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version not in {0, _SCHEMA_V2, _SCHEMA_V3, SCHEMA_VERSION}:
            raise NewerSchemaError(self.path, version)
        return version

    def _check_integrity(self, db: sqlite3.Connection) -> None:
        result = str(db.execute("PRAGMA quick_check").fetchone()[0])
        if result != "ok":
            raise DamagedStoreError(self.path, result)

    def _migrate_v1(self, db: sqlite3.Connection) -> None:
        rows = db.execute(
            "SELECT priority, payload FROM readings WHERE batch_id IS NULL"
        ).fetchall()
        old = [(Priority(p), cbor2.loads(payload)) for p, payload in rows]
        db.execute("ALTER TABLE readings RENAME TO readings_v1")
        db.execute("ALTER TABLE batches RENAME TO batches_v1")
        db.executescript(SCHEMA)
        batches = db.execute("SELECT seq, priority, created_ms, message FROM batches_v1").fetchall()
        db.executemany(
            "INSERT INTO batches(seq, priority, created_ms, n, message) VALUES (?, ?, ?, 0, ?)",
            batches,
        )
        self._db = db
        self._streams = {}
        self._stream_rows = {}
        self._page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
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
        with db:
            db.execute("BEGIN IMMEDIATE")
            self._insert(readings, self._wall_ms())
            db.execute("DROP TABLE readings_v1")
            db.execute("DROP TABLE batches_v1")

    def _move_aside(self, reason: str) -> RecoveryReport:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        moved = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{moved}{suffix}"))
        logger.error(
            "outbox damaged (%s): moved aside to %s, starting a fresh store", reason, moved.name
        )
        return RecoveryReport(moved, reason)

    def _recovery_reading(self) -> Reading:
        now = self._wall_ms()
        return Reading(
            stream=f"{HUB_DEVICE}/store-recovered",
            device=HUB_DEVICE,
            mdc_code=MDC_NARHUB_STORE_RECOVERED,
            unit="1",
            value=Decimal(1),
            special=None,
            hub_wall_ms=now,
            hub_mono_ns=time.monotonic_ns(),
            priority=Priority.TELEMETRY,
            flags=frozenset({FLAG_STORE_RECOVERED}),
        )

    def close(self) -> None:
        """Delete the batches acknowledged meanwhile and close the database (a checkpoint
        leaves the WAL small)."""
        try:
            with contextlib.suppress(sqlite3.Error):  # not deleted: sent again, dropped there
                self.flush_acks()
        finally:
            self._db.close()

    # -- adding ----------------------------------------------------------------------------

    def add(self, readings: Sequence[Reading]) -> int:
        """Store readings in one transaction; when this returns they are on disk.

        A reading whose ``source_key`` was stored before is skipped (sources resend what they
        could not see acknowledged). Returns how many readings were new.
        """
        return self.add_groups([readings])[0]

    def add_groups(
        self, groups: Sequence[Sequence[Reading]], *, waited_s: float = 0.0
    ) -> list[int]:
        """Store several callers' readings in one transaction (one sync): new count per group.

        ``waited_s``: how long the oldest of them waited for this commit (a group commit
        window); their batching deadline counts from their arrival, not from the commit."""
        now_ms = self._wall_ms()
        new_streams: list[tuple[str, str, int, str]] = []
        held_boot: str | None = None
        if self._clock_source is not None:
            trust = self._trusted()
            if trust is None:
                assert self.clock_sample is not None
                held_boot = self.clock_sample.boot_id
            else:
                self.backfill()
                groups = [_backfilled(g, trust) for g in groups]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._delete_acked()
                fresh = self._fresh_keys(groups)
                kept: list[Reading] = []
                counts = []
                for group in groups:
                    before = len(kept)
                    if fresh is None:
                        kept.extend(group)
                    else:
                        for r in group:
                            key = r.source_key
                            if key is None:
                                kept.append(r)
                            elif key in fresh:
                                fresh.discard(key)  # a key repeated in one commit: stored once
                                kept.append(r)
                    counts.append(len(kept) - before)
                new_streams = self._insert(kept, now_ms, held_boot=held_boot, waited_s=waited_s)
                if now_ms >= self._next_prune_ms or self._too_many_recent_keys():
                    self._fold_keys()
                    self._prune_keys(now_ms)
                self._enforce_quota(now_ms)
        except BaseException:
            for stream_key in new_streams:  # rolled back: forget the ids
                self._stream_rows.pop(self._streams.pop(stream_key), None)
            self._folded_keys.clear()
            raise
        self._recent_keys.update(r.source_key for r in kept if r.source_key is not None)
        self._recent_keys.difference_update(self._folded_keys)  # in source_keys now
        self._folded_keys.clear()
        added = sum(counts)
        self.stats.commits += 1
        self.stats.readings_added += added
        self.stats.duplicates += sum(len(g) for g in groups) - added
        return counts

    def _fresh_keys(self, groups: Sequence[Sequence[Reading]]) -> set[str] | None:
        """The source keys not stored before; None when no reading has one.

        Reads only: a new key is written with its chunk (:meth:`_insert`)."""
        keys = {r.source_key for g in groups for r in g if r.source_key is not None}
        if not keys:
            return None
        keys.difference_update(self._recent_keys)
        listed = list(keys)
        for i in range(0, len(listed), _KEY_QUERY_CHUNK):
            part = listed[i : i + _KEY_QUERY_CHUNK]
            marks = ",".join("?" * len(part))
            keys.difference_update(
                row[0]
                for row in self._db.execute(
                    f"SELECT key FROM source_keys WHERE key IN ({marks})",  # noqa: S608
                    part,
                )
            )
        return keys

    def _move_keys(self, keys_column: bytes | None, now_ms: int) -> None:
        """A chunk leaves (sealed, evicted): its keys go on as one ``recent_keys`` row (an
        append: one page), still in memory, until :meth:`_fold_keys`."""
        if keys_column is not None:
            self._db.execute(
                "INSERT INTO recent_keys(stored_ms, keys) VALUES (?, ?)", (now_ms, keys_column)
            )

    def _too_many_recent_keys(self) -> bool:
        """Beyond :data:`MAX_RECENT_KEYS` in memory with sealed ones to fold (those of waiting
        chunks stay in memory whatever: folding cannot shrink them, so it is not tried)."""
        return (
            len(self._recent_keys) > MAX_RECENT_KEYS
            and self._db.execute("SELECT 1 FROM recent_keys LIMIT 1").fetchone() is not None
        )

    def _fold_keys(self) -> None:
        """Move the ``recent_keys`` rows into the ``source_keys`` B-tree (within a transaction;
        every :data:`PRUNE_INTERVAL_S`): hours of keys touch each leaf once, where a key per
        seal would touch a leaf each. The caller forgets them in memory after the commit."""
        for stored_ms, keys in self._db.execute("SELECT stored_ms, keys FROM recent_keys"):
            listed = cbor2.loads(keys)
            self._db.executemany(
                "INSERT OR IGNORE INTO source_keys(key, stored_ms) VALUES (?, ?)",
                [(k, stored_ms) for k in listed],
            )
            self._folded_keys.extend(listed)
        self._db.execute("DELETE FROM recent_keys")

    def _stream_id(self, r: Reading, new: list[tuple[str, str, int, str]]) -> int:
        key = (r.stream, r.device, r.mdc_code, r.unit)
        sid = self._streams.get(key)
        if sid is None:
            cursor = self._db.execute(
                "INSERT INTO streams(stream, device, mdc, unit) VALUES (?, ?, ?, ?)", key
            )
            sid = int(cursor.lastrowid or 0)
            self._streams[key] = sid
            self._stream_rows[sid] = key
            new.append(key)
        return sid

    def _insert(
        self,
        readings: Iterable[Reading],
        now_ms: int,
        *,
        held_boot: str | None = None,
        waited_s: float = 0.0,
    ) -> list[tuple[str, str, int, str]]:
        """Write readings as chunks (one per priority per :data:`CHUNK_MAX_READINGS`).

        ``held_boot``: the wall clock is not trusted; the chunks are held (never sealed) and
        carry each reading's monotonic time and its effective - hub wall ms for the back-fill.
        """
        new: list[tuple[str, str, int, str]] = []
        by_priority: dict[int, list[Reading]] = {}
        delay: float | None = None
        policy = self.batching
        streams = self._streams
        for r in readings:
            bucket = by_priority.get(r.priority)
            if bucket is None:
                by_priority[r.priority] = bucket = []
            bucket.append(r)
        rows = []
        for priority, bucket in by_priority.items():
            for start in range(0, len(bucket), CHUNK_MAX_READINGS):
                part = bucket[start : start + CHUNK_MAX_READINGS]
                sids = []
                deltas = []
                values: list[str | None] = []
                specials: list[str | None] = []
                flags: list[str | None] = []
                keys: list[str] = []
                last = 0
                for r in part:
                    sid = streams.get((r.stream, r.device, r.mdc_code, r.unit))
                    sids.append(sid if sid is not None else self._stream_id(r, new))
                    t = r.effective_ms()
                    deltas.append(t - last)
                    last = t
                    v = r.value
                    values.append(None if v is None else str(v))
                    specials.append(r.special)
                    flags.append("\x1f".join(sorted(r.flags)) if r.flags else None)
                    if r.source_key is not None:
                        keys.append(r.source_key)
                columns: list[list[Any]] = [sids, deltas, values, specials, flags]
                if held_boot is not None:
                    columns.append([r.hub_mono_ns for r in part])
                    columns.append([_hub_relative_offset(r) for r in part])
                payload = cbor2.dumps(columns)
                rows.append(
                    (
                        priority,
                        len(part),
                        part[0].effective_ms(),
                        payload,
                        held_boot,
                        cbor2.dumps(keys) if keys else None,
                    )
                )
            kinds = {r.continuous for r in bucket}
            for continuous in kinds:
                d = policy.delay_s(Priority(priority), continuous=continuous)
                delay = d if delay is None else min(delay, d)
        self._db.executemany(
            "INSERT INTO chunks(priority, n, first_ms, payload, held_boot, keys) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        if held_boot is not None:
            self._held_readings += sum(row[1] for row in rows)
            delay = HELD_RECHECK_S if rows else None
        if delay is not None:
            due = self._clock() + max(0.0, delay - waited_s)
            self._due_at = due if self._due_at is None else min(self._due_at, due)
        return new

    def known_keys(self) -> int:
        """Source keys remembered: of waiting chunks, of recently sealed or evicted ones, and
        in ``source_keys`` (folded)."""
        return len(self._recent_keys) + self.stored_keys()

    def stored_keys(self) -> int:
        """Source keys folded into ``source_keys`` (see :meth:`_fold_keys`)."""
        (stored,) = self._db.execute("SELECT count(*) FROM source_keys").fetchone()
        return int(stored)

    def _prune_keys(self, now_ms: int) -> None:
        cutoff = now_ms - round(self.dedup_retention_s * 1000)
        self._db.execute("DELETE FROM source_keys WHERE stored_ms < ?", (cutoff,))
        self._next_prune_ms = now_ms + round(PRUNE_INTERVAL_S * 1000)

    # -- quota -----------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages not on the free list)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self._page_size

    def _limit_bytes(self, used: int) -> int:
        limit = self.quota_bytes
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return limit
        free = st.f_bavail * st.f_frsize
        # Below the free-space floor the limit drops under what is used, so eviction frees
        # the difference (a clamp at 0 here once kept a full disk from evicting anything).
        return min(limit, used + free - self.min_free_bytes)

    def _enforce_quota(self, now_ms: int) -> None:
        used = self.used_bytes()
        limit = self._limit_bytes(used)
        if used <= limit:
            self.stats.over_quota = False
            return
        # Free a tenth more than needed, so eviction does not run on every commit.
        need = used - limit + limit // 10
        # Only non-clinical readings are ever evicted (docs/CONTEXT.md: a clinical reading is
        # never dropped). Space the store cannot free (idempotency keys, sealed batches,
        # clinical readings) once made every commit evict clinical readings and alerts too:
        # the virtual rig's nearly full disk caught it (hil_tests/test_hil_faults.py).
        candidates = self._db.execute(
            "SELECT id, priority, length(payload) + 64 FROM chunks WHERE held_boot IS NULL "
            "AND priority > ? ORDER BY priority DESC, id",
            (int(Priority.CLINICAL),),
        ).fetchall()
        evicted = 0
        for chunk_id, priority, size in candidates:
            if need <= 0:
                break
            payload, keys = self._db.execute(
                "SELECT payload, keys FROM chunks WHERE id=?", (chunk_id,)
            ).fetchone()
            evicted += self._tombstone(priority, payload, now_ms)
            self._move_keys(keys, now_ms)
            self._db.execute("DELETE FROM chunks WHERE id=?", (chunk_id,))
            need -= size
        self.stats.evicted += evicted
        self.stats.over_quota = need > 0
        if evicted:
            self._bump_meta("evicted_readings", evicted)
            due = self._clock() + self.batching.telemetry_s
            self._due_at = due if self._due_at is None else min(self._due_at, due)
            logger.warning("outbox over quota: evicted %d readings (tombstones recorded)", evicted)
        if need > 0:
            logger.error("outbox over quota and nothing left to evict; readings still accepted")

    def _tombstone(self, priority: int, payload: bytes, now_ms: int) -> int:
        sids, times, _values, _specials, _flags = _unpack(payload)
        ranges: dict[int, list[int]] = {}
        for sid, t in zip(sids, times, strict=True):
            r = ranges.get(sid)
            if r is None:
                ranges[sid] = [1, t, t]
            else:
                r[0] += 1
                r[1] = min(r[1], t)
                r[2] = max(r[2], t)
        self._db.executemany(
            "INSERT INTO tombstones(stream_id, priority, n, first_ms, last_ms, evicted_ms) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(stream_id, priority) DO UPDATE SET "
            "n = n + excluded.n, first_ms = min(first_ms, excluded.first_ms), "
            "last_ms = max(last_ms, excluded.last_ms), evicted_ms = excluded.evicted_ms",
            [(sid, priority, n, lo, hi, now_ms) for sid, (n, lo, hi) in ranges.items()],
        )
        return len(sids)

    def _bump_meta(self, key: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
            (key, str(by)),
        )

    # -- the hub's clock ---------------------------------------------------------------------

    def _trusted(self) -> ClockSample | None:
        """The sample the wall clock is trusted from; None while it is not trusted.

        Asks the clock source at every commit and seal (a system call and two clock reads).
        Once trusted, the trust holds while the wall clock keeps its offset to the monotonic
        clock (NTP slews both alike), even if the kernel's sync flag lapses later (after hours
        without NTP): a step of more than :data:`CLOCK_STEP_TOLERANCE_NS` (set by hand, lost,
        stepped by NTP) makes the source judge again, and readings stamped since the step are
        held or corrected like any others.
        """
        source = self._clock_source
        if source is None:
            return None
        sample = source.sample()
        self.clock_sample = sample
        trust = self.clock_trusted
        if trust is not None:
            step_ns = (sample.wall_ns - sample.mono_ns) - (trust.wall_ns - trust.mono_ns)
            if abs(step_ns) <= CLOCK_STEP_TOLERANCE_NS and sample.boot_id == trust.boot_id:
                return trust
            self.clock_trusted = None
            logger.warning("hub wall clock stepped by %.1f s: judging it again", step_ns / 1e9)
        if sample.trusted:
            self.clock_trusted = sample
            self._untrusted_logged = False
            logger.info("hub wall clock trusted (%s)", sample.reason)
        elif not self._untrusted_logged:
            self._untrusted_logged = True
            logger.warning(
                "hub wall clock not trusted (%s): readings are held until it is", sample.reason
            )
        return self.clock_trusted

    def held_readings(self) -> int:
        """Readings held until the wall clock is trusted (docs/pipeline.md)."""
        return self._held_readings

    def _recheck_held(self) -> None:
        if self._held_readings and self._clock_source is not None:
            due = self._clock() + HELD_RECHECK_S
            self._due_at = due if self._due_at is None else min(self._due_at, due)

    def backfill(self) -> int:
        """Give held readings their wall time once the clock is trusted (one transaction).

        Same boot as the trusted sample: ``wall = wall_at_trust - (mono_at_trust - mono)``
        (:func:`backfilled_ms`), flag ``hub-time-backfilled``. Another boot (the clock was
        never trusted before it ended): times are estimated, flag ``hub-time-estimated``:
        the boot's last held reading is put at the next boot's start (this boot's, from the
        trusted sample; for older boots, the estimated first held reading of the boot after
        it) and the others keep their monotonic spacing before it, an upper bound. Returns
        how many readings were back-filled; 0 while the clock is not trusted.
        """
        if not self._held_readings or self._clock_source is None:
            return 0
        trust = self._trusted()
        if trust is None:
            return 0
        exact = estimated = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT id, held_boot, payload FROM chunks WHERE held_boot IS NOT NULL ORDER BY id"
            ).fetchall()
            by_boot: dict[str, list[tuple[int, list[Any]]]] = {}
            for chunk_id, boot, payload in rows:
                by_boot.setdefault(boot, []).append((chunk_id, cbor2.loads(payload)))
            updates: list[tuple[int, bytes, int]] = []
            for chunk_id, columns in by_boot.pop(trust.boot_id, []):
                stamped = _chunk_times(columns)
                times = [
                    t if o is None else backfilled_ms(trust, m) + o
                    for m, o, t in zip(*columns[5:7], stamped, strict=True)
                ]
                updates.append(_retimed(chunk_id, columns, times, FLAG_HUB_TIME_BACKFILLED))
                exact += len(times)
            # Earlier boots, the latest first: each ended before the next one started.
            anchor_ns = trust.wall_ns - trust.mono_ns  # this boot's start, wall time
            for chunks in sorted(by_boot.values(), key=lambda c: c[-1][0], reverse=True):
                monos = [m for _, columns in chunks for m in columns[5]]
                last_ns, first_ns = max(monos), min(monos)
                for chunk_id, columns in chunks:
                    stamped = _chunk_times(columns)
                    times = [
                        t if o is None else (anchor_ns - (last_ns - m)) // 1_000_000 + o
                        for m, o, t in zip(*columns[5:7], stamped, strict=True)
                    ]
                    updates.append(_retimed(chunk_id, columns, times, FLAG_HUB_TIME_ESTIMATED))
                    estimated += len(times)
                anchor_ns -= last_ns - first_ns
            self._db.executemany(
                "UPDATE chunks SET held_boot=NULL, payload=?, first_ms=? WHERE id=?",
                [(payload, first_ms, chunk_id) for chunk_id, payload, first_ms in updates],
            )
        self._held_readings = 0
        self._due_at = self._clock()  # they waited long enough: due now
        logger.info(
            "back-filled the wall time of %d held readings (%d estimated: an earlier boot)",
            exact + estimated,
            estimated,
        )
        return exact + estimated

    # -- batching --------------------------------------------------------------------------

    def _waiting(self) -> bool:
        return (
            self._db.execute("SELECT 1 FROM chunks WHERE held_boot IS NULL LIMIT 1").fetchone()
            is not None
            or self._db.execute("SELECT 1 FROM tombstones LIMIT 1").fetchone() is not None
        )

    def due_in_s(self) -> float | None:
        """Seconds until the waiting readings must leave (<= 0: now); None if none wait."""
        due = self._due_at
        return None if due is None else due - self._clock()

    def unbatched_count(self) -> int:
        """Readings not yet sealed into a batch."""
        row = self._db.execute("SELECT coalesce(sum(n), 0) FROM chunks").fetchone()
        return int(row[0])

    def _next_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return 0 if row is None else int(row[0])

    def _wire(self, payload: bytes) -> list[WireReading]:
        sids, times, values, specials, flags = _unpack(payload)
        rows = self._stream_rows
        out = []
        for sid, t, v, special, f in zip(sids, times, values, specials, flags, strict=True):
            stream, device, mdc, unit = rows[sid]
            out.append(
                WireReading(
                    stream=stream,
                    mdc_code=mdc,
                    unit=unit,
                    t_ms=t,
                    value=None if v is None else Decimal(v),
                    special=special,
                    flags=frozenset(f.split("\x1f")) if f else frozenset(),
                    device=device,
                )
            )
        return out

    def _tombstone_readings(self) -> list[WireReading]:
        rows = self._db.execute(
            "SELECT stream_id, priority, n, first_ms, last_ms, evicted_ms FROM tombstones"
        ).fetchall()
        out = []
        for sid, priority, n, first_ms, last_ms, evicted_ms in rows:
            stream, _device, mdc, _unit = self._stream_rows[sid]
            out.append(
                WireReading(
                    stream=f"{HUB_DEVICE}/evicted/{stream}",
                    mdc_code=MDC_NARHUB_EVICTED,
                    unit="{readings}",
                    t_ms=first_ms,
                    value=Decimal(n),
                    flags=frozenset(
                        {
                            FLAG_EVICTED,
                            f"evicted-priority:{Priority(priority).topic_name}",
                            f"evicted-mdc:{mdc}",
                            f"evicted-last-ms:{last_ms}",
                            f"evicted-at-ms:{evicted_ms}",
                        }
                    ),
                    device=HUB_DEVICE,
                )
            )
        return out

    def seal(
        self,
        signer: BatchSigner,
        *,
        now_ms: int,
        max_readings: int | None = None,
        newest_alert_alone: bool = False,
    ) -> PendingBatch | None:
        """Seal waiting readings into one signed batch (one transaction); None if none wait.

        Takes every waiting chunk, most urgent priority first and oldest first within one,
        until ``max_readings`` (at least one chunk), plus every pending tombstone. The batch
        carries the most urgent priority among its readings.

        ``newest_alert_alone``: when more than one alert chunk waits (a backlog after days
        offline), seal only the newest alert chunk, so that it leaves first
        (docs/protocols/uplink.md, "Drain order"); None otherwise.
        """
        self.backfill()
        limit = max_readings or self.batching.max_batch_readings
        chunk_sql = (
            "SELECT id, priority, n FROM chunks WHERE held_boot IS NULL ORDER BY priority, id"
        )
        if newest_alert_alone:
            (alert_chunks,) = self._db.execute(
                "SELECT count(*) FROM chunks WHERE priority=? AND held_boot IS NULL",
                (Priority.ALERT,),
            ).fetchone()
            if alert_chunks < 2:  # one alert chunk: the normal seal takes it
                return None
            # The newest alert chunk (Priority.ALERT is 0).
            chunk_sql = (
                "SELECT id, priority, n FROM chunks WHERE priority=0 AND held_boot IS NULL "
                "ORDER BY id DESC LIMIT 1"
            )
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            taken: list[int] = []
            readings: list[WireReading] = []
            priority: int | None = None
            for chunk_id, chunk_priority, n in self._db.execute(chunk_sql).fetchall():
                if taken and len(readings) + n > limit:
                    break
                payload, keys = self._db.execute(
                    "SELECT payload, keys FROM chunks WHERE id=?", (chunk_id,)
                ).fetchone()
                readings.extend(self._wire(payload))
                self._move_keys(keys, now_ms)
                taken.append(chunk_id)
                priority = chunk_priority if priority is None else min(priority, chunk_priority)
            tombstones = [] if newest_alert_alone else self._tombstone_readings()
            if not readings and not tombstones:
                self._due_at = None
                self._recheck_held()
                return None
            if tombstones:
                readings.extend(tombstones)
                priority = Priority.TELEMETRY if priority is None else priority
                self._db.execute("DELETE FROM tombstones")
            assert priority is not None
            self._delete_acked()  # only here: a seal that finds nothing writes nothing
            readings.sort(key=lambda r: r.t_ms)
            seq = self._next_seq()
            header = BatchHeader(
                hub_id=signer.hub_id,
                boot_id=self.boot_id,
                seq=seq,
                created_ms=now_ms,
                priority=Priority(priority),
                count=len(readings),
            )
            message = signer.sign(encode_body(header, readings))
            cursor = self._db.execute(
                "INSERT INTO batches(seq, priority, created_ms, n, first_ms, message) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (seq, priority, now_ms, len(readings), readings[0].t_ms, message),
            )
            batch_id = int(cursor.lastrowid or 0)
            self._db.executemany("DELETE FROM chunks WHERE id=?", [(c,) for c in taken])
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('next_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(seq + 1),),
            )
        if not self._waiting():
            self._due_at = None
            self._recheck_held()
        return PendingBatch(batch_id, seq, Priority(priority), message)

    def _not_acked(self) -> tuple[str, tuple[int, ...]]:
        """SQL (`` AND id NOT IN (...)``) and parameters leaving out deferred acknowledgements."""
        if not self._acked:
            return "", ()
        return f" AND id NOT IN ({','.join('?' * len(self._acked))})", tuple(self._acked)

    def pending(self, limit: int = 100) -> list[PendingBatch]:
        """Unsent, unrejected batches, alerts first, oldest first within a priority."""
        not_acked, ids = self._not_acked()
        rows = self._db.execute(
            f"SELECT id, seq, priority, message FROM batches WHERE rejected_reason IS NULL"  # noqa: S608
            f"{not_acked} ORDER BY priority, id LIMIT ?",
            (*ids, limit),
        ).fetchall()
        return [PendingBatch(r[0], r[1], Priority(r[2]), r[3]) for r in rows]

    def acknowledge(self, batch_id: int, *, defer: bool = False) -> None:
        """The broker accepted the batch (reason code < 0x80): delete it.

        ``defer``: delete it with the next transaction (a commit of readings, a seal, or
        :meth:`flush_acks`), not in one of its own: one sync fewer per batch on the SD card.
        Until then the store acts as if it were gone (:meth:`pending`, the counts); a crash
        before that commit only sends the batch again, which the region drops as a replay
        (at-least-once, docs/protocols/uplink.md). At most :data:`MAX_DEFERRED_ACKS` wait.
        """
        self._acked[batch_id] = None
        if not defer or len(self._acked) >= MAX_DEFERRED_ACKS:
            self.flush_acks()

    def flush_acks(self) -> bool:
        """Delete the batches whose acknowledgement was deferred (one transaction, if any)."""
        if not self._acked:
            return False
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._delete_acked()
        return True

    def _delete_acked(self) -> None:
        """Within a transaction: delete the acknowledged batches. They are forgotten at once;
        a rollback sends them again (at-least-once)."""
        if self._acked:
            self._db.executemany("DELETE FROM batches WHERE id=?", [(i,) for i in self._acked])
            self._acked.clear()

    def reject(self, batch_id: int, reason_code: int) -> None:
        """The broker refused the batch: keep it, with the reason, for the technician."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE batches SET rejected_reason=? WHERE id=?", (reason_code, batch_id)
            )

    def all_batches(self) -> list[tuple[PendingBatch, int | None]]:
        """Every stored batch with its rejection reason (None while still to send)."""
        not_acked, ids = self._not_acked()
        rows = self._db.execute(
            "SELECT id, seq, priority, message, rejected_reason FROM batches "  # noqa: S608
            f"WHERE 1{not_acked} ORDER BY priority, id",
            ids,
        ).fetchall()
        return [(PendingBatch(r[0], r[1], Priority(r[2]), r[3]), r[4]) for r in rows]

    def oldest_unsent_ms(self) -> int | None:
        """Epoch ms of the oldest reading not yet acknowledged by the broker, or None."""
        not_acked, ids = self._not_acked()
        row = self._db.execute(
            "SELECT min(t) FROM (SELECT min(first_ms) AS t FROM chunks WHERE held_boot IS NULL "  # noqa: S608
            "UNION ALL SELECT min(first_ms) FROM batches WHERE rejected_reason IS NULL"
            f"{not_acked})",
            ids,
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def depth_by_priority(self) -> dict[str, int]:
        """Readings not yet acknowledged by the broker (waiting and sealed, rejected batches
        excluded), per priority topic name (docs/protocols/uplink.md, "Status topic")."""
        depth = {p.topic_name: 0 for p in Priority}
        not_acked, ids = self._not_acked()
        for priority, n in self._db.execute(
            "SELECT priority, sum(n) FROM chunks GROUP BY priority UNION ALL "  # noqa: S608
            f"SELECT priority, sum(n) FROM batches WHERE rejected_reason IS NULL{not_acked} "
            "GROUP BY priority",
            ids,
        ):
            depth[Priority(priority).topic_name] += int(n)
        return depth

    def queue_figures(self) -> dict[str, Any]:
        """What ``narhub status`` shows of the queue (:class:`gateway.status.QueueView`'s
        fields), for the activity file: another process cannot read an exclusive store."""
        names = [p.topic_name for p in Priority]
        readings = dict.fromkeys(names, 0)
        for priority, n in self._db.execute(
            "SELECT priority, sum(n) FROM chunks GROUP BY priority"
        ):
            readings[Priority(priority).topic_name] = int(n or 0)
        batches = dict.fromkeys(names, 0)
        not_acked, ids = self._not_acked()
        for priority, n in self._db.execute(
            "SELECT priority, count(*) FROM batches WHERE rejected_reason IS NULL"  # noqa: S608
            f"{not_acked} GROUP BY priority",
            ids,
        ):
            batches[Priority(priority).topic_name] = int(n)
        counts = self.counts()
        return {
            "readings_by_priority": readings,
            "batches_by_priority": batches,
            "oldest_unsent_ms": self.oldest_unsent_ms(),
            "rejected_batches": counts["rejected_batches"],
            "evicted_readings_total": counts["evicted_readings_total"],
            "tombstones_pending": counts["tombstones_pending"],
            "held_readings": counts["held_readings"],
        }

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check``: "ok" or the first problem found."""
        return str(self._db.execute("PRAGMA quick_check").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Queue depths, evictions and disk use."""
        not_acked, ids = self._not_acked()
        pending, rejected = self._db.execute(
            "SELECT sum(rejected_reason IS NULL), sum(rejected_reason IS NOT NULL) "  # noqa: S608
            f"FROM batches WHERE 1{not_acked}",
            ids,
        ).fetchone()
        (tombstones,) = self._db.execute("SELECT count(*) FROM tombstones").fetchone()
        evicted = self._db.execute("SELECT value FROM meta WHERE key='evicted_readings'").fetchone()
        return {
            "unbatched_readings": self.unbatched_count(),
            "held_readings": self._held_readings,
            "pending_batches": int(pending or 0),
            "rejected_batches": int(rejected or 0),
            "tombstones_pending": int(tombstones),
            "evicted_readings_total": 0 if evicted is None else int(evicted[0]),
            "used_bytes": self.used_bytes(),
            "quota_bytes": self.quota_bytes,
        }


@dataclass
class _Waiter:
    readings: Sequence[Reading]
    future: asyncio.Future[int]


@dataclass
class _Group:
    waiters: list[_Waiter] = field(default_factory=list)
    readings: int = 0
    #: Loop time by which this group must be committed (the earliest waiter's window).
    commit_by: float = float("inf")
    #: Loop time the first waiter arrived (its batching deadline counts from then).
    opened: float = float("inf")


def _commit_at_once(r: Reading) -> bool:
    """Alerts, and clinical spot readings: a BLE host stack confirms an indication (ATT
    Handle Value Confirmation, Core 5.3 Vol 3 Part F 3.4.7.3) as it arrives, before the hub can
    commit, and the device then forgets it; the shorter the wait for the commit, the smaller
    the window a power cut could take it in. Continuous and environmental streams wait for the
    group commit window (their sources resend, or a lost second matters little)."""
    return r.priority is Priority.ALERT or (r.priority is Priority.CLINICAL and not r.continuous)


def waits_long(r: Reading) -> bool:
    """May this reading wait ``continuous_commit_window_s`` for its commit? Yes when no source
    waits for the commit and none could resend the reading: continuous notification streams
    (oximetry, heart rate) and the hub's own telemetry. A power cut takes at most that window
    of them (docs/pipeline.md, "Bytes on the SD card")."""
    return r.source_key is None and (r.continuous or r.priority is Priority.TELEMETRY)


class AsyncOutbox:
    """The :class:`Outbox` behind one worker thread, with group commit and backpressure.

    Concurrent :meth:`add` calls within ``commit_window_s`` of the first share one
    transaction (one sync); each returns only after that commit. Readings that no source
    waits for and none can resend (continuous notifications: no source key) may wait
    ``continuous_commit_window_s`` instead (default: the same); a power cut loses at most
    that much of such a stream (docs/pipeline.md, SD-card wear). An alert, or
    ``max_pending_readings`` waiting, commits at once. Backpressure: while that many readings
    wait for a commit, a further :meth:`add` waits (bounded memory; the sources hold their
    data: boards keep unacknowledged readings, the BLE queue fills and the central
    disconnects devices, which keep their records).
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        commit_window_s: float = DEFAULT_COMMIT_WINDOW_S,
        continuous_commit_window_s: float | None = None,
        max_pending_readings: int = DEFAULT_MAX_PENDING_READINGS,
    ) -> None:
        self.outbox = outbox
        self.commit_window_s = commit_window_s
        self.continuous_commit_window_s = (
            commit_window_s if continuous_commit_window_s is None else continuous_commit_window_s
        )
        self.max_pending_readings = max_pending_readings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="narhub-store")
        self.changed = asyncio.Event()
        self._group = _Group()
        self._in_flight = 0
        self._urgent = asyncio.Event()
        #: Set when the open group's commit moved earlier (or became urgent): the committer
        #: may be waiting out a longer window and must look again.
        self._sooner = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._committer: asyncio.Task[None] | None = None
        self._ack_flusher: asyncio.Task[None] | None = None

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def _waiting_readings(self) -> int:
        return self._group.readings + self._in_flight

    async def add(self, readings: Sequence[Reading]) -> int:
        """Durably store readings; returns (new count) only after their commit."""
        if not readings:
            return 0
        while self._waiting_readings() and (
            self._waiting_readings() + len(readings) > self.max_pending_readings
        ):
            self._space.clear()
            await self._space.wait()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(readings, loop.create_future())
        group = self._group
        window = self.commit_window_s
        if self.continuous_commit_window_s != window and all(map(waits_long, readings)):
            window = self.continuous_commit_window_s
        now = loop.time()
        if now + window < group.commit_by:
            group.commit_by = now + window
            self._sooner.set()
        group.opened = min(group.opened, now)
        group.waiters.append(waiter)
        group.readings += len(readings)
        if group.readings >= self.max_pending_readings or any(map(_commit_at_once, readings)):
            self._urgent.set()
            self._sooner.set()
        if self._committer is None:
            self._committer = loop.create_task(self._commit_loop(), name="store-group-commit")
        return await waiter.future

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._group.waiters:
                # The group's deadline can move earlier while we wait (a board's reading
                # joins a group a continuous stream opened with its 60 s window): look again.
                while not self._urgent.is_set():
                    remaining = self._group.commit_by - loop.time()
                    if remaining <= 0:
                        break
                    self._sooner.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._sooner.wait(), remaining)
                group, self._group = self._group, _Group()
                self._urgent.clear()
                self._in_flight += group.readings
                done = loop.run_in_executor(
                    self._executor,
                    functools.partial(
                        self.outbox.add_groups,
                        [w.readings for w in group.waiters],
                        waited_s=max(0.0, loop.time() - group.opened),
                    ),
                )
                done.add_done_callback(functools.partial(self._committed, group=group))
                # Shielded: a cancelled caller must not leave others waiting for their commit.
                with contextlib.suppress(Exception):
                    await asyncio.shield(done)
        finally:
            self._committer = None

    def _committed(self, done: asyncio.Future[list[int]], *, group: _Group) -> None:
        self._in_flight -= group.readings
        self._space.set()
        if done.cancelled():
            error: BaseException = asyncio.CancelledError()
        else:
            error_or_none = done.exception()
            if error_or_none is None:
                for waiter, count in zip(group.waiters, done.result(), strict=True):
                    if not waiter.future.done():
                        waiter.future.set_result(count)
                self.changed.set()
                return
            error = error_or_none
        for waiter in group.waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)

    def due_in_s(self) -> float | None:
        """See :meth:`Outbox.due_in_s` (an attribute read: safe from the loop)."""
        return self.outbox.due_in_s()

    async def seal(
        self, signer: BatchSigner, *, now_ms: int, newest_alert_alone: bool = False
    ) -> PendingBatch | None:
        """See :meth:`Outbox.seal`."""
        batch: PendingBatch | None = await self._run(
            self.outbox.seal, signer, now_ms=now_ms, newest_alert_alone=newest_alert_alone
        )
        return batch

    async def status_counts(self) -> tuple[dict[str, int], dict[str, int], int | None]:
        """:meth:`Outbox.counts`, :meth:`Outbox.depth_by_priority` and
        :meth:`Outbox.oldest_unsent_ms`, read together on the store's thread."""

        def read() -> tuple[dict[str, int], dict[str, int], int | None]:
            store = self.outbox
            return store.counts(), store.depth_by_priority(), store.oldest_unsent_ms()

        result: tuple[dict[str, int], dict[str, int], int | None] = await self._run(read)
        return result

    async def pending(self) -> list[PendingBatch]:
        """See :meth:`Outbox.pending`."""
        result: list[PendingBatch] = await self._run(self.outbox.pending)
        return result

    async def acknowledge(self, batch_id: int) -> None:
        """See :meth:`Outbox.acknowledge`: deferred, deleted with the next commit or at the
        latest ``continuous_commit_window_s`` later."""
        await self._run(self.outbox.acknowledge, batch_id, defer=True)
        if self._ack_flusher is None:
            self._ack_flusher = asyncio.get_running_loop().create_task(
                self._flush_acks_later(), name="store-ack-flush"
            )

    async def _flush_acks_later(self) -> None:
        await asyncio.sleep(self.continuous_commit_window_s)  # a timer, not synchronisation
        self._ack_flusher = None
        try:
            await self._run(self.outbox.flush_acks)
        except sqlite3.Error as exc:  # the batches are sent again: the region drops replays
            logger.warning("outbox: acknowledged batches not deleted (%s)", type(exc).__name__)

    async def reject(self, batch_id: int, reason_code: int) -> None:
        """See :meth:`Outbox.reject`."""
        await self._run(self.outbox.reject, batch_id, reason_code)

    async def queue_figures(self) -> dict[str, Any]:
        """See :meth:`Outbox.queue_figures`."""
        result: dict[str, Any] = await self._run(self.outbox.queue_figures)
        return result

    async def counts(self) -> dict[str, int]:
        """See :meth:`Outbox.counts`."""
        result: dict[str, int] = await self._run(self.outbox.counts)
        return result

    def close(self) -> None:
        """Commit what still waits, finish queued work and close the database."""
        flusher, self._ack_flusher = self._ack_flusher, None
        if flusher is not None:  # Outbox.close deletes the acknowledged batches
            with contextlib.suppress(RuntimeError):
                flusher.cancel()
        committer, self._committer = self._committer, None
        if committer is not None:  # it may be waiting out a window: the group is taken here
            with contextlib.suppress(RuntimeError):  # its loop may be closed already
                committer.cancel()
        group, self._group = self._group, _Group()
        if group.waiters:
            future = self._executor.submit(
                self.outbox.add_groups, [w.readings for w in group.waiters]
            )
            try:
                counts = future.result()
            except Exception as exc:  # noqa: BLE001 - handed to each waiting caller
                for waiter in group.waiters:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
            else:
                for waiter, count in zip(group.waiters, counts, strict=True):
                    if not waiter.future.done():
                        waiter.future.set_result(count)
        self._executor.shutdown(wait=True)
        self.outbox.close()
