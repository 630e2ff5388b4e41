"""The receivers' shared state in PostgreSQL: the one module that imports psycopg.

Any number of receivers on the MQTT 5 shared subscription (MQTT 5.0 section 4.8.2) use one
database. A batch is one transaction (PostgreSQL 15 documentation, chapter 13 "Concurrency
Control", Read Committed):

1. ``INSERT INTO batches ... ON CONFLICT DO NOTHING RETURNING n``: when another receiver holds
   the same key in an open transaction, PostgreSQL makes this one wait for it (section 13.2.1:
   the insert "will wait for the other transaction to commit or roll back"); if that one
   commits, nothing is returned here and the batch is a duplicate; if it rolls back (its
   receiver was killed), this one goes on and writes the batch.
2. ``INSERT INTO observations ... ON CONFLICT (id) DO NOTHING RETURNING id``, in id order
   (two receivers lock shared ids in the same order, so they cannot deadlock): the rows
   returned are the Observations new to the region, and only those are written and queued.
3. The new lines go to ``fhir_queue`` for :mod:`region.fhir_post`.

The receiver acknowledges the batch (PUBACK) only after COMMIT returned. A receiver killed
before that leaves an aborted transaction: nothing of the batch is in the database and the
broker delivers it again (to the same session when it comes back). ``narhub region export``
writes the Observations as NDJSON (bulk-data style), in the order their batches committed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from common.atomic import fsync_directory
from region.state import (
    BatchKey,
    JointWrites,
    ObservationLine,
    RegionStateError,
    StateUnavailableError,
    queued_lines,
)

logger = logging.getLogger(__name__)

#: Transactions retried after a deadlock or serialization failure before giving up.
_RETRIES = 5
#: How long a poster owns a claimed Bundle before another poster may take it (seconds).
LEASE_S = 120
#: pg_advisory_xact_lock key held while the schema is created (receivers start together).
_SCHEMA_LOCK = 0x6E61_7268_7562

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS batches ("
    " n BIGSERIAL UNIQUE, hub TEXT NOT NULL, boot TEXT NOT NULL, seq BIGINT NOT NULL,"
    " receiver TEXT NOT NULL, committed_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
    " PRIMARY KEY (hub, boot, seq))",
    "CREATE TABLE IF NOT EXISTS observations ("
    " id TEXT PRIMARY KEY, batch BIGINT NOT NULL REFERENCES batches (n),"
    " pos INTEGER NOT NULL, resource TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS observations_order ON observations (batch, pos)",
    # narhub's identifiers of the readings written under the PHD IG's (region.state.resolve).
    "CREATE TABLE IF NOT EXISTS observation_aliases (id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS fhir_queue ("
    " id BIGSERIAL PRIMARY KEY, lines TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " refused TEXT, leased_by TEXT, leased_until TIMESTAMPTZ)",
)


#: The cursor of a batch's transaction, as :class:`region.state.JointWrites` get it
#: (:mod:`region.enrolment_pg`, which reaches psycopg only through this module).
PgCursor = psycopg.Cursor[Any]


def _connect(url: str, application_name: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, application_name=application_name)
    except psycopg.OperationalError as exc:
        raise StateUnavailableError("postgresql", _first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """The tables, created once even when several receivers start at the same moment (and
    not touched when they exist: CREATE INDEX IF NOT EXISTS would wait for every open write
    transaction on its table, so a receiver would not start while another one is busy)."""
    row = conn.execute(
        "SELECT to_regclass('batches') IS NOT NULL AND to_regclass('observations_order') "
        "IS NOT NULL AND to_regclass('fhir_queue') IS NOT NULL "
        "AND to_regclass('observation_aliases') IS NOT NULL"
    ).fetchone()
    if row is not None and row[0]:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in SCHEMA:
            conn.execute(statement)


class PostgresState:
    """A receiver's view of the region's shared state (one connection per receiver)."""

    def __init__(
        self, url: str, *, fhir_queue: bool = False, application_name: str = "narhub-receiver"
    ) -> None:
        """``application_name`` shows the receiver in ``pg_stat_activity``."""
        self._url = url
        self._name = application_name
        self._fhir_queue = fhir_queue
        self._conn = _connect(url, application_name)
        create_schema(self._conn)

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether a batch with this key is committed (by any receiver)."""
        row = self._execute(
            "SELECT 1 FROM batches WHERE hub = %s AND boot = %s AND seq = %s",
            (hub_id, boot_id, seq),
        ).fetchone()
        return row is not None

    def commit_batch(
        self,
        key: BatchKey,
        observations: Sequence[ObservationLine],
        *,
        writes: JointWrites | None = None,
    ) -> list[str] | None:
        """The batch key, its new Observations, their FHIR queue entry and the filing's
        ``writes`` (held readings, enrolments' filed times, released readings: the enrolment
        store's tables in this database, :mod:`region.enrolment_pg`) in one transaction."""
        for attempt in range(_RETRIES):
            try:
                return self._commit_once(key, observations, writes)
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                logger.warning("batch transaction retried (%s)", type(exc).__name__)
                if attempt == _RETRIES - 1:
                    raise RegionStateError("postgresql", _first_line(exc)) from None
            except psycopg.OperationalError as exc:
                # The connection is gone: whether the COMMIT landed is unknown, so the batch
                # is tried again on a new connection (its key tells if it did).
                logger.warning("database connection lost; reconnecting")
                self._reconnect(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_once(
        self,
        key: BatchKey,
        observations: Sequence[ObservationLine],
        writes: JointWrites | None,
    ) -> list[str] | None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(
                "INSERT INTO batches (hub, boot, seq, receiver) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING n",
                (key.hub_id, key.boot_id, key.seq, self._name),
            )
            row = cur.fetchone()
            if row is None:
                return None
            batch_n = int(row[0])
            if writes is not None:
                writes.apply(cur)  # raises FilingRaceError: all of it rolls back
            primary, alternate = self._insert_observations(cur, batch_n, observations)
            lines: list[str] = []
            view: list[ObservationLine] = []
            for pos, o in enumerate(observations):
                chosen = o
                if pos in alternate and o.alias and o.alternate:
                    chosen = ObservationLine(o.alias, o.alternate, observation=o.observation)
                if pos in primary or pos in alternate:
                    lines.append(chosen.line)
                view.append(chosen)
            queued = queued_lines(view, lines) if self._fhir_queue else []
            if queued:
                cur.execute("INSERT INTO fhir_queue (lines) VALUES (%s)", ("\n".join(queued),))
            return lines

    @staticmethod
    def _insert_observations(
        cur: PgCursor, batch_n: int, observations: Sequence[ObservationLine]
    ) -> tuple[set[int], set[int]]:
        """Insert the batch's new resources (:func:`region.state.resolve` in SQL); the
        positions written under their own id and under their alias.

        Aliases first, then resources, then alternates, each in id order, so that two
        receivers lock shared rows in the same order. A known alias is a reading written
        before (under either identifier); a new alias whose IG identifier is taken, by an
        earlier batch or earlier in this one, is written under the alias."""
        first_alias: dict[str, int] = {}
        for pos, o in enumerate(observations):
            if o.alias and o.alternate:
                first_alias.setdefault(o.alias, pos)
        fresh_aliases: set[str] = set()
        if first_alias:
            cur.execute(
                "INSERT INTO observation_aliases (id) SELECT id FROM unnest(%s::text[]) AS t (id) "
                "ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id",
                (sorted(first_alias),),
            )
            fresh_aliases = {str(r[0]) for r in cur.fetchall()}
        aliased = {first_alias[a] for a in fresh_aliases}
        candidates = [
            pos
            for pos, o in enumerate(observations)
            if not (o.alias and o.alternate) or pos in aliased
        ]
        primary = _insert_rows(
            cur, batch_n, [(observations[p].id, p, observations[p].line) for p in candidates]
        )
        rest = sorted(aliased - primary)
        alternate = _insert_rows(
            cur,
            batch_n,
            [(str(observations[p].alias), p, str(observations[p].alternate)) for p in rest],
        )
        return primary, alternate

    def _execute(self, query: str, params: tuple[object, ...]) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(query, params)
        except psycopg.OperationalError as exc:
            self._reconnect(exc)
            return self._conn.execute(query, params)

    def _reconnect(self, exc: BaseException) -> None:
        self._conn.close()
        try:
            self._conn = _connect(self._url, self._name)
        except StateUnavailableError:
            raise StateUnavailableError("postgresql", _first_line(exc)) from None

    @property
    def sqlite_path(self) -> None:
        """No SQLite file: the enrolment store is given separately."""
        return None

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class PostgresFhirQueue:
    """The shared FHIR queue: each receiver's poster claims the oldest Bundle nobody holds
    (``FOR UPDATE SKIP LOCKED``) under a lease; a poster that dies loses its lease after
    :data:`LEASE_S` and another posts the Bundle (conditional creates: posting it twice
    creates each resource once)."""

    def __init__(self, url: str, *, name: str | None = None) -> None:
        self._name = name or f"narhub-poster-{os.getpid()}"
        self._conn = _connect(url, self._name)
        create_schema(self._conn)

    def claim(self) -> tuple[int, list[str]] | None:
        """Lease the oldest Bundle that is neither refused nor leased by another poster."""
        row = self._conn.execute(
            "UPDATE fhir_queue SET leased_by = %(me)s, "
            " leased_until = now() + make_interval(secs => %(lease)s) "
            "WHERE id = (SELECT id FROM fhir_queue WHERE refused IS NULL AND "
            "  (leased_by = %(me)s OR leased_until IS NULL OR leased_until < now()) "
            "  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "RETURNING id, lines",
            {"me": self._name, "lease": LEASE_S},
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]).splitlines())

    def done(self, row_id: int, refused: str | None) -> None:
        """Delete a posted Bundle, or mark it refused and release it."""
        if refused is None:
            self._conn.execute("DELETE FROM fhir_queue WHERE id = %s", (row_id,))
        else:
            self._conn.execute(
                "UPDATE fhir_queue SET refused = %s, attempts = attempts + 1, "
                "leased_by = NULL, leased_until = NULL WHERE id = %s",
                (refused, row_id),
            )

    def retry_refused(self) -> int:
        """Refused Bundles back in the queue."""
        cur = self._conn.execute("UPDATE fhir_queue SET refused = NULL WHERE refused IS NOT NULL")
        return cur.rowcount

    def pending(self) -> int:
        """Bundles waiting (refused ones not counted)."""
        row = self._conn.execute("SELECT count(*) FROM fhir_queue WHERE refused IS NULL").fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _observation_lines(conn: psycopg.Connection[Any]) -> Iterator[str]:
    with conn.transaction(), conn.cursor(name="narhub_export") as cur:
        cur.itersize = 5000
        cur.execute("SELECT resource FROM observations ORDER BY batch, pos")
        for (resource,) in cur:
            yield str(resource)


def _insert_rows(cur: PgCursor, batch_n: int, rows: list[tuple[str, int, str]]) -> set[int]:
    """Insert resources (id, position, JSON) in id order, skipping ids already stored; the
    positions inserted (an id twice: its first position)."""
    if not rows:
        return set()
    cur.execute(
        "INSERT INTO observations (id, batch, pos, resource) "
        "SELECT id, %s, pos, resource "
        "FROM unnest(%s::text[], %s::int[], %s::text[]) AS t (id, pos, resource) "
        "ORDER BY id, pos ON CONFLICT (id) DO NOTHING RETURNING pos",
        (batch_n, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
    )
    return {int(r[0]) for r in cur.fetchall()}


def export_ndjson(url: str, out: Path) -> int:
    """Write every Observation as NDJSON to ``out`` (replaced atomically); how many."""
    conn = _connect(url, "narhub-export")
    create_schema(conn)
    tmp = out.with_name(f".{out.name}.tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as file:
            for line in _observation_lines(conn):
                file.write(line + "\n")
                count += 1
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(out)
        fsync_directory(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        conn.close()
    return count


def counts(url: str) -> dict[str, int]:
    """Rows per table (batches, observations: every resource, fhir_queue): for operators
    and benchmarks."""
    conn = _connect(url, "narhub-counts")
    try:
        create_schema(conn)
        result = {}
        for table in ("batches", "observations", "fhir_queue"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed
            result[table] = 0 if row is None else int(row[0])
        return result
    finally:
        conn.close()


def observation_count(url: str) -> int:
    """The Observations among the stored resources (the rest: the Devices they reference)."""
    conn = _connect(url, "narhub-counts")
    try:
        create_schema(conn)
        row = conn.execute(
            "SELECT count(*) FROM observations "
            'WHERE position(\'"resourceType":"Observation"\' IN resource) > 0'
        ).fetchone()
        return 0 if row is None else int(row[0])
    finally:
        conn.close()


# -- A connection for the region's other stores in the same database ------------------------


@dataclass(frozen=True)
class PgResult:
    """What a statement returned: its rows (none for a statement without) and rowcount."""

    rows: list[tuple[Any, ...]]
    rowcount: int


class PgSession:
    """One connection for a region store that shares this database (the findings:
    :mod:`region.findings.store_pg`), so that psycopg stays imported in this module alone.
    Statements use psycopg's ``%s`` placeholders; :meth:`transaction` is one transaction
    (Read Committed); a lost connection raises :class:`region.state.StateUnavailableError`."""

    def __init__(self, url: str, application_name: str) -> None:
        self._conn = _connect(url, application_name)

    def create_schema(self, statements: Sequence[str], *, first_table: str) -> None:
        """Run ``statements`` once, under the schema lock, unless ``first_table`` exists."""
        row = self.execute("SELECT to_regclass(%s) IS NOT NULL", (first_table,)).rows
        if row and row[0][0]:
            return
        with self.transaction():
            self.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in statements:
                self.execute(statement)

    def execute(self, query: str, params: Sequence[object] | dict[str, object] = ()) -> PgResult:
        """Run one statement (inside :meth:`transaction`, or on its own)."""
        try:
            cursor = self._conn.execute(query, params)
            rows = cursor.fetchall() if cursor.description is not None else []
        except psycopg.OperationalError as exc:
            raise StateUnavailableError("postgresql", _first_line(exc)) from None
        return PgResult(rows, cursor.rowcount)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        with self._conn.transaction():
            yield

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
