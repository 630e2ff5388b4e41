"""Findings, their history and acknowledgements in PostgreSQL, shared by several region
instances (:class:`region.findings.store.FindingStore`; psycopg through
:class:`region.state_pg.PgSession`, the one module that imports it).

The rules are the SQLite store's (:mod:`region.findings.sqlite_findings`) and sit in the same
two unique indexes: one open finding per key (a partial index on the open ones) and one
finding per key and evidence ever. :meth:`PostgresFindingStore.apply` is one transaction
whose inserts are ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: when another instance
is opening the same finding in a transaction not yet committed, PostgreSQL makes this insert
wait for it and then does nothing (PostgreSQL documentation, INSERT, "ON CONFLICT Clause",
and chapter 13.2.1 Read Committed), so two instances judging the same data raise it once.
A close or acknowledgement is an ``UPDATE ... WHERE closed_ms IS NULL`` (``ack_by IS NULL``):
the second instance's changes nothing, and only the one that changed a row writes its event.

With ``fhir_queue`` the same transaction queues the changed findings' resources in the
receivers' shared ``fhir_queue`` (:mod:`region.state_pg`), which their posters post.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from protocols.fhir import dumps_exact
from region.findings.errors import UnknownFindingError
from region.findings.fhir import resource
from region.findings.lifecycle import Changes
from region.findings.model import Condition, Finding, FindingEvent
from region.findings.store_sql import COLUMNS, detail_json, finding_of_row
from region.state_pg import SCHEMA as STATE_SCHEMA
from region.state_pg import PgSession

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS findings (id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL, "
    "evidence TEXT NOT NULL, kind TEXT NOT NULL, hub TEXT NOT NULL, patient TEXT, device TEXT, "
    "opened_ms BIGINT NOT NULL, noticed_ms BIGINT NOT NULL, closed_ms BIGINT, "
    "detail TEXT NOT NULL, ack_by TEXT, ack_ms BIGINT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS findings_once ON findings (key, evidence)",
    "CREATE UNIQUE INDEX IF NOT EXISTS findings_open ON findings (key) WHERE closed_ms IS NULL",
    "CREATE INDEX IF NOT EXISTS findings_by_patient ON findings (patient, opened_ms)",
    "CREATE INDEX IF NOT EXISTS findings_by_hub ON findings (hub, opened_ms)",
    "CREATE TABLE IF NOT EXISTS finding_events (n BIGSERIAL PRIMARY KEY, finding_id BIGINT "
    "NOT NULL REFERENCES findings (id), at_ms BIGINT NOT NULL, event TEXT NOT NULL, "
    "by_user TEXT, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS finding_events_by_finding ON finding_events (finding_id, at_ms)",
)
_SELECT = f"SELECT {COLUMNS} FROM findings"  # noqa: S608 - fixed column names


class PostgresFindingStore:
    """:class:`region.findings.store.FindingStore` in PostgreSQL (one connection)."""

    def __init__(
        self, url: str, *, fhir_queue: bool = False, application_name: str = "narhub-findings"
    ) -> None:
        """``fhir_queue``: also queue each change's FHIR resources for the posters."""
        self._db = PgSession(url, application_name)
        self._fhir_queue = fhir_queue
        self._db.create_schema(SCHEMA, first_table="finding_events_by_finding")
        if fhir_queue:
            self._db.create_schema(STATE_SCHEMA, first_table="fhir_queue")

    def open_findings(self, hubs: Collection[str] | None = None) -> list[Finding]:
        """Open findings."""
        if hubs is None:
            rows = self._db.execute(f"{_SELECT} WHERE closed_ms IS NULL").rows
        else:
            rows = self._db.execute(
                f"{_SELECT} WHERE closed_ms IS NULL AND hub = ANY(%s)", (sorted(hubs),)
            ).rows
        return [finding_of_row(r) for r in rows]

    def _event(
        self, finding_id: int, at_ms: int, event: str, by: str | None, detail: dict[str, Any]
    ) -> None:
        self._db.execute(
            "INSERT INTO finding_events (finding_id, at_ms, event, by_user, detail) "
            "VALUES (%s, %s, %s, %s, %s)",
            (finding_id, at_ms, event, by, detail_json(detail)),
        )

    def _open(self, c: Condition, now_ms: int) -> int | None:
        closed = c.since_ms if c.quiet else None
        rows = self._db.execute(
            "INSERT INTO findings (key, evidence, kind, hub, patient, device, opened_ms, "
            "noticed_ms, closed_ms, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
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
                closed,
                detail_json(c.detail),
            ),
        ).rows
        if not rows:
            return None
        finding_id = int(rows[0][0])
        self._event(finding_id, c.since_ms, "opened", None, c.detail)
        if c.quiet:
            self._event(finding_id, c.since_ms, "recorded-quiet", None, {"stale": True})
        return finding_id

    def _queue(self, findings: list[Finding]) -> None:
        if self._fhir_queue and findings:
            lines = "\n".join(dumps_exact(resource(f)) for f in findings)
            self._db.execute("INSERT INTO fhir_queue (lines) VALUES (%s)", (lines,))

    def apply(self, changes: Changes, now_ms: int) -> list[Finding]:
        """Open, update and close in one transaction; the changed findings as they are now."""
        if not changes:
            return []
        touched: list[int] = []
        with self._db.transaction():
            for finding in changes.closed:
                at = max(now_ms, finding.opened_ms)
                done = self._db.execute(
                    "UPDATE findings SET closed_ms = %s WHERE id = %s AND closed_ms IS NULL",
                    (at, finding.id),
                )
                if done.rowcount:
                    self._event(finding.id, at, "closed", None, {})
                    touched.append(finding.id)
            for finding, condition in changes.updated:
                done = self._db.execute(
                    "UPDATE findings SET detail = %s WHERE id = %s AND closed_ms IS NULL",
                    (detail_json(condition.detail), finding.id),
                )
                if done.rowcount:
                    touched.append(finding.id)
            for condition in changes.opened:
                new_id = self._open(condition, now_ms)
                if new_id is not None:
                    touched.append(new_id)
            rows = self._db.execute(f"{_SELECT} WHERE id = ANY(%s)", (touched,)).rows
            changed = [finding_of_row(r) for r in rows] if touched else []
            self._queue(changed)
        return changed

    def acknowledge(self, finding_id: int, who: str, at_ms: int) -> Finding:
        """Record the first acknowledgement (a second one changes nothing)."""
        with self._db.transaction():
            done = self._db.execute(
                "UPDATE findings SET ack_by = %s, ack_ms = %s WHERE id = %s AND ack_by IS NULL",
                (who, at_ms, finding_id),
            )
            finding = self.finding(finding_id)
            if done.rowcount:
                self._event(finding_id, at_ms, "acknowledged", who, {})
                self._queue([finding])
        return finding

    def finding(self, finding_id: int) -> Finding:
        """One finding."""
        rows = self._db.execute(f"{_SELECT} WHERE id = %s", (finding_id,)).rows
        if not rows:
            raise UnknownFindingError(finding_id)
        return finding_of_row(rows[0])

    def findings(
        self, *, patient: str | None = None, hubs: Collection[str] | None = None, limit: int = 200
    ) -> list[Finding]:
        """Findings, newest first (of a patient or hubs)."""
        clauses: list[str] = []
        args: list[object] = []
        if patient is not None:
            clauses.append("patient = %s")
            args.append(patient)
        if hubs is not None:
            clauses.append("hub = ANY(%s)")
            args.append(sorted(hubs))
        where = f" WHERE {' OR '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"{_SELECT}{where} ORDER BY opened_ms DESC, id DESC LIMIT %s", [*args, limit]
        ).rows
        return [finding_of_row(r) for r in rows]

    def history(self, finding_ids: Sequence[int]) -> list[FindingEvent]:
        """The findings' events, oldest first."""
        rows = self._db.execute(
            "SELECT finding_id, at_ms, event, by_user, detail FROM finding_events "
            "WHERE finding_id = ANY(%s) ORDER BY at_ms, n",
            (list(finding_ids),),
        ).rows
        return [
            FindingEvent(int(f), int(at), str(e), None if by is None else str(by), json.loads(d))
            for f, at, e, by, d in rows
        ]

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
