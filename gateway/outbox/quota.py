"""Quota, eviction and tombstones (docs/pipeline.md, "Quota, eviction, tombstones").

The limit is the quota or what keeps ``min_free_bytes`` free on the file system, whichever is
smaller, checked at every commit. Beyond it, waiting chunks are evicted lowest priority first,
oldest first within one, until a tenth of the limit is free again; only environmental and
telemetry readings, never clinical readings or alerts, never held chunks (their time is not
known yet), never sealed batches. Each eviction adds to a tombstone per (stream, priority) that
the next batch carries to the region (:func:`gateway.outbox.telemetry.tombstone_reading`).

Per recipient (docs/pipeline.md, "Recipients"): the file's limit evicts a chunk for every
recipient that has not taken it yet, each with its own tombstone; and a recipient may have its
own quota (``[[recipients]] quota_mib``): the bytes waiting for it alone (chunks it has not
taken, its unsent batches) beyond it evict, by the same rules, chunks *for that recipient
only* (:func:`gateway.outbox.delivery.take`): a recipient down for days loses its oldest
environmental readings, with a tombstone saying which recipient lost what, and the others
lose nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.outbox import delivery
from gateway.outbox.chunks import unpack
from gateway.outbox.keys import SourceKeys
from gateway.outbox.streams import Streams
from gateway.outbox.telemetry import tombstone_reading
from gateway.outbox.transaction import Reader, Transaction
from protocols.uplink import Priority, WireReading

logger = logging.getLogger(__name__)

#: A row of one recipient's ``tombstones``: (stream id, priority, n, first ms, last ms,
#: evicted ms).
TombstoneRow = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class Quota:
    """The limits of one store file."""

    path: Path
    quota_bytes: int
    min_free_bytes: int

    def limit_bytes(self, used: int) -> int:
        """The quota, or less when the file system would keep under ``min_free_bytes`` free."""
        limit = self.quota_bytes
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return limit
        free = st.f_bavail * st.f_frsize
        # Below the free-space floor the limit drops under what is used, so eviction frees
        # the difference (a clamp at 0 here once kept a full disk from evicting anything).
        return min(limit, used + free - self.min_free_bytes)


@dataclass(frozen=True)
class Eviction:
    """What one check of the quota did."""

    readings: int = 0
    #: Still over the limit with nothing left to evict.
    over_quota: bool = False


def used_bytes(db: Reader, page_size: int) -> int:
    """Bytes of the database in use (pages not on the free list)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(pages - free) * page_size


def enforce(
    tx: Transaction,
    quota: Quota,
    *,
    page_size: int,
    keys: SourceKeys,
    now_ms: int,
    recipients: Sequence[str],
    recipient_quotas: Mapping[str, int] | None = None,
) -> Eviction:
    """Evict (with tombstones) what the limits require, within ``tx``: each recipient's own
    quota first (:func:`enforce_recipient`), then the file's."""
    evicted = 0
    for recipient, limit in (recipient_quotas or {}).items():
        evicted += enforce_recipient(
            tx, recipient, limit, recipients=recipients, keys=keys, now_ms=now_ms
        )
    found = _enforce_file(
        tx, quota, page_size=page_size, keys=keys, now_ms=now_ms, recipients=recipients
    )
    return Eviction(found.readings + evicted, over_quota=found.over_quota)


def enforce_recipient(
    tx: Transaction,
    recipient: str,
    limit_bytes: int,
    *,
    recipients: Sequence[str],
    keys: SourceKeys,
    now_ms: int,
) -> int:
    """Evict for ``recipient`` alone what its quota requires (a tenth more); readings."""
    used = delivery.waiting_bytes(tx, recipient)
    if used <= limit_bytes:
        return 0
    need = used - limit_bytes + limit_bytes // 10
    evicted = 0
    victims = _victims(tx, need, delivery.not_taken_sql(recipient))
    for chunk_id, priority, payload, keys_column, _size in victims:
        evicted += _tombstone(tx, recipient, priority, payload, now_ms)
        delivery.take(
            tx, [(chunk_id, keys_column)], recipient, recipients, keys=keys, now_ms=now_ms
        )
    if evicted:
        bump_meta(tx, "evicted_readings", evicted)
        bump_meta(tx, f"evicted_readings:{recipient}", evicted)
        logger.warning(
            "outbox over %s's quota: evicted %d readings for it (tombstones recorded)",
            recipient,
            evicted,
        )
    return evicted


def _enforce_file(
    tx: Transaction,
    quota: Quota,
    *,
    page_size: int,
    keys: SourceKeys,
    now_ms: int,
    recipients: Sequence[str],
) -> Eviction:
    """Evict (with a tombstone for each recipient that had not taken it) what the file's
    limit requires."""
    used = used_bytes(tx, page_size)
    limit = quota.limit_bytes(used)
    if used <= limit:
        return Eviction()
    # Free a tenth more than needed, so eviction does not run on every commit.
    need = used - limit + limit // 10
    # Only non-clinical readings are ever evicted (a clinical reading is never dropped).
    # Space the store cannot free (idempotency keys, sealed batches, clinical readings) once
    # made every commit evict clinical readings and alerts too: the virtual rig's nearly full
    # disk caught it (hil_tests/test_hil_faults.py).
    evicted = 0
    for chunk_id, priority, payload, keys_column, size in _victims(tx, need):
        taken = {
            r for (r,) in tx.execute("SELECT recipient FROM taken WHERE chunk_id=?", (chunk_id,))
        }
        lost = [r for r in recipients if r not in taken]
        n = 0
        for recipient in lost:
            n = _tombstone(tx, recipient, priority, payload, now_ms)
            bump_meta(tx, f"evicted_readings:{recipient}", n)
        evicted += n
        keys.chunk_left(tx, keys_column, now_ms)
        tx.execute("DELETE FROM chunks WHERE id=?", (chunk_id,))
        tx.execute("DELETE FROM taken WHERE chunk_id=?", (chunk_id,))
        need -= size
    if evicted:
        bump_meta(tx, "evicted_readings", evicted)
        logger.warning("outbox over quota: evicted %d readings (tombstones recorded)", evicted)
    if need > 0:
        logger.error("outbox over quota and nothing left to evict; readings still accepted")
    return Eviction(evicted, over_quota=need > 0)


def _victims(
    tx: Transaction, need: int, not_taken: tuple[str, tuple[str, ...]] = ("", ())
) -> Iterator[tuple[int, int, bytes, bytes | None, int]]:
    """The chunks to evict until ``need`` bytes are freed, one at a time (payload read when its
    turn comes): non-clinical readings not held, lowest priority first, oldest first within
    one; ``not_taken`` narrows them to those a recipient has not taken. Each as ``(id,
    priority, payload, keys column, size)``, the size counted as its payload plus 64 bytes."""
    sql, params = not_taken
    candidates = tx.execute(
        "SELECT id, priority, length(payload) + 64 FROM chunks WHERE held_boot IS NULL "  # noqa: S608
        f"AND priority > ?{sql} ORDER BY priority DESC, id",
        (int(Priority.CLINICAL), *params),
    ).fetchall()
    for chunk_id, priority, size in candidates:
        if need <= 0:
            return
        payload, keys_column = tx.execute(
            "SELECT payload, keys FROM chunks WHERE id=?", (chunk_id,)
        ).fetchone()
        yield chunk_id, priority, payload, keys_column, size
        need -= size


def _tombstone(tx: Transaction, recipient: str, priority: int, payload: bytes, now_ms: int) -> int:
    sids, times, _values, _specials, _flags = unpack(payload)
    ranges: dict[int, list[int]] = {}
    for sid, t in zip(sids, times, strict=True):
        r = ranges.get(sid)
        if r is None:
            ranges[sid] = [1, t, t]
        else:
            r[0] += 1
            r[1] = min(r[1], t)
            r[2] = max(r[2], t)
    tx.executemany(
        "INSERT INTO tombstones(recipient, stream_id, priority, n, first_ms, last_ms, "
        "evicted_ms) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(recipient, stream_id, priority) DO UPDATE SET "
        "n = n + excluded.n, first_ms = min(first_ms, excluded.first_ms), "
        "last_ms = max(last_ms, excluded.last_ms), evicted_ms = excluded.evicted_ms",
        [(recipient, sid, priority, n, lo, hi, now_ms) for sid, (n, lo, hi) in ranges.items()],
    )
    return len(sids)


def bump_meta(tx: Transaction, key: str, by: int) -> None:
    """Add ``by`` to the integer ``meta`` value ``key`` (0 when absent)."""
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
        (key, str(by)),
    )


def tombstones(db: Reader, recipient: str) -> list[TombstoneRow]:
    """The tombstones not yet reported to ``recipient``, in key order."""
    return [
        (int(a), int(b), int(c), int(d), int(e), int(f))
        for a, b, c, d, e, f in db.execute(
            "SELECT stream_id, priority, n, first_ms, last_ms, evicted_ms FROM tombstones "
            "WHERE recipient=? ORDER BY stream_id, priority",
            (recipient,),
        )
    ]


def tombstone_readings(rows: list[TombstoneRow], streams: Streams) -> list[WireReading]:
    """Tombstones as the readings a batch carries."""
    out = []
    for sid, priority, n, first_ms, last_ms, evicted_ms in rows:
        stream, _device, mdc, _unit = streams.rows[sid]
        out.append(
            tombstone_reading(
                stream,
                mdc,
                priority=Priority(priority),
                evicted=n,
                first_ms=first_ms,
                last_ms=last_ms,
                evicted_ms=evicted_ms,
            )
        )
    return out
