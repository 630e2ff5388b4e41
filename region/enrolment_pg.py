"""Enrolments, held readings, device descriptions and raw records in the receivers' PostgreSQL.

With a ``postgresql://`` state (:mod:`region.state_pg`) every receiver and ``narhub region
enrol|unenrol|enrolments|unattributed`` use the same database: receivers share who is
enrolled and what is held. psycopg is reached only through :mod:`region.state_pg` (its one
importer): the stores through its :class:`region.state_pg.PgSession`, a batch's filing through
the cursor of the state's own transaction.

Concurrency (PostgreSQL 15 documentation, 13.3.5 "Advisory Locks" and 13.2.1 "Read Committed
Isolation Level"):

* ``enrol`` and ``unenrol`` take an exclusive transaction-level advisory lock on the hub, read
  its enrolments, check (:func:`region.enrolment.conflict`, :func:`region.enrolment.check_end`)
  and write, all in one transaction: two operators cannot both win.
* A batch's filing (:class:`JointFiling`, applied inside the batch's transaction by
  :meth:`region.state_pg.PostgresState.commit_batch`) takes the same lock **shared**, re-reads
  the hub's enrolments and rolls back (:class:`region.state.FilingRaceError`) if they are not
  those the readings were attributed by: the receiver attributes them again. So a reading is
  never filed to an enrolment that ended (or was withdrawn) meanwhile, and ``unenrol`` sees
  every filed time (``filed_until_ms``) it must respect.
* Held readings are inserted (``ON CONFLICT DO NOTHING``) in the same transaction as the
  batch's output and key. Releasing them deletes them there too (``DELETE ... RETURNING``):
  when two receivers release the same readings, the second waits on the first's row locks,
  finds them gone and rolls back, so a held reading is released exactly once.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocols.fhir import DeviceDescription
from protocols.uplink.undecoded import RawRecord
from region.enrolment import Enrolment
from region.enrolment_sql import Run, SqlEnrolmentStore, held_rows, hub_enrolments
from region.enrolment_store import HeldReading
from region.raw_records import (
    MARK_DECODED,
    StoredRawRecord,
    mark_decoded_params,
    records_query,
    stored_records,
)
from region.state import FilingRaceError
from region.state_pg import PgCursor, PgSession

#: First key of the advisory locks on a hub's enrolments (the second: a hash of the hub id).
_HUB_LOCK = 0x6E72_6531

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS enrolments ("
    " id BIGSERIAL PRIMARY KEY, hub TEXT NOT NULL, device TEXT,"
    " patient_system TEXT NOT NULL, patient_value TEXT NOT NULL,"
    " start_ms BIGINT NOT NULL, end_ms BIGINT, filed_until_ms BIGINT)",
    "CREATE INDEX IF NOT EXISTS enrolments_by_hub ON enrolments (hub)",
    "CREATE TABLE IF NOT EXISTS held_readings ("
    " key TEXT PRIMARY KEY, hub TEXT NOT NULL, device TEXT NOT NULL, mdc BIGINT NOT NULL,"
    " t_ms BIGINT NOT NULL, held_ms BIGINT NOT NULL, reading TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS held_by_hub ON held_readings (hub, t_ms)",
    "CREATE TABLE IF NOT EXISTS device_descriptions ("
    " device TEXT PRIMARY KEY, description TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS raw_records ("
    " hub TEXT NOT NULL, device TEXT NOT NULL, uuid TEXT NOT NULL, t_ms BIGINT NOT NULL,"
    " raw BYTEA NOT NULL, decoded_by TEXT, PRIMARY KEY (hub, device, uuid, t_ms, raw))",
)


def _hub_key(hub: str) -> int:
    """The advisory lock's second key for ``hub`` (a signed 32-bit CRC-32)."""
    crc = zlib.crc32(hub.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def open_session(url: str, application_name: str) -> PgSession:
    """A session on the state's database with these tables (created once, under the state's
    schema lock, by whichever receiver or CLI comes first)."""
    session = PgSession(url, application_name)
    session.create_schema(SCHEMA, first_table="enrolments")
    return session


def _pg(query: str) -> str:
    """A statement of :mod:`region.enrolment_sql` (``?`` marks) with psycopg's ``%s``."""
    return query.replace("?", "%s")


def _cursor_run(cursor: PgCursor) -> Run:
    def run(query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        cursor.execute(_pg(query), params)
        return cursor.fetchall() if cursor.description is not None else []

    return run


def _periods(enrolments: Sequence[Enrolment]) -> list[tuple[object, ...]]:
    """What attribution depends on (not the filed times, which filing itself raises)."""
    return [(e.id, e.device, e.patient, e.start_ms, e.end_ms) for e in enrolments]


def _hold(run: Run, held: Sequence[HeldReading]) -> int:
    if not held:
        return 0
    rows = run(
        "INSERT INTO held_readings (key, hub, device, mdc, t_ms, held_ms, reading) "
        "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[],"
        " %s::bigint[], %s::text[]) ORDER BY 1 ON CONFLICT (key) DO NOTHING RETURNING key",
        (*(list(column) for column in zip(*held_rows(held), strict=True)),),
    )
    return len(rows)


def _note_filed(run: Run, filed: Mapping[int, int]) -> None:
    for enrolment_id, t_ms in sorted(filed.items()):  # id order: no deadlock between writers
        run(
            "UPDATE enrolments SET filed_until_ms = GREATEST(COALESCE(filed_until_ms, %s), %s) "
            "WHERE id = %s",
            (t_ms, t_ms, enrolment_id),
        )


@dataclass
class JointFiling:
    """A filing's writes, applied in the batch's transaction (the module docstring)."""

    hub: str
    attributed_by: Sequence[Enrolment]
    held: Sequence[HeldReading] = ()
    filed: Mapping[int, int] | None = None
    released: Sequence[str] = ()
    #: How many of ``held`` were new (set by :meth:`apply`).
    held_new: int = 0

    def apply(self, cursor: PgCursor) -> None:
        """Check the hub's enrolments are unchanged, then release, hold and note."""
        run = _cursor_run(cursor)
        run("SELECT pg_advisory_xact_lock_shared(%s, %s)", (_HUB_LOCK, _hub_key(self.hub)))
        if _periods(hub_enrolments(run, self.hub)) != _periods(self.attributed_by):
            raise FilingRaceError(self.hub, "the hub's enrolments changed during filing")
        if self.released:
            wanted = sorted(set(self.released))
            gone = run("DELETE FROM held_readings WHERE key = ANY(%s) RETURNING key", (wanted,))
            if len(gone) != len(wanted):
                raise FilingRaceError(self.hub, "another receiver released these readings")
        self.held_new = _hold(run, self.held)
        _note_filed(run, self.filed or {})


class PostgresEnrolmentStore(SqlEnrolmentStore):
    """:class:`region.enrolment_store.EnrolmentStore` in the receivers' PostgreSQL."""

    def __init__(self, url: str, *, application_name: str = "narhub-enrolments") -> None:
        self._db = open_session(url, application_name)

    def _run(self, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Run one statement: its rows (none for a statement without)."""
        return self._db.execute(_pg(query), params).rows

    @contextlib.contextmanager
    def _writing(self, hub: str) -> Iterator[None]:
        """One transaction holding the hub's advisory lock (exclusive)."""
        with self._db.transaction():
            self._run("SELECT pg_advisory_xact_lock(%s, %s)", (_HUB_LOCK, _hub_key(hub)))
            yield

    def note_filed(self, filed: Mapping[int, int]) -> None:
        """Raise each enrolment's ``filed_until_ms`` (never lower it)."""
        with self._db.transaction():
            _note_filed(self._run, filed)

    def hold(self, held: Sequence[HeldReading]) -> int:
        """Keep the readings (once per key); committed when this returns."""
        with self._db.transaction():
            return _hold(self._run, held)

    def release(self, keys: Sequence[str]) -> None:
        """Forget held readings that were filed."""
        self._run("DELETE FROM held_readings WHERE key = ANY(%s)", (list(keys),))

    def joint(
        self,
        hub: str,
        attributed_by: Sequence[Enrolment],
        *,
        held: Sequence[HeldReading] = (),
        filed: Mapping[int, int] | None = None,
        released: Sequence[str] = (),
    ) -> JointFiling:
        """The filing's writes, for the PostgreSQL state's batch transaction (same database)."""
        return JointFiling(hub, attributed_by, held, filed, released)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


class PostgresDeviceRegistry:
    """:class:`region.device_registry.DeviceRegistry` in the receivers' PostgreSQL."""

    def __init__(self, url: str, *, application_name: str = "narhub-devices") -> None:
        self._db = open_session(url, application_name)

    def get(self, devices: list[str]) -> dict[str, DeviceDescription]:
        """Known descriptions of ``devices``."""
        rows = self._db.execute(
            "SELECT device, description FROM device_descriptions WHERE device = ANY(%s)",
            (devices,),
        ).rows
        return {str(d): DeviceDescription.from_json(str(text)) for d, text in rows}

    def update(self, seen: Mapping[str, DeviceDescription]) -> dict[str, DeviceDescription]:
        """Merge and store (one transaction, the devices' rows locked in name order)."""
        if not seen:
            return {}
        names = sorted(seen)
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO device_descriptions (device, description) "
                "SELECT unnest(%s::text[]), '{}' ON CONFLICT DO NOTHING",
                (names,),
            )
            rows = self._db.execute(
                "SELECT device, description FROM device_descriptions WHERE device = ANY(%s) "
                "ORDER BY device FOR UPDATE",
                (names,),
            ).rows
            known = {str(d): str(text) for d, text in rows}
            merged = {}
            for device in names:
                old_text = known.get(device, "{}")
                old = None if old_text == "{}" else DeviceDescription.from_json(old_text)
                new = seen[device] if old is None else old.merged(seen[device])
                merged[device] = new
                if new != old:
                    self._db.execute(
                        "UPDATE device_descriptions SET description = %s WHERE device = %s",
                        (new.to_json(), device),
                    )
        return merged

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


class PostgresRawRecords:
    """:class:`region.raw_records.RawRecords` in the receivers' PostgreSQL."""

    def __init__(self, url: str, *, application_name: str = "narhub-raw-records") -> None:
        self._db = open_session(url, application_name)

    def keep(self, hub: str, records: Sequence[RawRecord]) -> int:
        """Insert the records not stored yet."""
        if not records:
            return 0
        with self._db.transaction():
            return sum(
                self._db.execute(
                    "INSERT INTO raw_records (hub, device, uuid, t_ms, raw) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (hub, r.device, r.uuid, r.t_ms, r.raw),
                ).rowcount
                for r in records
            )

    def records(self, *, undecoded_only: bool = True) -> list[StoredRawRecord]:
        """Stored records, oldest first."""
        return stored_records(self._db.execute(records_query(undecoded_only=undecoded_only)).rows)

    def decoded(self, hub: str, record: RawRecord, decoder: str) -> None:
        """Mark one record decoded."""
        self._db.execute(_pg(MARK_DECODED), mark_decoded_params(hub, record, decoder))

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
