"""The enrolment store in SQLite: the embedded default, in the receiver's state database.

WAL and ``synchronous=FULL`` (a held reading is on disk when :meth:`hold` returns); each
write is one ``BEGIN IMMEDIATE`` transaction, so an overlap check and its insert cannot
interleave with another writer's (SQLite serialises writers). The SQL is plain enough for
PostgreSQL (``BIGINT`` times, ``ON CONFLICT DO NOTHING``): only the placeholders and the id
column differ there.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from protocols.fhir.identity import PatientRef
from protocols.uplink.wire_reading import WireReading
from region.enrolment import (
    Enrolment,
    EnrolmentRequest,
    NotEnrolledError,
    OverlapError,
    check_end,
    conflict,
    ending,
)
from region.enrolment_store import HeldReading

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
_COLUMNS = "id, hub, device, patient_system, patient_value, start_ms, end_ms, filed_until_ms"
_HELD = "key, hub, held_ms, reading FROM held_readings"
_HELD_ORDER = " ORDER BY hub, t_ms, device, mdc, key"


def reading_json(reading: WireReading) -> str:
    """A wire reading as JSON text (the value as its exact decimal text)."""
    return json.dumps(
        {
            "stream": reading.stream,
            "mdc": reading.mdc_code,
            "unit": reading.unit,
            "t_ms": reading.t_ms,
            "value": None if reading.value is None else str(reading.value),
            "special": reading.special,
            "flags": sorted(reading.flags),
            "device": reading.device,
        },
        separators=(",", ":"),
    )


def reading_from_json(text: str) -> WireReading:
    """The wire reading of :func:`reading_json`."""
    data = json.loads(text)
    value = data["value"]
    return WireReading(
        stream=data["stream"],
        mdc_code=int(data["mdc"]),
        unit=data["unit"],
        t_ms=int(data["t_ms"]),
        value=None if value is None else Decimal(value),
        special=data["special"],
        flags=frozenset(data["flags"]),
        device=data["device"],
    )


def _enrolment(row: tuple[object, ...]) -> Enrolment:
    id_, hub, device, system, value, start, end, filed = row
    return Enrolment(
        id=int(str(id_)),
        hub=str(hub),
        patient=PatientRef(str(system), str(value)),
        start_ms=int(str(start)),
        end_ms=None if end is None else int(str(end)),
        device=None if device is None else str(device),
        filed_until_ms=None if filed is None else int(str(filed)),
    )


class SqliteEnrolmentStore:
    """:class:`region.enrolment_store.EnrolmentStore` in an SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA:
            self._db.execute(statement)

    def _hub_enrolments(self, hub: str) -> list[Enrolment]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM enrolments WHERE hub = ? ORDER BY start_ms, id",  # noqa: S608
            (hub,),
        )
        return [_enrolment(row) for row in rows]

    def enrol(self, request: EnrolmentRequest) -> Enrolment:
        """Insert it unless it overlaps one of its scope (one transaction)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            existing = conflict(request, self._hub_enrolments(request.hub))
            if existing is not None:
                raise OverlapError(request, existing)
            cursor = self._db.execute(
                "INSERT INTO enrolments (hub, device, patient_system, patient_value, "
                "start_ms, end_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    request.hub,
                    request.device,
                    request.patient.system,
                    request.patient.value,
                    request.start_ms,
                    request.end_ms,
                ),
            )
            new_id = cursor.lastrowid
        assert new_id is not None
        return Enrolment(
            new_id, request.hub, request.patient, request.start_ms, request.end_ms, request.device
        )

    def unenrol(self, hub: str, device: str | None, at_ms: int) -> Enrolment:
        """End (or withdraw) the enrolment covering ``at_ms`` (one transaction)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            found = ending(self._hub_enrolments(hub), device, at_ms)
            if found is None:
                raise NotEnrolledError(hub, device, at_ms)
            check_end(found, at_ms)
            if at_ms == found.start_ms:
                self._db.execute("DELETE FROM enrolments WHERE id = ?", (found.id,))
            else:
                self._db.execute("UPDATE enrolments SET end_ms = ? WHERE id = ?", (at_ms, found.id))
        return found

    def enrolments(self, hub: str | None = None) -> list[Enrolment]:
        """The enrolments, by hub, device and start."""
        if hub is not None:
            return self._hub_enrolments(hub)
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM enrolments ORDER BY hub, device, start_ms, id"  # noqa: S608
        )
        return [_enrolment(row) for row in rows]

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
        if not held:
            return 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany(
                "INSERT INTO held_readings (key, hub, device, mdc, t_ms, held_ms, reading) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                [
                    (
                        h.key,
                        h.hub,
                        h.reading.device,
                        h.reading.mdc_code,
                        h.reading.t_ms,
                        h.held_ms,
                        reading_json(h.reading),
                    )
                    for h in held
                ],
            )
            return self._db.total_changes - before

    def held(self, hub: str | None = None) -> list[HeldReading]:
        """The held readings, by hub and time."""
        if hub is None:
            rows = self._db.execute(f"SELECT {_HELD}{_HELD_ORDER}")
        else:
            rows = self._db.execute(
                f"SELECT {_HELD} WHERE hub = ?{_HELD_ORDER}",
                (hub,),
            )
        return [
            HeldReading(str(key), str(h), reading_from_json(str(text)), int(ms))
            for key, h, ms, text in rows
        ]

    def held_hubs(self) -> list[str]:
        """The hubs with held readings."""
        rows = self._db.execute("SELECT DISTINCT hub FROM held_readings ORDER BY hub")
        return [str(row[0]) for row in rows]

    def release(self, keys: Sequence[str]) -> None:
        """Forget held readings that were filed."""
        if not keys:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM held_readings WHERE key = ?", [(k,) for k in keys])

    def joint(
        self,
        hub: str,
        attributed_by: Sequence[Enrolment],
        *,
        held: Sequence[HeldReading] = (),
        filed: Mapping[int, int] | None = None,
        released: Sequence[str] = (),
    ) -> None:
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
