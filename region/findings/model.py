"""Findings and the conditions that raise them (frozen dataclasses, no I/O)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    """What a finding is about (the names are stable: stored, in FHIR codes and the docs)."""

    ALERT = "alert-reading"
    MISSED = "missed-measurement"
    HUB_SILENT = "hub-silent"
    HELD = "held-unattributed"
    BATTERY_LOW = "battery-low"
    DEVICE_UNSEEN = "device-not-seen"
    CLOCK_OFF = "device-clock-off"


#: Worklist order: lower first (an alert reading before a missed measurement ...).
RANK = {
    Kind.ALERT: 0,
    Kind.MISSED: 1,
    Kind.HUB_SILENT: 1,
    Kind.DEVICE_UNSEEN: 2,
    Kind.BATTERY_LOW: 2,
    Kind.HELD: 2,
    Kind.CLOCK_OFF: 3,
}


@dataclass(frozen=True, slots=True)
class Condition:
    """Something true now. ``key`` names the thing (one open finding per key); ``evidence``
    the data it was first seen in (a finding is never raised twice from the same evidence);
    ``since_ms`` when it became true on the region's clock. ``quiet``: recorded, not raised
    (an alert reading that arrived stale)."""

    key: str
    kind: Kind
    evidence: str
    since_ms: int
    hub: str
    patient: str | None = None
    device: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """A stored finding: opened at ``opened_ms`` (when its condition became true), noticed at
    ``noticed_ms`` (when the region judged it), closed when the condition ended; acknowledged
    by ``ack_by`` at ``ack_ms``."""

    id: int
    key: str
    kind: Kind
    evidence: str
    hub: str
    patient: str | None
    device: str | None
    opened_ms: int
    noticed_ms: int
    closed_ms: int | None
    detail: dict[str, Any]
    ack_by: str | None = None
    ack_ms: int | None = None

    @property
    def open(self) -> bool:
        """Whether its condition still holds."""
        return self.closed_ms is None


@dataclass(frozen=True, slots=True)
class FindingEvent:
    """One line of a finding's history: ``event`` is opened, updated, acknowledged or closed."""

    finding_id: int
    at_ms: int
    event: str
    by: str | None
    detail: dict[str, Any]
