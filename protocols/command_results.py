"""The result a hub reports for every command it receives (JSON on ``up/cmd/result``).

A result names the command by the SHA-256 of the exact message bytes, so the sender can match
it even when the hub could not read a sequence number (an unsigned or malformed message).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What happened to a command."""

    #: Verified and carried out.
    APPLIED = "applied"
    #: Refused: not verified (unsigned, expired, replayed, wrong hub, malformed), or its body is
    #: not acceptable (an invalid configuration, a change remote management may not make).
    REJECTED = "rejected"
    #: Verified and acceptable, but carrying it out failed; nothing was changed.
    FAILED = "failed"


def message_digest(message: bytes) -> str:
    """The identity of a command message in results."""
    return hashlib.sha256(message).hexdigest()


@dataclass(frozen=True)
class CommandResult:
    """One command's outcome; ``data`` holds what the command returns (a CSR, versions)."""

    hub_id: str
    command_sha256: str
    status: Status
    reason: str | None = None
    detail: str = ""
    seq: int | None = None
    kind: str | None = None
    at_ms: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The wire form (UTF-8 JSON object)."""
        body = asdict(self)
        body["status"] = self.status.value
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> CommandResult:
        """Parse a result; raises ``ValueError`` naming the problem."""
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"command result is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValueError("command result is not a JSON object")
        try:
            return cls(
                hub_id=str(body["hub_id"]),
                command_sha256=str(body["command_sha256"]),
                status=Status(body["status"]),
                reason=body.get("reason"),
                detail=str(body.get("detail", "")),
                seq=body.get("seq"),
                kind=body.get("kind"),
                at_ms=int(body.get("at_ms", 0)),
                data=dict(body.get("data") or {}),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"command result is missing or has a bad field: {exc}") from None
