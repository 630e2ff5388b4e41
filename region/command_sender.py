"""The region side of remote management: the command key, sequence numbers, send and wait.

``narhub region send ...`` (region/cli.py) signs a command with the region's command
key (:class:`RegionCommandKey`, P-256, ES256, :mod:`protocols.commands`), publishes it to the
hub's ``cmd/{kind}`` topic over mutual TLS with an operator certificate (CN
``region-operator``, allowed by the broker ACL), and waits for the hub's result on
``up/cmd/result``, matched by the SHA-256 of the message.

Sequence numbers: per hub, persisted in the key directory, and never below the current Unix
time in ms, so a region that lost that file still issues numbers above everything it sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import write_atomic
from common.command_keys import PemCommandSigner
from common.errors import HintedError
from common.pki import new_private_key_pem, public_key_pem
from drivers._aio import reraise_if_cancelling
from drivers.mqtt import REASON_FAILURE_THRESHOLD, MqttError, MqttLink
from protocols.command_results import CommandResult, message_digest
from protocols.command_topics import cmd_topic, result_topic
from protocols.commands import Command, CommandSigner

#: MQTT 5.0 reason code 0x10: accepted, but no subscription matched.
NO_MATCHING_SUBSCRIBERS = 0x10
DEFAULT_KID = "region-cmd-1"


class SendError(HintedError, RuntimeError):
    """A command could not be sent or no result came back; ``hint`` says what to do."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class RegionCommandKey:
    """A command-key directory: ``command.key`` (0600), ``command.pem`` (give it to hubs),
    ``command.kid``, and ``command-seq.json`` (the last sequence sent per hub)."""

    directory: Path

    @property
    def key_file(self) -> Path:
        """The private key (stays at the region)."""
        return self.directory / "command.key"

    @property
    def public_file(self) -> Path:
        """The public key hubs pin (``[remote] command_keys``)."""
        return self.directory / "command.pem"

    @property
    def kid(self) -> str:
        """The key id hubs pin it under."""
        try:
            return (self.directory / "command.kid").read_text(encoding="utf-8").strip()
        except OSError:
            raise SendError(
                f"no command key in {self.directory}",
                "run `narhub region command-key init --dir DIR`",
            ) from None

    @classmethod
    def init(
        cls, directory: Path, *, kid: str = DEFAULT_KID, force: bool = False
    ) -> RegionCommandKey:
        """Create a new command key."""
        key = cls(directory)
        if key.key_file.exists() and not force:
            raise SendError(f"a command key exists in {directory}", "use it, or pass --force")
        pem = new_private_key_pem()
        write_atomic(key.key_file, pem, mode=0o600)
        write_atomic(key.public_file, public_key_pem(pem))
        write_atomic(directory / "command.kid", kid.encode() + b"\n")
        return key

    def signer(self) -> CommandSigner:
        """The signer (reads the private key)."""
        kid = self.kid
        try:
            return PemCommandSigner(kid, self.key_file.read_bytes())
        except OSError as exc:
            raise SendError(
                f"cannot read {self.key_file}: {exc.strerror}", "check the path"
            ) from None

    def next_seq(self, hub_id: str, *, now_ms: int | None = None) -> int:
        """The next sequence number for ``hub_id``, persisted before it is used."""
        path = self.directory / "command-seq.json"
        try:
            state: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            state = {}
        except (OSError, ValueError) as exc:
            raise SendError(f"cannot read {path}: {exc}", "repair or remove the file") from None
        seq = max(int(state.get(hub_id, 0)) + 1, _now_ms() if now_ms is None else now_ms)
        state[hub_id] = seq
        write_atomic(path, json.dumps(state, sort_keys=True).encode(), mode=0o600)
        return seq

    def build(
        self,
        hub_id: str,
        kind: str,
        body: Mapping[str, Any],
        *,
        expires_in_s: float,
        now_ms: int | None = None,
    ) -> tuple[Command, bytes]:
        """A signed command for ``hub_id`` (a fresh sequence number is taken)."""
        issued = _now_ms() if now_ms is None else now_ms
        command = Command(
            hub_id=hub_id,
            seq=self.next_seq(hub_id, now_ms=issued),
            issued_ms=issued,
            expires_ms=issued + round(expires_in_s * 1000),
            kind=kind,
            body=dict(body),
        )
        return command, self.signer().sign(command)


async def send_and_wait(
    connect: Callable[[], AbstractAsyncContextManager[MqttLink]],
    hub_id: str,
    kind: str,
    message: bytes,
    *,
    timeout_s: float,
) -> CommandResult:
    """Publish a signed command and return the hub's result for it.

    Raises :class:`SendError` when the broker refuses it, no hub session exists, or no result
    arrives within ``timeout_s`` (the command then waits at the broker until it expires).
    """
    digest = message_digest(message)
    try:
        async with connect() as link:
            await link.subscribe(result_topic(hub_id))
            reason = await link.publish(cmd_topic(hub_id, kind), message)
            if reason >= REASON_FAILURE_THRESHOLD:
                raise SendError(
                    f"the broker refused the command (reason 0x{reason:02X})",
                    "check that the operator certificate's CN is region-operator",
                )
            if reason == NO_MATCHING_SUBSCRIBERS:
                raise SendError(
                    f"hub {hub_id} has no command session at the broker",
                    "check that the hub runs with [remote] configured (`narhub doctor`)",
                )
            try:
                async with asyncio.timeout(timeout_s):
                    async for inbound in link.messages():
                        try:
                            result = CommandResult.from_json(inbound.payload)
                        except ValueError:
                            continue
                        if result.command_sha256 == digest:
                            return result
            except TimeoutError:
                reraise_if_cancelling()
                raise SendError(
                    f"no result from {hub_id} within {timeout_s:g}s",
                    "the hub may be offline: the command waits at the broker until it expires",
                ) from None
    except MqttError as exc:
        raise SendError(
            f"broker connection failed: {exc}", "check host, port and certificates"
        ) from None
    raise SendError("the broker closed the connection", "try again")


def operator_client_id() -> str:
    """A fresh client id per send (clean session)."""
    return f"region-operator-{os.getpid()}-{_now_ms() % 1_000_000}"
