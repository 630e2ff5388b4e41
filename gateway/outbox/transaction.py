"""The outbox's one transaction seam: the one SQLite connection, its reads and its writes.

Every change to the outbox file is one ``BEGIN IMMEDIATE ... COMMIT`` opened by
:meth:`Database.write`; each concern's writing function (keys, quota, held readings, sealing,
acknowledgements) takes the :class:`Transaction` it yields and nothing else, so a reader of a
concern sees what it may change and a caller decides what commits together (one fsync with
``synchronous=FULL``, https://www.sqlite.org/pragma.html#pragma_synchronous).

State kept in memory beside the file (stream ids, keys of waiting chunks, counts) changes in
:meth:`Transaction.on_commit` and :meth:`Transaction.on_rollback` hooks, so it never says
more than the file after a failed commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

Params = Sequence[Any]


class Transaction:
    """One write transaction under way (``BEGIN IMMEDIATE`` taken, not yet committed)."""

    __slots__ = ("_connection", "_on_commit", "_on_rollback")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._on_commit: list[Callable[[], None]] = []
        self._on_rollback: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement inside the transaction."""
        return self._connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> sqlite3.Cursor:
        """Run one statement per row inside the transaction."""
        return self._connection.executemany(sql, rows)

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row of a read (None when there is no row)."""
        row = self._connection.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the transaction has committed (in the order registered)."""
        self._on_commit.append(hook)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` if the transaction rolls back (its writes are gone)."""
        self._on_rollback.append(hook)

    def _committed(self) -> None:
        for hook in self._on_commit:
            hook()

    def _rolled_back(self) -> None:
        for hook in self._on_rollback:
            hook()


class Database:
    """The outbox file's one connection (autocommit: every write goes through :meth:`write`)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        #: Bytes per page of this file (fixed when it was created).
        self.page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """A read (or a pragma) outside any write transaction."""
        return self._connection.execute(sql, params)

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row of a read (None when there is no row)."""
        row = self._connection.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the body or the commit
        raises. When this returns, the transaction is durable (``synchronous=FULL``)."""
        connection = self._connection
        if connection.in_transaction:
            msg = "outbox transactions do not nest"
            raise RuntimeError(msg)
        tx = Transaction(connection)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield tx
            connection.execute("COMMIT")
        except BaseException:
            self._roll_back()
            tx._rolled_back()
            raise
        tx._committed()

    def _roll_back(self) -> None:
        """Roll back what is still open (a failed ``COMMIT`` may have left it open, or may
        have rolled back already)."""
        if self._connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Database]:
        """Reads that see one state of the file (a deferred ``BEGIN`` ... ``COMMIT``: no write
        lock, nothing written)."""
        connection = self._connection
        connection.execute("BEGIN")
        try:
            yield self
        finally:
            if connection.in_transaction:
                connection.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (a last checkpoint leaves the WAL small)."""
        self._connection.close()


#: Where a concern's reads run: inside a write transaction or on their own.
Reader = Database | Transaction
