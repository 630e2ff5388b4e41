"""What the region knows about each device, across batches: the seam and its SQLite form.

A hub reports a device's Device Information once per session, and its measurements arrive in
later batches too (an oximeter's night is one session and many batches). The registry keeps
each device's merged description (:meth:`protocols.fhir.DeviceDescription.merged`), so that
every batch's Device resource says everything known so far. :class:`DeviceRegistry` is the
seam; :class:`SqliteDeviceRegistry` keeps it in the receiver's state database (one table, plain
SQL, the same schema in PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from protocols.fhir import DeviceDescription
from region.sqlite_db import open_sqlite

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS device_descriptions ("
    "device TEXT PRIMARY KEY, description TEXT NOT NULL)"
)


class DeviceRegistry(Protocol):
    """Merged device descriptions by device name."""

    def update(self, seen: Mapping[str, DeviceDescription]) -> dict[str, DeviceDescription]:
        """Merge what a batch says into what is known; returns the merged descriptions of
        the devices in ``seen`` (on disk when this returns)."""
        ...

    def get(self, devices: list[str]) -> dict[str, DeviceDescription]:
        """What is known of these devices (unknown ones are left out)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class SqliteDeviceRegistry:
    """:class:`DeviceRegistry` in an SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = open_sqlite(path, (SCHEMA,), timeout_s=30)

    def get(self, devices: list[str]) -> dict[str, DeviceDescription]:
        """Known descriptions of ``devices``."""
        out = {}
        for device in devices:
            row = self._db.execute(
                "SELECT description FROM device_descriptions WHERE device = ?", (device,)
            ).fetchone()
            if row is not None:
                out[device] = DeviceDescription.from_json(str(row[0]))
        return out

    def update(self, seen: Mapping[str, DeviceDescription]) -> dict[str, DeviceDescription]:
        """Merge and store (one transaction); unchanged descriptions are not written."""
        if not seen:
            return {}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            known = self.get(list(seen))
            merged = {}
            for device, description in seen.items():
                old = known.get(device)
                new = description if old is None else old.merged(description)
                merged[device] = new
                if new != old:
                    self._db.execute(
                        "INSERT INTO device_descriptions (device, description) VALUES (?, ?) "
                        "ON CONFLICT (device) DO UPDATE SET description = excluded.description",
                        (device, new.to_json()),
                    )
        return merged

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
