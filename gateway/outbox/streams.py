"""Stream identities (name, device, MDC code, unit) interned in the ``streams`` table: a chunk
stores a small id per reading, the batch the identity (docs/pipeline.md, "The store")."""

from __future__ import annotations

from gateway.outbox.transaction import Database, Transaction

#: (stream, device, MDC code, UCUM unit).
StreamKey = tuple[str, str, int, str]


class Streams:
    """The ``streams`` table, cached in memory both ways (ids are never reused)."""

    def __init__(self, db: Database) -> None:
        #: Identity -> id (read by the hot path of a commit).
        self.ids: dict[StreamKey, int] = {}
        #: Id -> identity (read when a chunk becomes wire readings).
        self.rows: dict[int, StreamKey] = {}
        for sid, stream, device, mdc, unit in db.execute(
            "SELECT id, stream, device, mdc, unit FROM streams"
        ):
            self.ids[stream, device, mdc, unit] = sid
            self.rows[sid] = (stream, device, mdc, unit)

    def add(self, tx: Transaction, key: StreamKey) -> int:
        """The id of a stream not interned yet: inserted with ``tx``, forgotten if it rolls
        back."""
        cursor = tx.execute(
            "INSERT INTO streams(stream, device, mdc, unit) VALUES (?, ?, ?, ?)", key
        )
        sid = int(cursor.lastrowid or 0)
        self.ids[key] = sid
        self.rows[sid] = key
        tx.on_rollback(lambda: self._forget(key))
        return sid

    def _forget(self, key: StreamKey) -> None:
        self.rows.pop(self.ids.pop(key), None)
