"""Signed batches waiting for the broker, and what the broker said of them.

A batch is deleted only after a PUBACK with a reason code below 0x80 (MQTT 5.0 section 3.4.2.1);
a refused one is kept with its reason for the technician and not resent. The deletion is
deferred to the next transaction (docs/pipeline.md, "The store"): until then the outbox acts
as if the batch were gone; a crash before that commit only sends it again, which the region
drops as a replay of (hub, boot, seq) (at-least-once, docs/protocols/uplink.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.outbox.transaction import Database, Transaction
from protocols.uplink import Priority

#: Deferred acknowledgements waiting at most; then they commit.
MAX_DEFERRED_ACKS = 256


@dataclass(frozen=True)
class PendingBatch:
    """A signed batch waiting for its PUBACK."""

    batch_id: int
    seq: int
    priority: Priority
    message: bytes


class Acks:
    """Batches the broker accepted whose rows are not deleted yet."""

    def __init__(self) -> None:
        self._ids: dict[int, None] = {}

    def __bool__(self) -> bool:
        return bool(self._ids)

    def add(self, batch_id: int) -> bool:
        """Remember an acknowledgement; True when :data:`MAX_DEFERRED_ACKS` wait."""
        self._ids[batch_id] = None
        return len(self._ids) >= MAX_DEFERRED_ACKS

    def ids(self) -> tuple[int, ...]:
        """The batches acknowledged and not yet deleted."""
        return tuple(self._ids)

    def delete(self, tx: Transaction) -> None:
        """Delete the acknowledged batches within ``tx``. They are forgotten at once; if ``tx``
        rolls back they are sent again (at-least-once)."""
        if self._ids:
            tx.executemany("DELETE FROM batches WHERE id=?", [(i,) for i in self._ids])
            self._ids.clear()

    def not_acked(self) -> tuple[str, tuple[int, ...]]:
        """SQL (`` AND id NOT IN (...)``) and parameters leaving out deferred acknowledgements."""
        if not self._ids:
            return "", ()
        return f" AND id NOT IN ({','.join('?' * len(self._ids))})", tuple(self._ids)


def pending(db: Database, acks: Acks, limit: int, recipient: str) -> list[PendingBatch]:
    """``recipient``'s unsent, unrejected batches, alerts first, oldest first within a
    priority."""
    not_acked, ids = acks.not_acked()
    rows = db.execute(
        "SELECT id, seq, priority, message FROM batches WHERE recipient=? "  # noqa: S608
        f"AND rejected_reason IS NULL{not_acked} ORDER BY priority, id LIMIT ?",
        (recipient, *ids, limit),
    ).fetchall()
    return [PendingBatch(r[0], r[1], Priority(r[2]), r[3]) for r in rows]


def all_batches(db: Database, acks: Acks) -> list[tuple[PendingBatch, int | None]]:
    """Every stored batch with its rejection reason (None while still to send)."""
    not_acked, ids = acks.not_acked()
    rows = db.execute(
        "SELECT id, seq, priority, message, rejected_reason FROM batches "  # noqa: S608
        f"WHERE 1{not_acked} ORDER BY priority, id",
        ids,
    ).fetchall()
    return [(PendingBatch(r[0], r[1], Priority(r[2]), r[3]), r[4]) for r in rows]


def reject(tx: Transaction, batch_id: int, reason_code: int) -> None:
    """The broker refused the batch: keep it, with the reason, for the technician."""
    tx.execute("UPDATE batches SET rejected_reason=? WHERE id=?", (reason_code, batch_id))
