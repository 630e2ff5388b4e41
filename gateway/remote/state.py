"""The hub's remote-management state: the highest sequence accepted and recent results.

Kept in one JSON file replaced atomically (:func:`common.atomic.write_atomic`), so a
replayed command is refused across restarts and power cuts. The sequence is persisted
*before* a command is carried out (at most once: a command cut short by a crash is not run
again; it is reported ``failed``/``interrupted`` when the broker delivers it again, and the
region re-issues it with a new sequence number). Recent results let a redelivered message
(the hub lost its connection before the PUBACK) get its original result again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.atomic import write_atomic
from protocols.command_results import CommandResult

#: Results remembered for redelivered messages.
RECENT_RESULTS = 32


class RemoteStateError(RuntimeError):
    """The state file is unreadable; ``path`` names it (the hub refuses commands until fixed)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"{path}: {reason}; commands are refused until it is repaired or the region "
            "confirms the last sequence number"
        )


class RemoteState:
    """The last accepted sequence number and recent results, durable on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq: int | None = None
        self._results: list[dict[str, Any]] = []
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            last = body["last_seq"]
            results = body["results"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RemoteStateError(self.path, f"cannot read ({exc})") from None
        if not (last is None or isinstance(last, int)) or not isinstance(results, list):
            raise RemoteStateError(self.path, "bad field types")
        self.last_seq = last
        self._results = [r for r in results if isinstance(r, dict)]

    def _save(self) -> None:
        body = {"last_seq": self.last_seq, "results": self._results[-RECENT_RESULTS:]}
        write_atomic(self.path, json.dumps(body, sort_keys=True).encode(), mode=0o600)

    def accept(self, seq: int, placeholder: CommandResult) -> None:
        """Record ``seq`` as accepted (durably) with the result to report if interrupted."""
        self.last_seq = seq
        self._results.append(json.loads(placeholder.to_json()))
        self._save()

    def record(self, result: CommandResult) -> None:
        """Record a result (replacing the placeholder of the same message)."""
        self._results = [
            r for r in self._results if r.get("command_sha256") != result.command_sha256
        ]
        self._results.append(json.loads(result.to_json()))
        self._save()

    def result_for(self, command_sha256: str) -> CommandResult | None:
        """The recorded result of a message seen before, if any."""
        for body in reversed(self._results):
            if body.get("command_sha256") == command_sha256:
                return CommandResult.from_json(json.dumps(body).encode())
        return None
