"""Findings, their history and acknowledgements in PostgreSQL, shared by several region
instances (:class:`region.findings.store.FindingStore`; psycopg through
:class:`region.state_pg.PgSession`, the one module that imports it).

The rules are the SQLite store's (:mod:`region.findings.sqlite_findings`; both are
:class:`region.findings.store_sql.SqlFindingStore`) and sit in the same two unique indexes:
one open finding per key (a partial index on the open ones) and one finding per key and
evidence ever. :meth:`PostgresFindingStore.apply` is one transaction
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

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from region.findings.store_sql import SqlFindingStore, findings_schema
from region.state_pg import SCHEMA as STATE_SCHEMA
from region.state_pg import PgSession

SCHEMA = (
    *findings_schema("BIGSERIAL PRIMARY KEY"),
    "CREATE TABLE IF NOT EXISTS finding_events (n BIGSERIAL PRIMARY KEY, finding_id BIGINT "
    "NOT NULL REFERENCES findings (id), at_ms BIGINT NOT NULL, event TEXT NOT NULL, "
    "by_user TEXT, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS finding_events_by_finding ON finding_events (finding_id, at_ms)",
)


class PostgresFindingStore(SqlFindingStore):
    """:class:`region.findings.store.FindingStore` in PostgreSQL (one connection)."""

    _chunk = None
    _event_order = "n"

    def __init__(
        self, url: str, *, fhir_queue: bool = False, application_name: str = "narhub-findings"
    ) -> None:
        """``fhir_queue``: also queue each change's FHIR resources for the posters."""
        self._db = PgSession(url, application_name)
        self._fhir_queue = fhir_queue
        self._db.create_schema(SCHEMA, first_table="finding_events_by_finding")
        if fhir_queue:
            self._db.create_schema(STATE_SCHEMA, first_table="fhir_queue")

    def _execute(self, sql: str, args: Sequence[object] = ()) -> tuple[list[Sequence[Any]], int]:
        done = self._db.execute(sql.replace("?", "%s"), args)
        return list(done.rows), done.rowcount

    def _transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def _in(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"{column} = ANY(?)", [list(values)]

    def _has_queue(self) -> bool:
        return self._fhir_queue

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
