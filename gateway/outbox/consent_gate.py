"""The consent gate at sealing: what of a batch may leave for its recipient (docs/consent.md).

Sealing (:mod:`gateway.outbox.sealing`) passes each chunk's readings through
:meth:`ConsentGate.partition`: a reading leaves only when the recipient holds consent for its
category (:func:`protocols.categories.category_of`; an alert keeps its measurement's category)
at the reading's time, by the ledger (:func:`protocols.consent.allowed`). The rest is
*withheld*: deleted with the chunk in the seal's one transaction and counted there, per
recipient and category, in the ``withheld`` table (a local tombstone: the recipient is not
told of data it may not have). Nothing is dropped silently.

The ledger is the hub's consent file (gateway/consents.py), read again when it changes, so a
withdrawal applies from the next seal. A hub with no consent file has no gate (what it did
before consent existed: everything to its one recipient); ``narhub doctor`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.consents import ConsentLedger, file_stamp, read_ledger
from gateway.outbox import chunks, delivery
from gateway.outbox.keys import SourceKeys
from gateway.outbox.streams import Streams
from gateway.outbox.transaction import Reader, Transaction
from gateway.reading import Reading
from protocols.categories import DataCategory, category_of
from protocols.consent import ConsentRecord, allowed
from protocols.cose import decode_sign1
from protocols.uplink import Priority, WireReading

WITHHELD_SCHEMA = """CREATE TABLE IF NOT EXISTS withheld (
    recipient TEXT NOT NULL,
    category TEXT NOT NULL,
    n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    withheld_ms INTEGER NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class WithheldRow:
    """Readings of one category withheld from one recipient by one seal."""

    recipient: str
    category: DataCategory
    n: int
    first_ms: int
    last_ms: int


def partition(
    readings: Sequence[WireReading],
    ledger: Sequence[ConsentRecord],
    recipient: str,
    *,
    alert: bool,
) -> tuple[list[WireReading], list[WithheldRow]]:
    """The readings that may leave for ``recipient``, and what is withheld (pure)."""
    kept: list[WireReading] = []
    spans: dict[DataCategory, tuple[int, int, int]] = {}
    verdicts: dict[tuple[DataCategory, int], bool] = {}
    for reading in readings:
        category = category_of(reading.mdc_code, alert=alert)
        key = (category, reading.t_ms)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = allowed(ledger, recipient, category, reading.t_ms)
        if verdict:
            kept.append(reading)
            continue
        n, first, last = spans.get(category, (0, reading.t_ms, reading.t_ms))
        spans[category] = (n + 1, min(first, reading.t_ms), max(last, reading.t_ms))
    withheld = [WithheldRow(recipient, c, n, a, b) for c, (n, a, b) in sorted(spans.items())]
    return kept, withheld


def purge_sealed(
    tx: Transaction,
    streams: Streams,
    consent: tuple[str, ConsentLedger],
    *,
    hub_id: str,
    skip: Sequence[int],
    now_ms: int,
    others: Sequence[str] = (),
) -> int:
    """After the ledger changed: every stored, unsent batch that carries readings the
    recipient may no longer receive (a withdrawal) is taken apart within ``tx``: the batch is
    deleted, what may still leave goes back to the outbox as chunks (it is sealed again, at the
    batch's priority), the rest is counted as withheld. Returns the readings withheld.

    A batch already published and waiting for its PUBACK may have reached the broker: that
    cannot be called back (its PUBACK then deletes nothing). ``skip``: batches acknowledged
    and not yet deleted; ``others``: the other recipients (the readings put back are theirs
    already: they are marked taken by them, :mod:`gateway.outbox.delivery`)."""
    recipient, ledger = consent
    rows = tx.execute(
        "SELECT id, priority, message FROM batches WHERE recipient=? "
        "AND rejected_reason IS NULL ORDER BY id",
        (recipient,),
    ).fetchall()
    total = 0
    # A withdrawal is rare: the decoder of every body format (format 2's dictionary with it)
    # is loaded then, not in every running hub (issue #18: the hub's memory budget).
    from protocols.uplink.body import decode_body  # noqa: PLC0415

    for batch_id, priority, message in rows:
        if batch_id in skip:
            continue
        readings = decode_body(decode_sign1(message).payload, hub_id).readings
        alert = Priority(priority) is Priority.ALERT
        kept, withheld = partition(readings, ledger.records, recipient, alert=alert)
        if not withheld:
            continue
        tx.execute("DELETE FROM batches WHERE id=?", (batch_id,))
        # Back as chunks every other recipient has taken already: only this one seals them.
        total += _settle(tx, streams, kept, withheld, Priority(priority), others, now_ms)
    return total


def withhold_waiting(
    tx: Transaction,
    streams: Streams,
    consent: tuple[str, ConsentLedger],
    *,
    recipients: Sequence[str],
    keys: SourceKeys,
    now_ms: int,
) -> int:
    """After the ledger changed, for a recipient that is not sealing (its broker is down):
    the waiting chunks it has not taken are passed through its consent now, within ``tx``.
    A chunk with readings it may no longer receive is taken by it
    (:func:`gateway.outbox.delivery.take`), what it may still receive goes back as a new chunk
    only it has still to take, and the rest is counted as withheld. Returns the readings
    withheld. The other recipients are unaffected."""
    recipient, ledger = consent
    sql, params = delivery.not_taken_sql(recipient)
    rows = tx.execute(
        f"SELECT id, priority, payload, keys FROM chunks WHERE held_boot IS NULL{sql} "  # noqa: S608
        "ORDER BY id",
        params,
    ).fetchall()
    others = [r for r in recipients if r != recipient]
    total = 0
    for chunk_id, priority, payload, keys_column in rows:
        alert = Priority(priority) is Priority.ALERT
        kept, withheld = partition(
            chunks.to_wire(payload, streams), ledger.records, recipient, alert=alert
        )
        if not withheld:
            continue
        delivery.take(
            tx, [(chunk_id, keys_column)], recipient, recipients, keys=keys, now_ms=now_ms
        )
        total += _settle(tx, streams, kept, withheld, Priority(priority), others, now_ms)
    return total


def _settle(
    tx: Transaction,
    streams: Streams,
    kept: Sequence[WireReading],
    withheld: Sequence[WithheldRow],
    priority: Priority,
    others: Sequence[str],
    now_ms: int,
) -> int:
    """The parts of a batch or chunk taken apart (:func:`partition`), within ``tx``: the kept
    readings go back (:func:`_put_back`), the withheld ones are counted (:func:`record`).
    Returns the readings withheld."""
    _put_back(tx, streams, kept, priority, others)
    record(tx, withheld, now_ms)
    return sum(w.n for w in withheld)


def _put_back(
    tx: Transaction,
    streams: Streams,
    kept: Sequence[WireReading],
    priority: Priority,
    others: Sequence[str],
) -> None:
    """Readings back as chunks that every one of ``others`` has taken already."""
    if not kept:
        return
    before = int(tx.scalar("SELECT coalesce(max(id), 0) FROM chunks"))
    chunks.write(tx, [_back(r, priority) for r in kept], streams, held_boot=None)
    tx.executemany(
        "INSERT INTO taken(recipient, chunk_id) VALUES (?, ?)",
        [
            (other, chunk_id)
            for (chunk_id,) in tx.execute("SELECT id FROM chunks WHERE id > ?", (before,))
            for other in others
        ],
    )


def _back(r: WireReading, priority: Priority) -> Reading:
    """A reading of a batch taken apart, as it goes back into the outbox."""
    return Reading(
        stream=r.stream,
        device=r.device,
        mdc_code=r.mdc_code,
        unit=r.unit,
        value=r.value,
        special=r.special,
        hub_wall_ms=r.t_ms,
        hub_mono_ns=0,
        priority=priority,
        flags=r.flags,
    )


class ConsentGate:
    """The consent file of one recipient's outbox, read again when it changes."""

    def __init__(self, path: Path, recipient: str) -> None:
        self.path = path
        self.recipient = recipient
        self._ledger = ConsentLedger((), None)
        self._read = False

    def ledger(self) -> ConsentLedger | None:
        """The current ledger; None when there is no consent file (no gate)."""
        stamp = file_stamp(self.path)
        if stamp is None:
            return None
        if not self._read or stamp != self._ledger.stamp:
            self._ledger = read_ledger(self.path)
            self._read = True
        return self._ledger


def record(tx: Transaction, rows: Sequence[WithheldRow], now_ms: int) -> None:
    """Count withheld readings within the seal's transaction."""
    tx.executemany(
        "INSERT INTO withheld(recipient, category, n, first_ms, last_ms, withheld_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(r.recipient, r.category.value, r.n, r.first_ms, r.last_ms, now_ms) for r in rows],
    )


def withheld_totals(db: Reader) -> dict[str, dict[str, int]]:
    """Readings withheld so far: recipient -> category -> count (status and doctor)."""
    totals: dict[str, dict[str, int]] = {}
    rows = db.execute(
        "SELECT recipient, category, SUM(n) FROM withheld GROUP BY recipient, category"
    )
    for recipient, category, n in rows:
        totals.setdefault(recipient, {})[category] = int(n)
    return totals
