"""Findings, their history and acknowledgements in SQLite (the region's state database).

Two unique indexes carry the rules: one open finding per key (a partial index on the open
ones), and one finding per key and evidence ever (never raised twice from the same data).
:meth:`SqliteFindingStore.apply` is one ``BEGIN IMMEDIATE`` transaction; an insert the
second index refuses (``ON CONFLICT DO NOTHING``) is simply not opened.

When the region posts to a FHIR server (:mod:`region.fhir_post`: the state database has a
``fhir_queue``), the same transaction queues the changed findings' resources
(:mod:`region.findings.fhir`) as one Bundle there, which the receiver's poster posts in
order: a change is never committed without its FHIR update, nor the other way round. That
holds for every process that changes findings in the file (``narhub region ingest``, the
worklist's acknowledgements, ``narhub region findings``), whichever started first.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from protocols.fhir import dumps_exact
from region.findings.errors import UnknownFindingError
from region.findings.fhir import resource
from region.findings.lifecycle import Changes
from region.findings.model import Condition, Finding, FindingEvent
from region.findings.sqlite_facts import connect
from region.findings.store_sql import COLUMNS as _COLUMNS
from region.findings.store_sql import detail_json as _json
from region.findings.store_sql import finding_of_row as _finding
from region.state_sqlite import SQLITE_QUEUE_SCHEMA

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS findings (id INTEGER PRIMARY KEY, key TEXT NOT NULL, "
    "evidence TEXT NOT NULL, kind TEXT NOT NULL, hub TEXT NOT NULL, patient TEXT, device TEXT, "
    "opened_ms BIGINT NOT NULL, noticed_ms BIGINT NOT NULL, closed_ms BIGINT, "
    "detail TEXT NOT NULL, ack_by TEXT, ack_ms BIGINT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS findings_once ON findings (key, evidence)",
    "CREATE UNIQUE INDEX IF NOT EXISTS findings_open ON findings (key) WHERE closed_ms IS NULL",
    "CREATE INDEX IF NOT EXISTS findings_by_patient ON findings (patient, opened_ms)",
    "CREATE INDEX IF NOT EXISTS findings_by_hub ON findings (hub, opened_ms)",
    "CREATE TABLE IF NOT EXISTS finding_events (finding_id BIGINT NOT NULL, at_ms BIGINT NOT "
    "NULL, event TEXT NOT NULL, by_user TEXT, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS finding_events_by_finding ON finding_events (finding_id, at_ms)",
)
_CHUNK = 500


class SqliteFindingStore:
    """:class:`region.findings.store.FindingStore` in SQLite."""

    def __init__(self, path: Path, *, fhir_queue: bool = False) -> None:
        """``fhir_queue``: make the FHIR queue (changes are queued whenever it exists)."""
        self._db = connect(path)
        for statement in (*SCHEMA, SQLITE_QUEUE_SCHEMA) if fhir_queue else SCHEMA:
            self._db.execute(statement)

    def _queue(self, findings: list[Finding]) -> None:
        queue = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fhir_queue'"
        ).fetchone()
        if queue is not None and findings:
            lines = "\n".join(dumps_exact(resource(f)) for f in findings)
            self._db.execute("INSERT INTO fhir_queue(lines) VALUES (?)", (lines,))

    def open_findings(self, hubs: Collection[str] | None = None) -> list[Finding]:
        """Open findings."""
        if hubs is None:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM findings WHERE closed_ms IS NULL"  # noqa: S608
            ).fetchall()
            return [_finding(r) for r in rows]
        out = []
        names = sorted(hubs)
        for i in range(0, len(names), _CHUNK):
            part = names[i : i + _CHUNK]
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM findings WHERE closed_ms IS NULL "  # noqa: S608
                f"AND hub IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
            out += [_finding(r) for r in rows]
        return out

    def _event(
        self, finding_id: int, at_ms: int, event: str, by: str | None, detail: dict[str, Any]
    ) -> None:
        self._db.execute(
            "INSERT INTO finding_events (finding_id, at_ms, event, by_user, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (finding_id, at_ms, event, by, _json(detail)),
        )

    def _open(self, c: Condition, now_ms: int) -> int | None:
        closed = c.since_ms if c.quiet else None
        cursor = self._db.execute(
            "INSERT INTO findings (key, evidence, kind, hub, patient, device, opened_ms, "
            "noticed_ms, closed_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                c.key,
                c.evidence,
                c.kind.value,
                c.hub,
                c.patient,
                c.device,
                c.since_ms,
                now_ms,
                closed,
                _json(c.detail),
            ),
        )
        if cursor.rowcount != 1 or cursor.lastrowid is None:
            return None
        finding_id = int(cursor.lastrowid)
        self._event(finding_id, c.since_ms, "opened", None, c.detail)
        if c.quiet:
            self._event(finding_id, c.since_ms, "recorded-quiet", None, {"stale": True})
        return finding_id

    def apply(self, changes: Changes, now_ms: int) -> list[Finding]:
        """Open, update and close in one transaction; the changed findings as they are now."""
        if not changes:
            return []
        touched: list[int] = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for finding in changes.closed:
                cursor = self._db.execute(
                    "UPDATE findings SET closed_ms = ? WHERE id = ? AND closed_ms IS NULL",
                    (max(now_ms, finding.opened_ms), finding.id),
                )
                if cursor.rowcount:
                    self._event(finding.id, max(now_ms, finding.opened_ms), "closed", None, {})
                    touched.append(finding.id)
            for finding, condition in changes.updated:
                self._db.execute(
                    "UPDATE findings SET detail = ? WHERE id = ? AND closed_ms IS NULL",
                    (_json(condition.detail), finding.id),
                )
                touched.append(finding.id)
            for condition in changes.opened:
                new_id = self._open(condition, now_ms)
                if new_id is not None:
                    touched.append(new_id)
            changed = [_finding(r) for r in self._select_ids(touched)]
            self._queue(changed)
        return changed

    def _select_ids(self, ids: list[int]) -> list[Any]:
        rows: list[Any] = []
        for i in range(0, len(ids), _CHUNK):
            part = ids[i : i + _CHUNK]
            rows += self._db.execute(
                f"SELECT {_COLUMNS} FROM findings WHERE id IN ({','.join('?' * len(part))})",  # noqa: S608
                part,
            ).fetchall()
        return rows

    def acknowledge(self, finding_id: int, who: str, at_ms: int) -> Finding:
        """Record the first acknowledgement (a second one changes nothing)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "UPDATE findings SET ack_by = ?, ack_ms = ? WHERE id = ? AND ack_by IS NULL",
                (who, at_ms, finding_id),
            )
            finding = self.finding(finding_id)
            if cursor.rowcount:
                self._event(finding_id, at_ms, "acknowledged", who, {})
                self._queue([finding])
        return finding

    def finding(self, finding_id: int) -> Finding:
        """One finding."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM findings WHERE id = ?",  # noqa: S608
            (finding_id,),
        ).fetchone()
        if row is None:
            raise UnknownFindingError(finding_id)
        return _finding(row)

    def findings(
        self, *, patient: str | None = None, hubs: Collection[str] | None = None, limit: int = 200
    ) -> list[Finding]:
        """Findings, newest first."""
        clauses, args = [], []
        if patient is not None:
            clauses.append("patient = ?")
            args.append(patient)
        if hubs is not None:
            names = sorted(hubs)[:_CHUNK]
            clauses.append(f"hub IN ({','.join('?' * len(names))})")
            args += names
        where = f" WHERE {' OR '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM findings{where} ORDER BY opened_ms DESC, id DESC LIMIT ?",  # noqa: S608
            [*args, limit],
        ).fetchall()
        return [_finding(r) for r in rows]

    def history(self, finding_ids: Sequence[int]) -> list[FindingEvent]:
        """The findings' events, oldest first."""
        out = []
        for i in range(0, len(finding_ids), _CHUNK):
            part = list(finding_ids[i : i + _CHUNK])
            rows = self._db.execute(
                "SELECT finding_id, at_ms, event, by_user, detail FROM finding_events "  # noqa: S608
                f"WHERE finding_id IN ({','.join('?' * len(part))}) ORDER BY at_ms, rowid",
                part,
            )
            out += [
                FindingEvent(
                    int(f), int(at), str(e), None if by is None else str(by), json.loads(d)
                )
                for f, at, e, by, d in rows
            ]
        out.sort(key=lambda e: e.at_ms)
        return out

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
