"""The ``consent`` command: a recipient records a consent on the hub (docs/consent.md).

The body is a consent record (protocols/consent.py). It is accepted only when the key that
signed the command belongs to the recipient the record names (``command_kids`` of
``[[recipients]]``; a kid no recipient claims is the home recipient's): one care organisation
cannot grant or withdraw for another. The record is appended to the hub's consent ledger
(gateway/consents.py); the outbox applies it from its next seal.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.config import HubConfig
from gateway.consents import ConsentFileError, append_record, consent_path
from gateway.remote.handler import CommandFailedError, CommandRefusedError
from protocols.commands import Command
from protocols.consent import ConsentError, allowed_now, record_from_map


class ConsentApplier:
    """Carries out ``consent`` commands for one hub configuration."""

    def __init__(self, config: HubConfig) -> None:
        self._config = config

    async def __call__(self, command: Command) -> dict[str, Any]:
        """Validate and append the record; the result says what the recipient may receive."""
        try:
            record = record_from_map(command.body)
        except ConsentError as exc:
            raise CommandRefusedError("bad-consent", str(exc), {"field": exc.field}) from None
        config = self._config
        names = [r.name for r in config.all_recipients()]
        if record.recipient not in names:
            detail = f"no recipient {record.recipient!r} on this hub"
            raise CommandRefusedError("unknown-recipient", detail)
        signer = config.recipient_of_kid(command.kid)
        if signer != record.recipient:
            detail = f"key {command.kid!r} belongs to {signer!r}, not {record.recipient!r}"
            raise CommandRefusedError("wrong-recipient", detail)
        try:
            ledger = append_record(consent_path(config.data_dir), record)
        except (ConsentFileError, OSError) as exc:
            raise CommandFailedError("consent-file", str(exc)) from None
        now_ms = time.time_ns() // 1_000_000
        may = allowed_now(ledger.records, record.recipient, now_ms)
        return {"recipient": record.recipient, "may_receive": sorted(c.value for c in may)}
