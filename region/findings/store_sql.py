"""What the findings stores in SQL share (pure): the columns read back and a row as a
:class:`region.findings.model.Finding` (SQLite: :mod:`region.findings.sqlite_findings`,
PostgreSQL: :mod:`region.findings.store_pg`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from region.findings.model import Finding, Kind

COLUMNS = (
    "id, key, kind, evidence, hub, patient, device, opened_ms, noticed_ms, closed_ms, detail, "
    "ack_by, ack_ms"
)


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
