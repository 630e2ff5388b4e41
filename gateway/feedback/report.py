"""The running hub's word on its feedback outputs, for ``narhub doctor``.

The component writes ``feedback.json`` beside the hub's activity file (gateway/activity.py,
:func:`~gateway.activity.activity_path`: systemd's runtime directory, RAM, under the unit)
when an output opens or fails: which outputs are open, failures per output and the last
one's error. Counts and error types only, never a device or a value. Rewritten atomically,
only on such a change (rare), never fsynced: it is a view.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.activity import activity_path, writer_alive

REPORT_FILE = "feedback.json"
REPORT_VERSION = 1


def report_path(data_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the hub with this data directory keeps its feedback report."""
    return activity_path(data_dir, environ).with_name(REPORT_FILE)


def write_report(
    path: Path, *, opened: set[str], failures: Mapping[str, int], last: Mapping[str, str]
) -> None:
    """Replace the report (errors are swallowed: a full disk must not touch the hub)."""
    document = {
        "version": REPORT_VERSION,
        "pid": os.getpid(),
        "updated_ms": time.time_ns() // 1_000_000,
        "opened": sorted(opened),
        "failures": dict(failures),
        "last_failure": dict(last),
    }
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)


def read_report(path: Path) -> dict[str, Any] | None:
    """The report, when the hub that wrote it still runs; None otherwise."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("version") != REPORT_VERSION:
        return None
    return document if writer_alive(document.get("pid")) else None
