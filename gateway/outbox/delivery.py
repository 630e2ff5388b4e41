"""Per-recipient delivery state: which recipient has taken which waiting chunk.

A reading is stored once, in its chunk (:mod:`gateway.outbox.chunks`), whatever the number of
recipients. Each recipient *takes* a chunk once: sealed into that recipient's batch (what its
consent allows), withheld (no consent), or evicted for it over its quota (a tombstone of that
recipient). A row of ``taken`` (recipient, chunk id) records it; when every recipient has taken
a chunk it is deleted, its ``taken`` rows and its source keys' row move with it
(:meth:`gateway.outbox.keys.SourceKeys.chunk_left`), in the same transaction. With one
recipient no ``taken`` row is ever written: the chunk is deleted as before (docs/pipeline.md).

A recipient that is down takes nothing: its chunks wait, and nobody else's do. The sealed batch
is that recipient's own (``batches.recipient``) and leaves the store on that recipient's PUBACK
alone (:mod:`gateway.outbox.acks`).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.outbox.keys import SourceKeys
from gateway.outbox.transaction import Reader, Transaction


def not_taken_sql(recipient: str) -> tuple[str, tuple[str]]:
    """SQL (`` AND id NOT IN (...)``) and parameter leaving out the chunks ``recipient`` took."""
    return " AND id NOT IN (SELECT chunk_id FROM taken WHERE recipient=?)", (recipient,)


def take(
    tx: Transaction,
    chunk_ids: Sequence[tuple[int, bytes | None]],
    recipient: str,
    recipients: Sequence[str],
    *,
    keys: SourceKeys,
    now_ms: int,
) -> int:
    """``recipient`` has taken these chunks ((id, keys column) each), within ``tx``: a chunk
    every one of ``recipients`` has now taken is deleted, the others remember who took them.
    Returns how many chunks were deleted."""
    others = [r for r in recipients if r != recipient]
    deleted = 0
    for chunk_id, keys_column in chunk_ids:
        if others and _taken_by(tx, chunk_id, others) < len(others):
            tx.execute(
                "INSERT OR IGNORE INTO taken(recipient, chunk_id) VALUES (?, ?)",
                (recipient, chunk_id),
            )
            continue
        keys.chunk_left(tx, keys_column, now_ms)
        tx.execute("DELETE FROM chunks WHERE id=?", (chunk_id,))
        if others:
            tx.execute("DELETE FROM taken WHERE chunk_id=?", (chunk_id,))
        deleted += 1
    return deleted


def _taken_by(db: Reader, chunk_id: int, recipients: Sequence[str]) -> int:
    marks = ",".join("?" * len(recipients))
    return int(
        db.scalar(
            f"SELECT count(*) FROM taken WHERE chunk_id=? AND recipient IN ({marks})",  # noqa: S608
            (chunk_id, *recipients),
        )
    )


def forget_removed(
    tx: Transaction, recipients: Sequence[str], *, keys: SourceKeys, now_ms: int
) -> int:
    """A recipient no longer configured: its ``taken`` rows are dropped, and every chunk all
    remaining ``recipients`` have taken is deleted (its keys moved on), within ``tx``.
    Returns the chunks deleted. Its unsent batches are kept (a configuration put back sends
    them); nothing is written when there is nothing to forget."""
    marks = ",".join("?" * len(recipients))
    tx.execute(f"DELETE FROM taken WHERE recipient NOT IN ({marks})", tuple(recipients))  # noqa: S608
    done = tx.execute(
        "SELECT c.id, c.keys FROM chunks c JOIN taken t ON t.chunk_id = c.id "
        "GROUP BY c.id HAVING count(*) >= ?",
        (len(recipients),),
    ).fetchall()
    for chunk_id, keys_column in done:
        keys.chunk_left(tx, keys_column, now_ms)
        tx.execute("DELETE FROM chunks WHERE id=?", (chunk_id,))
        tx.execute("DELETE FROM taken WHERE chunk_id=?", (chunk_id,))
    return len(done)


def removed(db: Reader, recipients: Sequence[str]) -> bool:
    """Whether ``taken`` names a recipient not among ``recipients``, or a chunk every one of
    them has taken (one was removed): :func:`forget_removed` has something to do."""
    marks = ",".join("?" * len(recipients))
    other = f"SELECT 1 FROM taken WHERE recipient NOT IN ({marks}) LIMIT 1"  # noqa: S608
    if db.scalar(other, tuple(recipients)) is not None:
        return True
    done = "SELECT 1 FROM taken GROUP BY chunk_id HAVING count(*) >= ? LIMIT 1"
    return db.scalar(done, (len(recipients),)) is not None


def waiting_readings(db: Reader, recipient: str) -> int:
    """Readings waiting (not held) that ``recipient`` has not taken yet."""
    sql, params = not_taken_sql(recipient)
    return int(
        db.scalar(
            f"SELECT coalesce(sum(n), 0) FROM chunks WHERE held_boot IS NULL{sql}",  # noqa: S608
            params,
        )
    )


def waiting_bytes(db: Reader, recipient: str) -> int:
    """Bytes of the waiting chunks ``recipient`` has not taken, and of its unsent batches
    (what its quota counts, :mod:`gateway.outbox.quota`)."""
    sql, params = not_taken_sql(recipient)
    chunks = db.scalar(
        "SELECT coalesce(sum(length(payload) + 64), 0) FROM chunks "  # noqa: S608
        f"WHERE held_boot IS NULL{sql}",
        params,
    )
    batches = db.scalar(
        "SELECT coalesce(sum(length(message) + 64), 0) FROM batches "
        "WHERE recipient=? AND rejected_reason IS NULL",
        (recipient,),
    )
    return int(chunks) + int(batches)
