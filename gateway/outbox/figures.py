"""What the outbox reports of itself: queue depths, the oldest unsent reading, evictions, disk
use (``narhub status``, ``narhub doctor``, the retained status topic; docs/pipeline.md).

Reads only; a batch whose acknowledgement is deferred (:class:`gateway.outbox.acks.Acks`)
counts as gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.outbox import delivery
from gateway.outbox.acks import Acks
from gateway.outbox.consent_gate import withheld_totals
from gateway.outbox.transaction import Database
from protocols.uplink import Priority


@dataclass
class StoreStats:
    """Counters since open (reported by ``counts``; docs/pipeline.md)."""

    commits: int = 0
    readings_added: int = 0
    duplicates: int = 0
    evicted: int = 0
    over_quota: bool = False
    #: Readings withheld from the recipient for want of consent (gateway/outbox/consent_gate.py).
    withheld: int = 0


def unbatched_count(db: Database) -> int:
    """Readings not yet sealed into a batch."""
    return int(db.scalar("SELECT coalesce(sum(n), 0) FROM chunks"))


def oldest_unsent_ms(db: Database, acks: Acks) -> int | None:
    """Epoch ms of the oldest reading not yet acknowledged by the broker, or None."""
    not_acked, ids = acks.not_acked()
    oldest = db.scalar(
        "SELECT min(t) FROM (SELECT min(first_ms) AS t FROM chunks WHERE held_boot IS NULL "  # noqa: S608
        "UNION ALL SELECT min(first_ms) FROM batches WHERE rejected_reason IS NULL"
        f"{not_acked})",
        ids,
    )
    return None if oldest is None else int(oldest)


def depth_by_priority(db: Database, acks: Acks) -> dict[str, int]:
    """Readings not yet acknowledged by the broker (waiting and sealed, rejected batches
    excluded), per priority topic name (docs/protocols/uplink.md, "Status topic")."""
    depth = {p.topic_name: 0 for p in Priority}
    not_acked, ids = acks.not_acked()
    for priority, n in db.execute(
        "SELECT priority, sum(n) FROM chunks GROUP BY priority UNION ALL "  # noqa: S608
        f"SELECT priority, sum(n) FROM batches WHERE rejected_reason IS NULL{not_acked} "
        "GROUP BY priority",
        ids,
    ):
        depth[Priority(priority).topic_name] += int(n)
    return depth


def counts(
    db: Database, acks: Acks, *, held: int, used_bytes: int, quota_bytes: int
) -> dict[str, int]:
    """Queue depths, evictions and disk use."""
    not_acked, ids = acks.not_acked()
    pending, rejected = db.execute(
        "SELECT sum(rejected_reason IS NULL), sum(rejected_reason IS NOT NULL) "  # noqa: S608
        f"FROM batches WHERE 1{not_acked}",
        ids,
    ).fetchone()
    evicted = db.scalar("SELECT value FROM meta WHERE key='evicted_readings'")
    return {
        "unbatched_readings": unbatched_count(db),
        "held_readings": held,
        "pending_batches": int(pending or 0),
        "rejected_batches": int(rejected or 0),
        "tombstones_pending": int(db.scalar("SELECT count(*) FROM tombstones")),
        "evicted_readings_total": 0 if evicted is None else int(evicted),
        "used_bytes": used_bytes,
        "quota_bytes": quota_bytes,
    }


def queue_figures(
    db: Database, acks: Acks, counted: dict[str, int], recipients: Sequence[str] = ()
) -> dict[str, Any]:
    """What ``narhub status`` shows of the queue (the fields of
    :class:`technician.status_view.QueueView`) from the store and its :func:`counts`, for the
    activity file: another process cannot read an exclusive store."""
    names = [p.topic_name for p in Priority]
    readings = dict.fromkeys(names, 0)
    for priority, n in db.execute("SELECT priority, sum(n) FROM chunks GROUP BY priority"):
        readings[Priority(priority).topic_name] = int(n or 0)
    batches = dict.fromkeys(names, 0)
    not_acked, ids = acks.not_acked()
    for priority, n in db.execute(
        "SELECT priority, count(*) FROM batches WHERE rejected_reason IS NULL"  # noqa: S608
        f"{not_acked} GROUP BY priority",
        ids,
    ):
        batches[Priority(priority).topic_name] = int(n)
    return {
        "readings_by_priority": readings,
        "batches_by_priority": batches,
        "oldest_unsent_ms": oldest_unsent_ms(db, acks),
        "rejected_batches": counted["rejected_batches"],
        "evicted_readings_total": counted["evicted_readings_total"],
        "tombstones_pending": counted["tombstones_pending"],
        "held_readings": counted["held_readings"],
        "recipients": recipient_backlog(db, acks, recipients),
    }


def recipient_backlog(
    db: Database, acks: Acks, recipients: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per recipient, what waits for it (docs/pipeline.md, "Recipients"): readings it has
    not taken yet (``waiting_readings``), its unsent batches and their readings, its rejected
    batches, its tombstones not yet sent, readings evicted for it and withheld from it (per
    category)."""
    not_acked, ids = acks.not_acked()
    withheld = withheld_totals(db)
    out: dict[str, dict[str, Any]] = {}
    for name in recipients:
        batches, readings, rejected = db.execute(
            "SELECT sum(rejected_reason IS NULL), "  # noqa: S608
            "sum(CASE WHEN rejected_reason IS NULL THEN n ELSE 0 END), "
            f"sum(rejected_reason IS NOT NULL) FROM batches WHERE recipient=?{not_acked}",
            (name, *ids),
        ).fetchone()
        evicted = db.scalar("SELECT value FROM meta WHERE key=?", (f"evicted_readings:{name}",))
        out[name] = {
            "waiting_readings": delivery.waiting_readings(db, name),
            "pending_batches": int(batches or 0),
            "batched_readings": int(readings or 0),
            "rejected_batches": int(rejected or 0),
            "tombstones_pending": int(
                db.scalar("SELECT count(*) FROM tombstones WHERE recipient=?", (name,))
            ),
            "evicted_readings_total": 0 if evicted is None else int(evicted),
            "withheld_readings": withheld.get(name, {}),
        }
    return out


def quick_check(db: Database) -> str:
    """SQLite's ``PRAGMA quick_check``: "ok" or the first problem found."""
    return str(db.scalar("PRAGMA quick_check"))
