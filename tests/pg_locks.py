"""Waiting in a test until a PostgreSQL backend waits on a lock (the server's own view)."""

from __future__ import annotations

import time

import psycopg


def lock_waiter(url: str, application_name: str, timeout_s: float) -> str | None:
    """The ``application_name`` of a backend that waits on a lock, its name matching
    ``application_name`` (a LIKE pattern), polled from ``pg_stat_activity`` (PostgreSQL 15
    documentation, 28.2.3 "pg_stat_activity": ``wait_event_type`` 'Lock'); ``None`` when none
    did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT application_name FROM pg_stat_activity "
                "WHERE application_name LIKE %s AND wait_event_type = 'Lock'",
                (application_name,),
            ).fetchone()
            if row is not None:
                return str(row[0])
            time.sleep(0.01)  # polling an external server's state, bounded by the deadline
    return None
