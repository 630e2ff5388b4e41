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
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from gateway.consents import ConsentLedger
from gateway.outbox import consent_gate
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

    @property
    def empty(self) -> bool:
        """Everything taken was withheld: no batch, the chunks are deleted and counted."""
        return not self.body


#: The header of a plan whose readings were all withheld (it is never encoded or sent).
_EMPTY_HEADER = BatchHeader("", "", -1, 0, Priority.TELEMETRY, 0)


def next_seq(db: Reader) -> int:
    """The sequence number of the next batch (it persists across restarts)."""
    value = db.scalar("SELECT value FROM meta WHERE key='next_seq'")
    return 0 if value is None else int(value)


def waiting(db: Reader) -> bool:
    """Whether anything waits for a batch (readings not held, or tombstones)."""
    return (
        db.scalar("SELECT 1 FROM chunks WHERE held_boot IS NULL LIMIT 1") is not None
        or db.scalar("SELECT 1 FROM tombstones LIMIT 1") is not None
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
    consent: tuple[str, ConsentLedger] | None = None,
) -> SealPlan | None:
    """The next batch, encoded (step 1); None when nothing is to be sealed.

    ``consent``: (recipient, ledger): only readings it consents to are put in the batch, the
    rest is withheld (:mod:`gateway.outbox.consent_gate`); None: no gate."""
    with db.snapshot():
        cursor = db.execute(
            "SELECT id, priority, n FROM chunks WHERE held_boot IS NULL ORDER BY priority, id"
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
        carried = None if newest_alert_alone else tuple(tombstones(db))
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
            return SealPlan(_EMPTY_HEADER, b"", 0, tuple(taken), carried, tuple(withheld))
        readings.sort(key=lambda r: r.t_ms)
        header = BatchHeader(
            hub_id=hub_id,
            boot_id=boot_id,
            seq=next_seq(db),
            created_ms=now_ms,
            priority=priority,
            count=len(readings),
        )
    body = encode_body(header, readings)
    return SealPlan(header, body, readings[0].t_ms, tuple(taken), carried, tuple(withheld))


def check(tx: Transaction, plan: SealPlan) -> list[bytes | None]:
    """Within the storing transaction: raise :class:`StalePlanError` unless the store still
    holds what ``plan`` took; the ``keys`` column of each chunk taken."""
    if not plan.empty and next_seq(tx) != plan.header.seq:
        msg = f"batch seq {plan.header.seq} was taken meanwhile"
        raise StalePlanError(msg)
    keys = []
    for chunk_id, payload in plan.chunks:
        row = tx.execute(
            "SELECT keys FROM chunks WHERE id=? AND held_boot IS NULL AND payload=?",
            (chunk_id, payload),
        ).fetchone()
        if row is None:
            msg = f"chunk {chunk_id} left meanwhile"
            raise StalePlanError(msg)
        keys.append(row[0])
    if plan.tombstones is not None and tuple(tombstones(tx)) != plan.tombstones:
        msg = "tombstones changed meanwhile"
        raise StalePlanError(msg)
    return keys


def finish(
    tx: Transaction, plan: SealPlan, message: bytes, *, keys: SourceKeys, now_ms: int
) -> int:
    """Store the signed ``message`` of ``plan`` in place of its chunks (step 3); the new
    batch's id. Raises :class:`StalePlanError` (nothing written) when :func:`check` fails."""
    for keys_column in check(tx, plan):
        keys.chunk_left(tx, keys_column, now_ms)
    if plan.tombstones:
        tx.execute("DELETE FROM tombstones")
    consent_gate.record(tx, plan.withheld, now_ms)
    if plan.empty:
        tx.executemany("DELETE FROM chunks WHERE id=?", [(c,) for c, _payload in plan.chunks])
        return 0
    header = plan.header
    cursor = tx.execute(
        "INSERT INTO batches(seq, priority, created_ms, n, first_ms, message) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (header.seq, header.priority, header.created_ms, header.count, plan.first_ms, message),
    )
    tx.executemany("DELETE FROM chunks WHERE id=?", [(c,) for c, _payload in plan.chunks])
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('next_seq', ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (str(header.seq + 1),),
    )
    return int(cursor.lastrowid or 0)
