"""Plans and facts in SQLite, in the region's state database (WAL, ``synchronous=FULL``).

Per batch a handful of statements, whatever its size: readings are grouped in Python first
(one row per patient and code for the newest reading, one per 5-minute bucket for the
plots, one per device). The SQL is plain enough for PostgreSQL (``BIGINT`` times,
``ON CONFLICT ... DO UPDATE``); only the placeholders differ there.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from protocols.fhir.identity import HUB_DEVICE, is_mac
from region.findings.facts import (
    BatteryFacts,
    DeviceFacts,
    HubFacts,
    IngestedReading,
    Ingestion,
    LatestFacts,
    StatusSeen,
    patient_key,
)
from region.findings.measures import is_board_code
from region.findings.plan import plan_from_json
from region.findings.policy import PlanRecord
from region.findings.store import LatestReading, Point
from region.sqlite_db import open_sqlite

#: Plot buckets as stored (effective time); a plot may merge them into larger ones.
BUCKET_MS = 5 * 60_000
_CHUNK = 500

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS care_plans (patient TEXT PRIMARY KEY, plan TEXT NOT NULL, "
    "since_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fact_hubs (hub TEXT PRIMARY KEY, last_contact_ms BIGINT, "
    "state TEXT, status_identity TEXT, status_received_ms BIGINT)",
    "CREATE TABLE IF NOT EXISTS fact_batteries (hub TEXT NOT NULL, slot INTEGER NOT NULL, "
    "kind TEXT NOT NULL, percent INTEGER NOT NULL, since_ms BIGINT NOT NULL, "
    "PRIMARY KEY (hub, slot))",
    "CREATE TABLE IF NOT EXISTS fact_devices (hub TEXT NOT NULL, device TEXT NOT NULL, "
    "board INTEGER NOT NULL, last_received_ms BIGINT NOT NULL, clock_offset_s BIGINT, "
    "clock_read_ms BIGINT, clock_received_ms BIGINT, PRIMARY KEY (hub, device))",
    "CREATE TABLE IF NOT EXISTS fact_latest (patient TEXT NOT NULL, mdc BIGINT NOT NULL, "
    "t_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL, value TEXT, unit TEXT NOT NULL, "
    "device TEXT NOT NULL, alerted INTEGER NOT NULL, alert_key TEXT, alert_t_ms BIGINT, "
    "alert_received_ms BIGINT, PRIMARY KEY (patient, mdc))",
    "CREATE TABLE IF NOT EXISTS fact_series (patient TEXT NOT NULL, mdc BIGINT NOT NULL, "
    "bucket_ms BIGINT NOT NULL, n INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL, "
    "total REAL NOT NULL, alerts INTEGER NOT NULL, PRIMARY KEY (patient, mdc, bucket_ms))",
)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the state database as the findings use it."""
    return open_sqlite(path, timeout_s=30, check_same_thread=False)


def _marks(values: Collection[object]) -> str:
    return ",".join("?" * len(values))


def _chunks(values: Collection[str] | None) -> Iterable[list[str] | None]:
    if values is None:
        yield None
        return
    items = sorted(values)
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _select_in(
    db: sqlite3.Connection, select: str, column: str, values: Collection[str] | None, tail: str = ""
) -> Iterator[Any]:
    """The rows of ``select`` (every row, or those whose ``column`` is one of ``values``, a
    chunk of them per statement), each statement ending with ``tail``."""
    for part in _chunks(values):
        where = "" if part is None else f" WHERE {column} IN ({_marks(part)})"
        yield from db.execute(f"{select}{where}{tail}", () if part is None else part)


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))


class SqlitePlanStore:
    """:class:`region.findings.store.PlanStore` in SQLite."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._db.execute(SCHEMA[0])
        self._parsed: dict[str, PlanRecord] = {}

    def set_plan(self, patient: str, plan_json: str, at_ms: int) -> None:
        """Store (replace) a plan."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO care_plans (patient, plan, since_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (patient) DO UPDATE SET plan = excluded.plan, "
                "since_ms = excluded.since_ms",
                (patient, plan_json, at_ms),
            )

    def _record(self, plan: str, since_ms: int) -> PlanRecord:
        cache_key = f"{since_ms}:{plan}"
        record = self._parsed.get(cache_key)
        if record is None:
            record = PlanRecord(plan_from_json(plan), since_ms)
            self._parsed[cache_key] = record
        return record

    def plan(self, patient: str) -> PlanRecord | None:
        """The patient's plan."""
        row = self._db.execute(
            "SELECT plan, since_ms FROM care_plans WHERE patient = ?", (patient,)
        ).fetchone()
        return None if row is None else self._record(str(row[0]), int(row[1]))

    def plans(self, patients: Collection[str] | None = None) -> dict[str, PlanRecord]:
        """Every plan, or those of ``patients``."""
        rows = _select_in(
            self._db, "SELECT patient, plan, since_ms FROM care_plans", "patient", patients
        )
        return {str(patient): self._record(str(plan), int(since)) for patient, plan, since in rows}

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


class _Latest:
    """The newest reading of a patient's code while a batch is folded in."""

    __slots__ = ("alert", "device", "t_ms", "unit", "value")

    def __init__(self, row: tuple[object, ...] | None) -> None:
        self.t_ms: int | None = None
        self.alert: tuple[str, int, int] | None = None
        if row is not None:
            t, alert_key, alert_t, alert_received = row
            self.t_ms = int(str(t))
            if alert_key is not None:
                self.alert = (str(alert_key), int(str(alert_t)), int(str(alert_received)))


class SqliteFactStore:
    """:class:`region.findings.store.FactStore` in SQLite."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        for statement in SCHEMA[1:]:
            self._db.execute(statement)

    # -- recording --------------------------------------------------------------------------

    def record_ingestion(self, ingestion: Ingestion) -> None:
        """Fold a batch into the facts (one transaction)."""
        hub, received = ingestion.hub, ingestion.received_ms
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._contact(hub, received)
            self._devices(hub, received, ingestion.readings)
            by_code: dict[tuple[str, int], list[IngestedReading]] = defaultdict(list)
            for r in ingestion.readings:
                if r.patient is not None:
                    by_code[(patient_key(r.patient), r.mdc_code)].append(r)
            for (patient, mdc), readings in by_code.items():
                self._latest(patient, mdc, readings, received)
                self._series(patient, mdc, readings)

    def _contact(self, hub: str, received: int) -> None:
        self._db.execute(
            "INSERT INTO fact_hubs (hub, last_contact_ms) VALUES (?, ?) ON CONFLICT (hub) DO "
            "UPDATE SET last_contact_ms = MAX(COALESCE(fact_hubs.last_contact_ms, 0), "
            "excluded.last_contact_ms)",
            (hub, received),
        )

    def _devices(self, hub: str, received: int, readings: Iterable[IngestedReading]) -> None:
        seen: dict[str, bool] = {}
        clocks: dict[str, tuple[int, int]] = {}
        for r in readings:
            if r.device == HUB_DEVICE:
                continue
            seen[r.device] = (
                seen.get(r.device, False) or is_board_code(r.mdc_code) or not is_mac(r.device)
            )
            read = r.clock_read()
            if read is not None and (r.device not in clocks or read[1] > clocks[r.device][1]):
                clocks[r.device] = read
        for device, board in seen.items():
            self._db.execute(
                "INSERT INTO fact_devices (hub, device, board, last_received_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (hub, device) DO UPDATE SET "
                "last_received_ms = MAX(fact_devices.last_received_ms, excluded.last_received_ms)",
                (hub, device, int(board), received),
            )
        for device, (offset, read_ms) in clocks.items():
            # The newest clock read by the hub's own clock (it orders reads of one hub only).
            self._db.execute(
                "UPDATE fact_devices SET clock_offset_s = ?, clock_read_ms = ?, "
                "clock_received_ms = ? WHERE hub = ? AND device = ? "
                "AND (clock_read_ms IS NULL OR clock_read_ms < ?)",
                (offset, read_ms, received, hub, device, read_ms),
            )

    def _latest(
        self, patient: str, mdc: int, readings: list[IngestedReading], received: int
    ) -> None:
        row = self._db.execute(
            "SELECT t_ms, alert_key, alert_t_ms, alert_received_ms FROM fact_latest "
            "WHERE patient = ? AND mdc = ?",
            (patient, mdc),
        ).fetchone()
        state = _Latest(row)
        newest: IngestedReading | None = None
        for r in sorted(readings, key=lambda r: r.t_ms):
            if state.t_ms is not None and r.t_ms <= state.t_ms:
                continue  # older (or the same, replayed): not the newest, not a new alert
            state.t_ms = r.t_ms
            newest = r
            if not r.alerted:
                state.alert = None
            elif state.alert is None:
                state.alert = (r.key, r.t_ms, received)
        if newest is None:
            return
        alert = state.alert or (None, None, None)
        self._db.execute(
            "INSERT INTO fact_latest (patient, mdc, t_ms, received_ms, value, unit, device, "
            "alerted, alert_key, alert_t_ms, alert_received_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (patient, mdc) DO UPDATE SET "
            "t_ms = excluded.t_ms, received_ms = excluded.received_ms, value = excluded.value, "
            "unit = excluded.unit, device = excluded.device, alerted = excluded.alerted, "
            "alert_key = excluded.alert_key, alert_t_ms = excluded.alert_t_ms, "
            "alert_received_ms = excluded.alert_received_ms",
            (
                patient,
                mdc,
                newest.t_ms,
                received,
                None if newest.value is None else str(newest.value),
                newest.unit,
                newest.device,
                int(newest.alerted),
                *alert,
            ),
        )

    def _series(self, patient: str, mdc: int, readings: list[IngestedReading]) -> None:
        buckets: dict[int, list[float]] = {}
        alerts: dict[int, int] = defaultdict(int)
        for r in readings:
            if r.value is None:
                continue
            bucket = r.t_ms - r.t_ms % BUCKET_MS
            buckets.setdefault(bucket, []).append(float(r.value))
            alerts[bucket] += r.alerted
        self._db.executemany(
            "INSERT INTO fact_series (patient, mdc, bucket_ms, n, low, high, total, alerts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (patient, mdc, bucket_ms) DO UPDATE SET "
            "n = fact_series.n + excluded.n, low = MIN(fact_series.low, excluded.low), "
            "high = MAX(fact_series.high, excluded.high), "
            "total = fact_series.total + excluded.total, "
            "alerts = fact_series.alerts + excluded.alerts",
            [
                (patient, mdc, b, len(v), min(v), max(v), sum(v), alerts[b])
                for b, v in buckets.items()
            ],
        )

    def record_status(self, seen: StatusSeen) -> bool:
        """Fold a status in: a document already recorded changes nothing; a retained copy
        updates the state and batteries but is no contact; a live ``online`` one is."""
        status = seen.status
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT status_identity FROM fact_hubs WHERE hub = ?", (status.hub,)
            ).fetchone()
            if row is not None and row[0] == status.identity:
                return False
            live_online = not seen.retained and status.state == "online"
            self._db.execute(
                "INSERT INTO fact_hubs (hub, last_contact_ms, state, status_identity, "
                "status_received_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (hub) DO UPDATE SET "
                "last_contact_ms = MAX(COALESCE(fact_hubs.last_contact_ms, 0), "
                "COALESCE(excluded.last_contact_ms, 0)), state = excluded.state, "
                "status_identity = excluded.status_identity, "
                "status_received_ms = excluded.status_received_ms",
                (
                    status.hub,
                    seen.received_ms if live_online else None,
                    status.state,
                    status.identity,
                    seen.received_ms,
                ),
            )
            for d in status.devices:
                if d.battery_percent is None:
                    continue
                self._db.execute(
                    "INSERT INTO fact_batteries (hub, slot, kind, percent, since_ms) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (hub, slot) DO UPDATE SET "
                    "kind = excluded.kind, since_ms = CASE WHEN fact_batteries.percent = "
                    "excluded.percent THEN fact_batteries.since_ms ELSE excluded.since_ms END, "
                    "percent = excluded.percent",
                    (status.hub, d.slot, d.kind, d.battery_percent, seen.received_ms),
                )
        return True

    # -- loading ----------------------------------------------------------------------------

    def hubs(self, hubs: Collection[str] | None = None) -> dict[str, HubFacts]:
        """Hub facts with their batteries."""
        batteries: dict[str, list[BatteryFacts]] = defaultdict(list)
        out: dict[str, HubFacts] = {}
        for hub, slot, kind, percent, since in _select_in(
            self._db,
            "SELECT hub, slot, kind, percent, since_ms FROM fact_batteries",
            "hub",
            hubs,
            " ORDER BY hub, slot",
        ):
            batteries[str(hub)].append(BatteryFacts(int(slot), str(kind), int(percent), int(since)))
        for hub, contact, state in _select_in(
            self._db, "SELECT hub, last_contact_ms, state FROM fact_hubs", "hub", hubs
        ):
            name = str(hub)
            contact_ms = None if contact in (None, 0) else int(contact)
            out[name] = HubFacts(name, contact_ms, state, tuple(batteries.get(name, ())))
        for name, found in batteries.items():
            out.setdefault(name, HubFacts(name, None, None, tuple(found)))
        return out

    def devices(self, hubs: Collection[str] | None = None) -> list[DeviceFacts]:
        """Device facts."""
        rows = _select_in(
            self._db,
            "SELECT hub, device, board, last_received_ms, clock_offset_s, clock_read_ms, "
            "clock_received_ms FROM fact_devices",
            "hub",
            hubs,
            " ORDER BY hub, device",
        )
        return [
            DeviceFacts(
                str(hub),
                str(device),
                bool(board),
                int(last),
                _int_or_none(offset),
                None if read is None else f"{device}@{read}",
                _int_or_none(clock_received),
            )
            for hub, device, board, last, offset, read, clock_received in rows
        ]

    def latest(self, patients: Collection[str] | None = None) -> list[LatestFacts]:
        """Newest reading per patient and code, with its alert run."""
        rows = _select_in(
            self._db,
            "SELECT patient, mdc, t_ms, received_ms, alert_key, alert_t_ms, alert_received_ms "
            "FROM fact_latest",
            "patient",
            patients,
        )
        return [
            LatestFacts(
                str(p),
                int(m),
                int(t),
                int(r),
                None if k is None else str(k),
                _int_or_none(at),
                _int_or_none(ar),
            )
            for p, m, t, r, k, at, ar in rows
        ]

    def latest_readings(self, patient: str) -> list[LatestReading]:
        """A patient's newest reading per code."""
        rows = self._db.execute(
            "SELECT mdc, value, unit, t_ms, received_ms, device, alerted FROM fact_latest "
            "WHERE patient = ? ORDER BY mdc",
            (patient,),
        )
        return [
            LatestReading(
                int(m), None if v is None else str(v), str(u), int(t), int(r), str(d), bool(a)
            )
            for m, v, u, t, r, d, a in rows
        ]

    def series(self, patient: str, mdc_code: int, from_ms: int, bucket_ms: int) -> list[Point]:
        """Readings of a code since ``from_ms`` in buckets of ``bucket_ms``."""
        size = max(BUCKET_MS, bucket_ms - bucket_ms % BUCKET_MS)
        rows = self._db.execute(
            "SELECT bucket_ms - (bucket_ms % ?) AS b, MIN(low), SUM(total), MAX(high), SUM(n), "
            "SUM(alerts) FROM fact_series WHERE patient = ? AND mdc = ? AND bucket_ms >= ? "
            "GROUP BY b ORDER BY b",
            (size, patient, mdc_code, from_ms - from_ms % BUCKET_MS),
        )
        return [
            Point(int(b), float(low), float(total) / int(n), float(high), int(n), int(alerts))
            for b, low, total, high, n, alerts in rows
        ]

    def last_status_ms(self, hub: str) -> int | None:
        """When the region last received a status of the hub (ingestion time)."""
        row = self._db.execute(
            "SELECT status_received_ms FROM fact_hubs WHERE hub = ?", (hub,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def plan_json(plan: dict[str, object]) -> str:
    """A plan's JSON text as stored (keys sorted, compact)."""
    return json.dumps(plan, sort_keys=True, separators=(",", ":"))
