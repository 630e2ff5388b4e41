"""Idempotency: a reading whose source key was stored before is skipped.

Sources resend what they could not see acknowledged (a board's unacknowledged readings, a RACP
download from the last committed cursor); the outbox stores a reading with a given key at most
once, for ``dedup_retention_s``. Where a key lives (docs/pipeline.md, "Bytes on the SD card"):

- a waiting chunk keeps its readings' keys in its own row (``chunks.keys``), so a commit of
  readings writes the chunk's page only, not a page of a key B-tree too (where a key lands is
  random): one 4 KiB page per commit fewer on the SD card;
- when the chunk is sealed or evicted, its keys go on as one ``recent_keys`` row (an append);
- every :data:`PRUNE_INTERVAL_S`, or beyond :data:`MAX_RECENT_KEYS` in memory, those rows are
  folded into the ``source_keys`` B-tree (hours of keys touch each leaf once) and expired keys
  pruned there.

The keys of waiting chunks and of ``recent_keys`` are also held in memory (:class:`SourceKeys`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cbor2

from gateway.outbox.transaction import Database, Transaction
from gateway.reading import Reading

#: Keys of recently sealed chunks held in memory (and ``recent_keys``) at most before they
#: are folded into ``source_keys`` ahead of the prune interval.
MAX_RECENT_KEYS = 20_000
#: How often (wall clock) expired idempotency keys are pruned.
PRUNE_INTERVAL_S = 6 * 3600.0
_KEY_QUERY_CHUNK = 500


class SourceKeys:
    """The source keys the outbox remembers, in memory and in the file."""

    def __init__(self, db: Database, *, retention_s: float) -> None:
        self.retention_s = retention_s
        #: Source keys of waiting chunks and of ``recent_keys`` (their rows hold them too).
        self.recent: set[str] = set()
        #: Wall time (epoch ms) of the next fold and prune.
        self.next_prune_ms = 0
        for (keys,) in db.execute(
            "SELECT keys FROM chunks WHERE keys IS NOT NULL UNION ALL SELECT keys FROM recent_keys"
        ):
            self.recent.update(cbor2.loads(keys))

    def fresh(
        self, tx: Transaction, groups: Sequence[Sequence[Reading]]
    ) -> tuple[list[Reading], list[int]]:
        """The readings not stored before (a key repeated among them: its first reading), and
        how many of each group; their keys are remembered once ``tx`` commits. Reads only: a
        new key is written with its chunk (:func:`gateway.outbox.chunks.write`)."""
        fresh = self._fresh_keys(tx, groups)
        kept: list[Reading] = []
        counts = []
        for group in groups:
            before = len(kept)
            if fresh is None:
                kept.extend(group)
            else:
                for r in group:
                    key = r.source_key
                    if key is None:
                        kept.append(r)
                    elif key in fresh:
                        fresh.discard(key)  # a key repeated in one commit: stored once
                        kept.append(r)
            counts.append(len(kept) - before)
        tx.on_commit(lambda: self.recent.update(r.source_key for r in kept if r.source_key))
        return kept, counts

    def _fresh_keys(self, tx: Transaction, groups: Sequence[Sequence[Reading]]) -> set[str] | None:
        keys = {r.source_key for g in groups for r in g if r.source_key is not None}
        if not keys:
            return None
        keys.difference_update(self.recent)
        listed = list(keys)
        for i in range(0, len(listed), _KEY_QUERY_CHUNK):
            part = listed[i : i + _KEY_QUERY_CHUNK]
            marks = ",".join("?" * len(part))
            keys.difference_update(
                row[0]
                for row in tx.execute(
                    f"SELECT key FROM source_keys WHERE key IN ({marks})",  # noqa: S608
                    part,
                )
            )
        return keys

    def chunk_left(self, tx: Transaction, keys_column: bytes | None, now_ms: int) -> None:
        """A chunk leaves (sealed, evicted): its keys go on as one ``recent_keys`` row (an
        append: one page), still in memory, until :meth:`fold`."""
        if keys_column is not None:
            tx.execute(
                "INSERT INTO recent_keys(stored_ms, keys) VALUES (?, ?)", (now_ms, keys_column)
            )

    def maintain(self, tx: Transaction, now_ms: int) -> None:
        """Fold and prune when it is time (the prune interval, or too many keys in memory)."""
        if now_ms >= self.next_prune_ms or self._too_many(tx):
            self.fold(tx)
            self._prune(tx, now_ms)

    def _too_many(self, tx: Transaction) -> bool:
        """Beyond :data:`MAX_RECENT_KEYS` in memory with sealed ones to fold (those of waiting
        chunks stay in memory whatever: folding cannot shrink them, so it is not tried)."""
        return (
            len(self.recent) > MAX_RECENT_KEYS
            and tx.execute("SELECT 1 FROM recent_keys LIMIT 1").fetchone() is not None
        )

    def fold(self, tx: Transaction) -> None:
        """Move the ``recent_keys`` rows into the ``source_keys`` B-tree: hours of keys touch
        each leaf once, where a key per seal would touch a leaf each. They are forgotten in
        memory once ``tx`` commits."""
        folded: list[str] = []
        for stored_ms, keys in tx.execute("SELECT stored_ms, keys FROM recent_keys").fetchall():
            listed = cbor2.loads(keys)
            tx.executemany(
                "INSERT OR IGNORE INTO source_keys(key, stored_ms) VALUES (?, ?)",
                [(k, stored_ms) for k in listed],
            )
            folded.extend(listed)
        tx.execute("DELETE FROM recent_keys")
        tx.on_commit(lambda: self.recent.difference_update(folded))  # in source_keys now

    def _prune(self, tx: Transaction, now_ms: int) -> None:
        cutoff = now_ms - round(self.retention_s * 1000)
        tx.execute("DELETE FROM source_keys WHERE stored_ms < ?", (cutoff,))
        next_prune_ms = now_ms + round(PRUNE_INTERVAL_S * 1000)

        def pruned() -> None:
            self.next_prune_ms = next_prune_ms

        tx.on_commit(pruned)

    def stored(self, db: Database) -> int:
        """Source keys folded into ``source_keys``."""
        return int(db.scalar("SELECT count(*) FROM source_keys"))
