"""Raw records: device values a hub could not decode, kept by the region to decode later.

A hub ships a value no decoder of its version accepted as a raw record
(:mod:`protocols.uplink.undecoded`: flag ``undecoded``, the bytes as hex). The region never
files one as an Observation: :class:`region.filing.Filer` keeps it here, in the receiver's
state database (one table, plain SQL, the same schema in PostgreSQL), with its hub, device,
characteristic UUID, reception time and bytes, exactly once per batch reading.

Decoding later: :meth:`SqliteRawRecords.records` gives the stored records with their bytes
and characteristic; a newer ``protocols.gatt.decode`` (with the device's profile, when the
device turns out to be a quirky model) turns each into a measurement, and
:meth:`SqliteRawRecords.decoded` marks it so that a second pass skips it
(docs/region.md, "Raw records").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from protocols.uplink.undecoded import RawRecord
from region.sqlite_db import insert_new, open_sqlite

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS raw_records ("
    "hub TEXT NOT NULL, device TEXT NOT NULL, uuid TEXT NOT NULL, t_ms INTEGER NOT NULL, "
    "raw BLOB NOT NULL, decoded_by TEXT, "
    "PRIMARY KEY (hub, device, uuid, t_ms, raw))"
)


@dataclass(frozen=True, slots=True)
class StoredRawRecord:
    """A raw record as the region keeps it; ``decoded_by`` names the decoder that read it."""

    hub: str
    record: RawRecord
    decoded_by: str | None = None


#: Marks one record decoded (``?`` marks; the PostgreSQL store runs it with ``%s``).
MARK_DECODED = (
    "UPDATE raw_records SET decoded_by = ? "
    "WHERE hub = ? AND device = ? AND uuid = ? AND t_ms = ? AND raw = ?"
)


def records_query(*, undecoded_only: bool) -> str:
    """The stored records, oldest first (no parameters: the same in both dialects)."""
    where = " WHERE decoded_by IS NULL" if undecoded_only else ""
    return (
        "SELECT hub, device, uuid, t_ms, raw, decoded_by FROM raw_records"  # noqa: S608
        f"{where} ORDER BY t_ms, hub, device"
    )


def stored_records(rows: Iterable[Sequence[Any]]) -> list[StoredRawRecord]:
    """The rows of :func:`records_query` as records."""
    return [
        StoredRawRecord(str(h), RawRecord(str(d), str(u), int(t), bytes(raw)), by)
        for h, d, u, t, raw, by in rows
    ]


def mark_decoded_params(hub: str, record: RawRecord, decoder: str) -> tuple[object, ...]:
    """The parameters of :data:`MARK_DECODED`."""
    return (decoder, hub, record.device, record.uuid, record.t_ms, record.raw)


class RawRecords(Protocol):
    """The region's raw records (the seam; :class:`SqliteRawRecords` is its SQLite form)."""

    def keep(self, hub: str, records: Sequence[RawRecord]) -> int:
        """Store records (on disk when this returns); returns how many were new."""
        ...

    def records(self, *, undecoded_only: bool = True) -> list[StoredRawRecord]:
        """The stored records, oldest first."""
        ...

    def decoded(self, hub: str, record: RawRecord, decoder: str) -> None:
        """Mark a record as decoded by ``decoder`` (a name and version)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class SqliteRawRecords:
    """:class:`RawRecords` in an SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path, (SCHEMA,), timeout_s=30)

    def keep(self, hub: str, records: Sequence[RawRecord]) -> int:
        """Insert the records not stored yet (a batch delivered twice keeps them once)."""
        return insert_new(
            self._db,
            "INSERT OR IGNORE INTO raw_records (hub, device, uuid, t_ms, raw) "
            "VALUES (?, ?, ?, ?, ?)",
            [(hub, r.device, r.uuid, r.t_ms, r.raw) for r in records],
        )

    def records(self, *, undecoded_only: bool = True) -> list[StoredRawRecord]:
        """Stored records, oldest first."""
        return stored_records(self._db.execute(records_query(undecoded_only=undecoded_only)))

    def decoded(self, hub: str, record: RawRecord, decoder: str) -> None:
        """Mark one record decoded."""
        with self._db:
            self._db.execute(MARK_DECODED, mark_decoded_params(hub, record, decoder))

    def close(self) -> None:
        """Release the connection."""
        self._db.close()
