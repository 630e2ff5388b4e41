"""The receiver's own copy of the consents it holds, per hub (docs/consent.md, "Checked on
both sides").

A recipient's receiver refuses a batch carrying a reading of a category this recipient holds
no consent for, at the reading's time: defence in depth, so that a misconfigured hub cannot
leak. The records are the hub's own format (protocols/consent.py), kept in the receiver's
state database (SQLite, WAL) in the order they were recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from protocols.categories import DataCategory, category_of
from protocols.consent import ConsentRecord, allowed, record_from_map
from protocols.uplink import Priority, WireReading
from region.sqlite_db import open_sqlite

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS consents (hub TEXT NOT NULL, n INTEGER NOT NULL, "
    "record TEXT NOT NULL, PRIMARY KEY (hub, n)) WITHOUT ROWID",
    # Batches refused for want of consent, kept for the report (no values, no patients).
    "CREATE TABLE IF NOT EXISTS consent_refusals (hub TEXT NOT NULL, boot TEXT NOT NULL, "
    "seq INTEGER NOT NULL, missing TEXT NOT NULL, PRIMARY KEY (hub, boot, seq)) WITHOUT ROWID",
)


@dataclass(frozen=True)
class ConsentRefusal:
    """Why a batch is refused: the categories without consent and how many readings each."""

    hub: str
    recipient: str
    missing: dict[DataCategory, int]


class SqliteConsentRegistry:
    """The consents of one recipient's receiver, per hub."""

    def __init__(self, path: Path, recipient: str) -> None:
        self.recipient = recipient
        self._db = open_sqlite(path, SCHEMA)

    def add(self, hub: str, record: ConsentRecord) -> None:
        """Append a record for ``hub`` (the next in its ledger)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            n = self._db.execute(
                "SELECT COALESCE(MAX(n), -1) + 1 FROM consents WHERE hub=?", (hub,)
            ).fetchone()[0]
            self._db.execute(
                "INSERT INTO consents(hub, n, record) VALUES (?, ?, ?)",
                (hub, n, json.dumps(record.to_map())),
            )

    def ledger(self, hub: str) -> list[ConsentRecord]:
        """The records for ``hub``, in the order recorded."""
        rows = self._db.execute("SELECT record FROM consents WHERE hub=? ORDER BY n", (hub,))
        return [record_from_map(json.loads(row[0])) for row in rows]

    def hubs(self) -> list[str]:
        """Every hub with a record."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT hub FROM consents ORDER BY 1")]

    def check(
        self, hub: str, readings: Iterable[WireReading], priority: Priority
    ) -> ConsentRefusal | None:
        """None when every reading's category is consented at its time, else the refusal."""
        ledger = self.ledger(hub)
        alert = priority is Priority.ALERT
        missing: dict[DataCategory, int] = {}
        for reading in readings:
            # The batch's priority is its most urgent chunk's: in an alert batch a reading
            # may be an alert or not (the hub knew which), so either category may cover it.
            category = category_of(reading.mdc_code)
            if allowed(ledger, self.recipient, category, reading.t_ms):
                continue
            as_alert = category_of(reading.mdc_code, alert=True)
            if alert and allowed(ledger, self.recipient, as_alert, reading.t_ms):
                continue
            missing[category] = missing.get(category, 0) + 1
        return ConsentRefusal(hub, self.recipient, missing) if missing else None

    def refused(self, refusal: ConsentRefusal, boot: str, seq: int) -> None:
        """Keep the refusal of batch (hub, boot, seq) for the report."""
        missing = json.dumps({c.value: n for c, n in sorted(refusal.missing.items())})
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO consent_refusals(hub, boot, seq, missing) "
                "VALUES (?, ?, ?, ?)",
                (refusal.hub, boot, seq, missing),
            )

    def refusals(self) -> list[dict[str, object]]:
        """Every refused batch: hub, boot, seq and the readings per missing category."""
        rows = self._db.execute(
            "SELECT hub, boot, seq, missing FROM consent_refusals ORDER BY hub, boot, seq"
        )
        return [{"hub": h, "boot": b, "seq": s, "missing": json.loads(m)} for h, b, s, m in rows]

    def close(self) -> None:
        """Close the database."""
        self._db.close()
