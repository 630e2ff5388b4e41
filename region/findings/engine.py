"""The findings engine: record what arrives, judge, keep the findings (the stores' user).

:meth:`FindingsEngine.ingested` (the receiver's ``on_ingested`` hook) and
:meth:`FindingsEngine.status` (the status watcher) record facts stamped with the region's
ingestion time, then judge the hub they concern at that time; :meth:`FindingsEngine.evaluate`
judges every hub at the engine's clock (a deadline passing, a hub falling silent happen with
no data arriving: the service calls it every ``EVALUATE_EVERY_S``). The clock is injected:
the region's wall clock in service, a rig's or a test's clock elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path

from region.enrolment_sqlite import SqliteEnrolmentStore
from region.enrolment_store import EnrolmentStore
from region.filing import Filing
from region.findings.facts import HeldFacts, Ingestion, StatusSeen, ingestion, patient_key
from region.findings.lifecycle import reconcile
from region.findings.model import Finding
from region.findings.policy import World, conditions
from region.findings.sqlite_facts import SqliteFactStore, SqlitePlanStore
from region.findings.sqlite_findings import SqliteFindingStore
from region.findings.store import FactStore, FindingStore, PlanStore
from region.state import is_postgres

logger = logging.getLogger(__name__)

#: How often the service judges every hub (seconds): a deadline is noticed this late at most
#: (the finding still opens at the deadline itself).
EVALUATE_EVERY_S = 30.0


def wall_ms() -> int:
    """The region's clock (epoch ms)."""
    return time.time_ns() // 1_000_000


def open_finding_store(spec: str, *, fhir_queue: bool = False) -> FindingStore:
    """The findings in the SQLite file ``spec`` names, or in the PostgreSQL database a
    ``postgresql://`` URL names (shared by several region instances)."""
    if is_postgres(spec):
        # Imported only here: a SQLite region needs neither psycopg nor libpq.
        from region.findings.store_pg import PostgresFindingStore  # noqa: PLC0415

        return PostgresFindingStore(spec, fhir_queue=fhir_queue)
    return SqliteFindingStore(Path(spec), fhir_queue=fhir_queue)


class FindingsEngine:
    """Facts in, findings out; ``on_change`` gets every finding opened, updated or closed."""

    def __init__(
        self,
        plans: PlanStore,
        facts: FactStore,
        findings: FindingStore,
        enrolments: EnrolmentStore,
        *,
        clock_ms: Callable[[], int] = wall_ms,
        on_change: Callable[[list[Finding]], None] | None = None,
    ) -> None:
        self.plans = plans
        self.facts = facts
        self.findings = findings
        self.enrolments = enrolments
        self.clock_ms = clock_ms
        self._on_change = on_change

    @classmethod
    def sqlite(
        cls,
        state: Path,
        *,
        clock_ms: Callable[[], int] = wall_ms,
        on_change: Callable[[list[Finding]], None] | None = None,
        fhir_queue: bool = False,
        findings_db: str | None = None,
    ) -> FindingsEngine:
        """The engine on the region's SQLite state database (``fhir_queue``: the findings'
        changes queued for the FHIR server in its ``fhir_queue``); ``findings_db``: the
        findings in that database instead (:func:`open_finding_store`)."""
        return cls(
            SqlitePlanStore(state),
            SqliteFactStore(state),
            open_finding_store(findings_db or str(state), fhir_queue=fhir_queue),
            SqliteEnrolmentStore(state),
            clock_ms=clock_ms,
            on_change=on_change,
        )

    def ingested(self, ingestion: Ingestion) -> list[Finding]:
        """Record a filed batch and judge its hub at its ingestion time."""
        self.facts.record_ingestion(ingestion)
        return self.evaluate(ingestion.received_ms, hubs={ingestion.hub})

    def filed(self, filing: Filing) -> list[Finding]:
        """The receiver's ``on_ingested`` hook: a filing's readings, at its ingestion time."""
        event = ingestion(
            filing.hub,
            filing.received_ms,
            [(f.reading, f.patient) for f in filing.filed],
            held=filing.held,
        )
        return self.ingested(event)

    def status(self, seen: StatusSeen) -> list[Finding]:
        """Record a hub's status and judge the hub (a document seen before changes nothing)."""
        if not self.facts.record_status(seen):
            return []
        return self.evaluate(seen.received_ms, hubs={seen.status.hub})

    def world(self, hubs: Collection[str] | None = None) -> World:
        """The facts of some hubs (their enrolled patients' too), or of all."""
        if hubs is None:
            enrolments = self.enrolments.enrolments()
        else:
            enrolments = [e for hub in sorted(hubs) for e in self.enrolments.enrolments(hub)]
        patients = None if hubs is None else {patient_key(e.patient) for e in enrolments}
        held = []
        for hub in self.enrolments.held_hubs():
            if hubs is None or hub in hubs:
                readings = self.enrolments.held(hub)
                if readings:
                    held.append(HeldFacts(hub, len(readings), min(h.held_ms for h in readings)))
        return World(
            enrolments=enrolments,
            plans=self.plans.plans(patients),
            hubs=self.facts.hubs(hubs),
            devices=self.facts.devices(hubs),
            latest=self.facts.latest(patients),
            held=held,
        )

    def evaluate(
        self, now_ms: int | None = None, *, hubs: Collection[str] | None = None
    ) -> list[Finding]:
        """Judge (some hubs, or all) at ``now_ms`` (default: the engine's clock); returns the
        findings opened, updated or closed."""
        now = self.clock_ms() if now_ms is None else now_ms
        world = self.world(hubs)
        current = conditions(world, now)
        if hubs is not None:
            current = [c for c in current if c.hub in hubs]
        changes = reconcile(self.findings.open_findings(hubs), current)
        changed = self.findings.apply(changes, now)
        if changed:
            logger.info(
                "findings: %d opened, %d closed",
                sum(1 for f in changed if f.opened_ms <= now and f.noticed_ms == now),
                len(changes.closed),
            )
            if self._on_change is not None:
                self._on_change(changed)
        return changed

    def acknowledge(self, finding_id: int, who: str, at_ms: int | None = None) -> Finding:
        """A person acknowledged a finding (who: as authenticated)."""
        finding = self.findings.acknowledge(
            finding_id, who, self.clock_ms() if at_ms is None else at_ms
        )
        if self._on_change is not None:
            self._on_change([finding])
        return finding

    def close(self) -> None:
        """Close the stores."""
        self.plans.close()
        self.facts.close()
        self.findings.close()
        self.enrolments.close()
