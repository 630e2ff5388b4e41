"""Sealing: waiting chunks become one signed wire-format batch, signed outside the write lock.

A seal is two steps around the signature (docs/pipeline.md, "Sealing"):

1. :func:`prepare` reads, in one snapshot and without the write lock, the chunks the batching
   policy chooses (:func:`gateway.outbox.batching.choose`) and the pending tombstones, the
   next sequence number, and encodes the body (:func:`protocols.uplink.encode_body`). It
   writes nothing: a :class:`SealPlan` lives in memory only.
2. The caller signs the body (ES256 can take a secure element tens of ms) holding no lock.
3. :func:`finish` then, in one short ``BEGIN IMMEDIATE`` transaction, checks that what the
   plan took is still there unchanged (:func:`check`: the sequence number, each chunk's
   payload, the tombstones) and stores the signed message, deletes the chunks and tombstones
   and advances the sequence number, all in that one commit.

Crash safety is the old one: the only durable change is step 3's commit, in which the signed
message replaces the chunks, so a batch is either still chunks or a stored message, never
both and never neither. A message is published only after it is stored (the uplink reads
:func:`gateway.outbox.acks.pending`), so a crash before step 3 leaves nothing that was sent:
the next life seals the same readings again (a new boot id; the region never saw the first
one). A plan that went stale meanwhile (another seal took its chunks, the quota evicted them)
fails :func:`check` and is prepared again; nothing it signed is ever stored.

Every seal is one recipient's (docs/pipeline.md, "Recipients"): it takes the chunks that
recipient has not taken yet (:mod:`gateway.outbox.delivery`) and that recipient's tombstones,
passes them through that recipient's consent gate, and stores a batch of that recipient with
that recipient's own sequence number (``meta next_seq:{recipient}``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.consents import ConsentLedger
from gateway.outbox import consent_gate, delivery
from gateway.outbox.batching import WaitingChunk, batch_priority, choose
from gateway.outbox.chunks import to_wire
from gateway.outbox.consent_gate import WithheldRow
from gateway.outbox.errors import StoreError
from gateway.outbox.keys import SourceKeys
from gateway.outbox.quota import TombstoneRow, tombstone_readings, tombstones
from gateway.outbox.streams import Streams
from gateway.outbox.transaction import Database, Reader, Transaction
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body


class StalePlanError(StoreError):
    """What a :class:`SealPlan` took changed before it was stored (prepare it again)."""


@dataclass(frozen=True)
class SealPlan:
    """A batch encoded and not yet signed, and what it takes from the store."""

    header: BatchHeader
    body: bytes
    #: The earliest reading's time (epoch ms).
    first_ms: int
    #: (chunk id, payload) of every chunk taken: checked unchanged when the batch is stored.
    chunks: tuple[tuple[int, bytes], ...]
    #: The tombstones carried (None: none taken, they wait for a later batch).
    tombstones: tuple[TombstoneRow, ...] | None
    #: Readings the consent gate withheld (deleted with their chunks, counted).
    withheld: tuple[WithheldRow, ...] = ()
    #: The recipient the batch is for (its tree, its consent, its sequence numbers).
    recipient: str = ""

    @property
    def empty(self) -> bool:
        """Everything taken was withheld: no batch, the chunks are deleted and counted."""
        return not self.body


#: The header of a plan whose readings were all withheld (it is never encoded or sent).
_EMPTY_HEADER = BatchHeader("", "", -1, 0, Priority.TELEMETRY, 0)


def next_seq(db: Reader, recipient: str) -> int:
    """The sequence number of ``recipient``'s next batch (it persists across restarts)."""
    value = db.scalar("SELECT value FROM meta WHERE key=?", (f"next_seq:{recipient}",))
    return 0 if value is None else int(value)


def waiting(db: Reader, recipient: str) -> bool:
    """Whether anything waits for a batch of ``recipient`` (readings not held that it has not
    taken, or its tombstones)."""
    sql, params = delivery.not_taken_sql(recipient)
    return (
        db.scalar(f"SELECT 1 FROM chunks WHERE held_boot IS NULL{sql} LIMIT 1", params)  # noqa: S608
        is not None
        or db.scalar("SELECT 1 FROM tombstones WHERE recipient=? LIMIT 1", (recipient,)) is not None
    )


def prepare(
    db: Database,
    streams: Streams,
    *,
    hub_id: str,
    boot_id: str,
    now_ms: int,
    max_readings: int,
    newest_alert_alone: bool,
    recipient: str,
    consent: tuple[str, ConsentLedger] | None = None,
) -> SealPlan | None:
    """The next batch of ``recipient``, encoded (step 1); None when nothing is to be sealed.

    ``consent``: (recipient, ledger): only readings it consents to are put in the batch, the
    rest is withheld (:mod:`gateway.outbox.consent_gate`); None: no gate."""
    sql, params = delivery.not_taken_sql(recipient)
    with db.snapshot():
        cursor = db.execute(
            f"SELECT id, priority, n FROM chunks WHERE held_boot IS NULL{sql} "  # noqa: S608
            "ORDER BY priority, id",
            params,
        )
        with contextlib.closing(cursor):
            chosen = choose(
                (WaitingChunk(i, Priority(p), n) for i, p, n in cursor),
                max_readings=max_readings,
                newest_alert_alone=newest_alert_alone,
            )
        if chosen is None:
            return None
        taken = []
        readings: list[WireReading] = []
        withheld: list[WithheldRow] = []
        for chunk in chosen:
            payload = db.scalar("SELECT payload FROM chunks WHERE id=?", (chunk.chunk_id,))
            wire = to_wire(payload, streams)
            if consent is not None:
                wire, out = consent_gate.partition(
                    wire,
                    consent[1].records,
                    consent[0],
                    alert=chunk.priority is Priority.ALERT,
                )
                withheld.extend(out)
            readings.extend(wire)
            taken.append((chunk.chunk_id, payload))
        carried = None if newest_alert_alone else tuple(tombstones(db, recipient))
        priority = batch_priority(chosen, tombstones=bool(carried))
        if priority is None:
            return None
        if carried:
            marks = tombstone_readings(list(carried), streams)
            if consent is not None:
                marks, out = consent_gate.partition(
                    marks, consent[1].records, consent[0], alert=False
                )
                withheld.extend(out)
            readings.extend(marks)
        if not readings:  # all withheld: the chunks go, counted, and no batch
            return SealPlan(
                _EMPTY_HEADER, b"", 0, tuple(taken), carried, tuple(withheld), recipient
            )
        readings.sort(key=lambda r: r.t_ms)
        header = BatchHeader(
            hub_id=hub_id,
            boot_id=boot_id,
            seq=next_seq(db, recipient),
            created_ms=now_ms,
            priority=priority,
            count=len(readings),
        )
    body = encode_body(header, readings)
    return SealPlan(
        header, body, readings[0].t_ms, tuple(taken), carried, tuple(withheld), recipient
    )


def check(tx: Transaction, plan: SealPlan) -> list[bytes | None]:
    """Within the storing transaction: raise :class:`StalePlanError` unless the store still
    holds what ``plan`` took; the ``keys`` column of each chunk taken."""
    if not plan.empty and next_seq(tx, plan.recipient) != plan.header.seq:
        msg = f"batch seq {plan.header.seq} was taken meanwhile"
        raise StalePlanError(msg)
    keys = []
    sql, params = delivery.not_taken_sql(plan.recipient)
    for chunk_id, payload in plan.chunks:
        row = tx.execute(
            f"SELECT keys FROM chunks WHERE id=? AND held_boot IS NULL AND payload=?{sql}",  # noqa: S608
            (chunk_id, payload, *params),
        ).fetchone()
        if row is None:
            msg = f"chunk {chunk_id} left meanwhile"
            raise StalePlanError(msg)
        keys.append(row[0])
    if plan.tombstones is not None and tuple(tombstones(tx, plan.recipient)) != plan.tombstones:
        msg = "tombstones changed meanwhile"
        raise StalePlanError(msg)
    return keys


def finish(
    tx: Transaction,
    plan: SealPlan,
    message: bytes,
    *,
    keys: SourceKeys,
    now_ms: int,
    recipients: Sequence[str],
) -> int:
    """Store the signed ``message`` of ``plan`` in place of its chunks (step 3): the plan's
    recipient has taken them (a chunk every one of ``recipients`` has taken is deleted,
    :func:`gateway.outbox.delivery.take`); the new batch's id. Raises
    :class:`StalePlanError` (nothing written) when :func:`check` fails."""
    recipient = plan.recipient
    taken = [(c, k) for (c, _payload), k in zip(plan.chunks, check(tx, plan), strict=True)]
    delivery.take(tx, taken, recipient, recipients, keys=keys, now_ms=now_ms)
    if plan.tombstones:
        tx.execute("DELETE FROM tombstones WHERE recipient=?", (recipient,))
    consent_gate.record(tx, plan.withheld, now_ms)
    if plan.empty:
        return 0
    header = plan.header
    cursor = tx.execute(
        "INSERT INTO batches(seq, priority, created_ms, n, first_ms, message, recipient) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            header.seq,
            header.priority,
            header.created_ms,
            header.count,
            plan.first_ms,
            message,
            recipient,
        ),
    )
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (f"next_seq:{recipient}", str(header.seq + 1)),
    )
    return int(cursor.lastrowid or 0)
