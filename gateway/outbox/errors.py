"""The outbox's own errors (each names the file)."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base of the outbox's own errors."""


class NewerSchemaError(StoreError):
    """The database was written by a newer narhub (never moved aside: it is not damaged)."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version
        super().__init__(f"{path}: schema version {version} is newer than this narhub's")


class DamagedStoreError(StoreError):
    """The database failed its integrity check (``recover=False``: nothing was moved)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: damaged ({reason})")


class StoreBusyError(StoreError):
    """Another process holds the store (the running hub opens it exclusively)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path}: in use by another process (is narhub running?)")
