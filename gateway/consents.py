"""The hub's consent ledger on disk: ``{data_dir}/consents.json`` (docs/consent.md).

Records are appended, never edited (a withdrawal is a new record), and the file is replaced
atomically (common/atomic.py), so after a power cut it holds the ledger before or after the
append, never a mix. The technician's ``narhub consent`` and the ``consent`` remote command
both append here; the hub reads it again when the file changes (its ``stamp``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common.atomic import write_atomic
from protocols.consent import ConsentError, ConsentRecord, record_from_map

FILE_NAME = "consents.json"
FILE_VERSION = 1


class ConsentFileError(ValueError):
    """The consent file cannot be read: ``path``, the record ``index`` (or None) and why."""

    def __init__(self, path: Path, reason: str, *, index: int | None = None) -> None:
        self.path = path
        self.index = index
        self.reason = reason
        where = f" record {index}" if index is not None else ""
        super().__init__(f"{path}{where}: {reason}")


@dataclass(frozen=True)
class ConsentLedger:
    """The records as read, and the file's stamp (mtime ns, size) to notice a change."""

    records: tuple[ConsentRecord, ...]
    stamp: tuple[int, int] | None


def consent_path(data_dir: Path) -> Path:
    """Where the hub keeps its consents."""
    return data_dir / FILE_NAME


def file_stamp(path: Path) -> tuple[int, int] | None:
    """The file's (mtime ns, size), None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def read_ledger(path: Path) -> ConsentLedger:
    """The ledger at ``path``; no file: no consent (nothing leaves)."""
    stamp = file_stamp(path)
    if stamp is None:
        return ConsentLedger((), None)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConsentFileError(path, f"not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
        raise ConsentFileError(path, f"not a consent file of version {FILE_VERSION}")
    items = doc.get("records")
    if not isinstance(items, list):
        raise ConsentFileError(path, "no list of records")
    records = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConsentFileError(path, "not a map", index=index)
        try:
            records.append(record_from_map(item))
        except ConsentError as exc:
            raise ConsentFileError(path, str(exc), index=index) from None
    return ConsentLedger(tuple(records), stamp)


def append_record(path: Path, record: ConsentRecord) -> ConsentLedger:
    """Append ``record`` to the ledger at ``path`` (atomically) and return the new ledger."""
    records = (*read_ledger(path).records, record)
    doc = {"version": FILE_VERSION, "records": [r.to_map() for r in records]}
    write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode(), mode=0o600)
    return ConsentLedger(records, file_stamp(path))
