"""Where the findings keep their state: three seams, each with an SQLite implementation.

* :class:`PlanStore`: care plans per patient (``narhub region plan set|show``);
* :class:`FactStore`: what arrived, on the region's clock (:mod:`region.findings.facts`):
  hubs' last contact and status, devices' last reading and clock read, each patient's
  newest reading per code (with its alert run) and the readings summarised for plots;
* :class:`FindingStore`: findings, their history and acknowledgements.

SQLite implementations (:mod:`region.findings.sqlite_facts`,
:mod:`region.findings.sqlite_findings`) live in the region's state database (WAL,
``synchronous=FULL``), beside the enrolments. An implementation must make
:meth:`FindingStore.apply` one transaction that refuses a second open finding of a key and a
second finding of the same key and evidence (unique indexes), and keep its SQL plain
(``BIGINT`` times, ``ON CONFLICT``, partial indexes), so that a PostgreSQL one can sit
beside it for several receivers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from region.findings.facts import (
    DeviceFacts,
    HubFacts,
    Ingestion,
    LatestFacts,
    StatusSeen,
)
from region.findings.lifecycle import Changes
from region.findings.model import Finding, FindingEvent
from region.findings.policy import PlanRecord


@dataclass(frozen=True, slots=True)
class Point:
    """A plot point: one bucket of a code's readings (effective time), min/mean/max."""

    t_ms: int
    low: float
    mean: float
    high: float
    count: int
    alerts: int


@dataclass(frozen=True, slots=True)
class LatestReading:
    """A patient's newest reading of a code, as the worklist shows it (exact value text)."""

    mdc_code: int
    value: str | None
    unit: str
    t_ms: int
    received_ms: int
    device: str
    alerted: bool


class PlanStore(Protocol):
    """Care plans by patient key (:func:`region.findings.facts.patient_key`)."""

    def set_plan(self, patient: str, plan_json: str, at_ms: int) -> None:
        """Store (replace) a validated plan; it applies from ``at_ms``."""
        ...

    def plan(self, patient: str) -> PlanRecord | None:
        """The patient's plan, if any."""
        ...

    def plans(self, patients: Collection[str] | None = None) -> dict[str, PlanRecord]:
        """Every plan (or those of ``patients``)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class FactStore(Protocol):
    """What arrived, on the region's clock."""

    def record_ingestion(self, ingestion: Ingestion) -> None:
        """Record a filed batch's readings (durable when this returns)."""
        ...

    def record_status(self, seen: StatusSeen) -> bool:
        """Record a status document; False when it was one already recorded."""
        ...

    def hubs(self, hubs: Collection[str] | None = None) -> dict[str, HubFacts]:
        """Hub facts (of ``hubs``, or all)."""
        ...

    def devices(self, hubs: Collection[str] | None = None) -> list[DeviceFacts]:
        """Device facts (of ``hubs``, or all)."""
        ...

    def latest(self, patients: Collection[str] | None = None) -> list[LatestFacts]:
        """Each patient's newest reading per code (of ``patients``, or all)."""
        ...

    def latest_readings(self, patient: str) -> list[LatestReading]:
        """A patient's newest reading per code, with values."""
        ...

    def series(self, patient: str, mdc_code: int, from_ms: int, bucket_ms: int) -> list[Point]:
        """A code's readings since ``from_ms`` in buckets of ``bucket_ms`` (effective time)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class FindingStore(Protocol):
    """Findings, their history and acknowledgements."""

    def open_findings(self, hubs: Collection[str] | None = None) -> list[Finding]:
        """Open findings (of ``hubs``, or all)."""
        ...

    def apply(self, changes: Changes, now_ms: int) -> list[Finding]:
        """Open, update and close as ``changes`` say, in one transaction; returns the
        findings as they are now for each change made (one never raised twice is left
        out)."""
        ...

    def acknowledge(self, finding_id: int, who: str, at_ms: int) -> Finding:
        """Record that ``who`` acknowledged the finding at ``at_ms`` (the first one counts;
        raises :class:`region.findings.errors.UnknownFindingError`)."""
        ...

    def finding(self, finding_id: int) -> Finding:
        """One finding (:class:`region.findings.errors.UnknownFindingError` if none)."""
        ...

    def findings(
        self, *, patient: str | None = None, hubs: Collection[str] | None = None, limit: int = 200
    ) -> list[Finding]:
        """Findings, newest first (of a patient or hubs)."""
        ...

    def history(self, finding_ids: Sequence[int]) -> list[FindingEvent]:
        """The events of these findings, oldest first."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
