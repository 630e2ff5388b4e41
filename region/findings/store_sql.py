"""What the findings stores in SQL share (no I/O here): the columns read back, a row as a
:class:`region.findings.model.Finding` or :class:`region.findings.model.FindingEvent`, and
:class:`SqlFindingStore`, the store's rules over a dialect's connection (SQLite:
:mod:`region.findings.sqlite_findings`, PostgreSQL: :mod:`region.findings.store_pg`).

Statements are written once, with SQLite's ``?`` parameter marks; a dialect with other marks
rewrites them in its ``_execute`` (no statement here holds a literal ``?`` or ``%``). A new
finding is ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` in both (SQLite documentation,
"The RETURNING Clause", since 3.35; PostgreSQL documentation, INSERT): a row the unique
indexes refuse returns no id and is simply not opened."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any

from protocols.fhir import dumps_exact
from region.findings.errors import UnknownFindingError
from region.findings.fhir import resource
from region.findings.lifecycle import Changes
from region.findings.model import Condition, Finding, FindingEvent, Kind

COLUMNS = (
    "id, key, kind, evidence, hub, patient, device, opened_ms, noticed_ms, closed_ms, detail, "
    "ack_by, ack_ms"
)


def findings_schema(id_column: str) -> tuple[str, ...]:
    """The findings table and its indexes, with the dialect's ``id_column`` (an integer key
    the database assigns): the two unique indexes carry the rules (one open finding per key,
    one finding per key and evidence ever)."""
    return (
        f"CREATE TABLE IF NOT EXISTS findings (id {id_column}, key TEXT NOT NULL, "
        "evidence TEXT NOT NULL, kind TEXT NOT NULL, hub TEXT NOT NULL, patient TEXT, "
        "device TEXT, opened_ms BIGINT NOT NULL, noticed_ms BIGINT NOT NULL, closed_ms BIGINT, "
        "detail TEXT NOT NULL, ack_by TEXT, ack_ms BIGINT)",
        "CREATE UNIQUE INDEX IF NOT EXISTS findings_once ON findings (key, evidence)",
        "CREATE UNIQUE INDEX IF NOT EXISTS findings_open ON findings (key) WHERE closed_ms IS NULL",
        "CREATE INDEX IF NOT EXISTS findings_by_patient ON findings (patient, opened_ms)",
        "CREATE INDEX IF NOT EXISTS findings_by_hub ON findings (hub, opened_ms)",
    )


_SELECT = f"SELECT {COLUMNS} FROM findings"  # noqa: S608 - fixed column names
_EVENTS = "SELECT finding_id, at_ms, event, by_user, detail FROM finding_events"


def finding_of_row(row: Sequence[Any]) -> Finding:
    """A row of :data:`COLUMNS` as a finding."""
    id_, key, kind, evidence, hub, patient, device, opened, noticed, closed, detail, by, at = row
    return Finding(
        int(id_),
        str(key),
        Kind(kind),
        str(evidence),
        str(hub),
        None if patient is None else str(patient),
        None if device is None else str(device),
        int(opened),
        int(noticed),
        None if closed is None else int(closed),
        json.loads(detail),
        None if by is None else str(by),
        None if at is None else int(at),
    )


def detail_json(detail: dict[str, Any]) -> str:
    """A finding's detail as stored (sorted keys, compact: equal details, equal text)."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


def event_of_row(row: Sequence[Any]) -> FindingEvent:
    """A row of a finding's event (``finding_id, at_ms, event, by_user, detail``)."""
    finding_id, at_ms, event, by, detail = row
    return FindingEvent(
        int(finding_id), int(at_ms), str(event), None if by is None else str(by), json.loads(detail)
    )


class SqlFindingStore(ABC):
    """:class:`region.findings.store.FindingStore` over one SQL connection: the rules, in
    the two unique indexes and in ``UPDATE ... WHERE closed_ms IS NULL`` (``ack_by IS
    NULL``): a change another writer made first changes nothing, and only the writer that
    changed a row writes its event and queues its FHIR resource."""

    _chunk: int | None = None
    """At most this many values in one ``IN`` (``None``: any number)."""
    _event_order = "rowid"
    """The column that orders one finding's events written in the same millisecond."""

    @abstractmethod
    def _execute(self, sql: str, args: Sequence[object] = ()) -> tuple[list[Sequence[Any]], int]:
        """Run one statement (``?`` marks): its rows (none for a statement without) and
        rowcount."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[object]:
        """One write transaction: committed when the block ends, rolled back when it raises."""

    @abstractmethod
    def _in(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        """``column`` is one of ``values`` (at most :attr:`_chunk` of them): the clause and
        its arguments."""

    @abstractmethod
    def _has_queue(self) -> bool:
        """Whether changes are queued for the FHIR posters (``fhir_queue``)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def _parts(self, values: Sequence[object]) -> list[list[object]]:
        size = self._chunk or max(len(values), 1)
        return [list(values[i : i + size]) for i in range(0, len(values), size)]

    def _select_in(self, select: str, column: str, values: Sequence[object]) -> list[Any]:
        rows: list[Any] = []
        for part in self._parts(values):
            clause, args = self._in(column, part)
            rows += self._execute(f"{select} {clause}", args)[0]
        return rows

    def _queue(self, findings: list[Finding]) -> None:
        if findings and self._has_queue():
            lines = "\n".join(dumps_exact(resource(f)) for f in findings)
            self._execute("INSERT INTO fhir_queue (lines) VALUES (?)", (lines,))

    def _event(
        self, finding_id: int, at_ms: int, event: str, by: str | None, detail: dict[str, Any]
    ) -> None:
        self._execute(
            "INSERT INTO finding_events (finding_id, at_ms, event, by_user, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (finding_id, at_ms, event, by, detail_json(detail)),
        )

    def _open(self, c: Condition, now_ms: int) -> int | None:
        rows, _ = self._execute(
            "INSERT INTO findings (key, evidence, kind, hub, patient, device, opened_ms, "
            "noticed_ms, closed_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING id",
            (
                c.key,
                c.evidence,
                c.kind.value,
                c.hub,
                c.patient,
                c.device,
                c.since_ms,
                now_ms,
                c.since_ms if c.quiet else None,
                detail_json(c.detail),
            ),
        )
        if not rows:
            return None
        finding_id = int(rows[0][0])
        self._event(finding_id, c.since_ms, "opened", None, c.detail)
        if c.quiet:
            self._event(finding_id, c.since_ms, "recorded-quiet", None, {"stale": True})
        return finding_id

    def open_findings(self, hubs: Collection[str] | None = None) -> list[Finding]:
        """Open findings."""
        select = f"{_SELECT} WHERE closed_ms IS NULL"
        if hubs is None:
            rows = self._execute(select)[0]
        else:
            rows = self._select_in(f"{select} AND", "hub", sorted(hubs))
        return [finding_of_row(r) for r in rows]

    def apply(self, changes: Changes, now_ms: int) -> list[Finding]:
        """Open, update and close in one transaction; the changed findings as they are now."""
        if not changes:
            return []
        touched: list[int] = []
        with self._transaction():
            for finding in changes.closed:
                at = max(now_ms, finding.opened_ms)
                _, done = self._execute(
                    "UPDATE findings SET closed_ms = ? WHERE id = ? AND closed_ms IS NULL",
                    (at, finding.id),
                )
                if done:
                    self._event(finding.id, at, "closed", None, {})
                    touched.append(finding.id)
            for finding, condition in changes.updated:
                _, done = self._execute(
                    "UPDATE findings SET detail = ? WHERE id = ? AND closed_ms IS NULL",
                    (detail_json(condition.detail), finding.id),
                )
                if done:
                    touched.append(finding.id)
            for condition in changes.opened:
                new_id = self._open(condition, now_ms)
                if new_id is not None:
                    touched.append(new_id)
            changed = [
                finding_of_row(r) for r in self._select_in(f"{_SELECT} WHERE", "id", touched)
            ]
            self._queue(changed)
        return changed

    def acknowledge(self, finding_id: int, who: str, at_ms: int) -> Finding:
        """Record the first acknowledgement (a second one changes nothing)."""
        with self._transaction():
            _, done = self._execute(
                "UPDATE findings SET ack_by = ?, ack_ms = ? WHERE id = ? AND ack_by IS NULL",
                (who, at_ms, finding_id),
            )
            finding = self.finding(finding_id)
            if done:
                self._event(finding_id, at_ms, "acknowledged", who, {})
                self._queue([finding])
        return finding

    def finding(self, finding_id: int) -> Finding:
        """One finding."""
        rows, _ = self._execute(f"{_SELECT} WHERE id = ?", (finding_id,))
        if not rows:
            raise UnknownFindingError(finding_id)
        return finding_of_row(rows[0])

    def findings(
        self, *, patient: str | None = None, hubs: Collection[str] | None = None, limit: int = 200
    ) -> list[Finding]:
        """Findings, newest first (of a patient or hubs; of the first :attr:`_chunk` hubs
        where the dialect limits an ``IN``)."""
        clauses: list[str] = []
        args: list[object] = []
        if patient is not None:
            clauses.append("patient = ?")
            args.append(patient)
        if hubs is not None:
            clause, hub_args = self._in("hub", sorted(hubs)[: self._chunk])
            clauses.append(clause)
            args += hub_args
        where = f" WHERE {' OR '.join(clauses)}" if clauses else ""
        rows, _ = self._execute(
            f"{_SELECT}{where} ORDER BY opened_ms DESC, id DESC LIMIT ?", [*args, limit]
        )
        return [finding_of_row(r) for r in rows]

    def history(self, finding_ids: Sequence[int]) -> list[FindingEvent]:
        """The findings' events, oldest first."""
        select = f"{_EVENTS} WHERE"
        out: list[FindingEvent] = []
        for part in self._parts(finding_ids):
            clause, args = self._in("finding_id", part)
            rows, _ = self._execute(f"{select} {clause} ORDER BY at_ms, {self._event_order}", args)
            out += [event_of_row(r) for r in rows]
        out.sort(key=lambda e: e.at_ms)
        return out
