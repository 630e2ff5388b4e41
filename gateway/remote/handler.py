"""The hub's command handler: receive, verify, carry out once, report (docs/remote-management.md).

Order for every message on ``narhub/v1/{hub_id}/cmd/#``:

1. a message seen before (same SHA-256) gets its recorded result again (a redelivery after a
   lost PUBACK is not a new command);
2. :meth:`protocols.commands.CommandVerifier.verify` against the pinned keys, this hub id, the
   wall clock and the last accepted sequence; a refusal is reported with its typed reason
   (``unsigned``, ``expired``, ``replayed``, ``wrong-hub``, ``malformed``);
3. the sequence is persisted (:class:`gateway.remote.state.RemoteState`), then the applier for
   the command's kind runs; an applier refuses with :class:`CommandRefusedError` (reported
   ``rejected``) or fails with :class:`CommandFailedError` (``failed``, nothing changed);
4. the result is published (QoS 1) on ``narhub/v1/{hub_id}/up/cmd/result``, and only then is
   the command PUBACKed, so a hub that dies in between gets it again and answers it.

The handler keeps its own MQTT session (client id ``{hub_id}-cmd``, persistent, so commands
sent while the hub is offline wait at the broker) next to the uplink's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from common.backoff import Backoff
from drivers.mqtt import MqttError, MqttLink
from gateway.remote.state import RemoteState
from gateway.supervisor import Component, RestartPolicy, RestartRequested, supervise
from protocols.command_results import CommandResult, Status, message_digest
from protocols.command_topics import cmd_filter, result_topic
from protocols.commands import Command, CommandError, CommandVerifier

logger = logging.getLogger(__name__)


class RemoteError(RuntimeError):
    """Base of the errors an applier raises; ``reason`` is the short code reported."""

    status = Status.FAILED

    def __init__(self, reason: str, detail: str, data: Mapping[str, Any] | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.data = dict(data or {})
        super().__init__(f"{reason}: {detail}")


class CommandRefusedError(RemoteError):
    """The command is verified but its body is not acceptable; nothing was changed."""

    status = Status.REJECTED


class CommandFailedError(RemoteError):
    """Carrying the command out failed; nothing was changed (the old state still works)."""

    status = Status.FAILED


class ReconnectRequested(RestartRequested):
    """Raised inside the session after a result is sent: reconnect with new credentials."""


#: An applier carries out one kind of command and returns the result's ``data``.
Applier = Callable[[Command], Awaitable[dict[str, Any]]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class CommandHandler(Component):
    """Verifies and carries out region commands for one hub: ``async with handler`` runs its
    session as the task ``remote`` of its own TaskGroup (:meth:`run` is that task)."""

    def __init__(
        self,
        hub_id: str,
        verifier: CommandVerifier,
        state: RemoteState,
        appliers: Mapping[str, Applier],
        connect: Callable[[], AbstractAsyncContextManager[MqttLink]],
        *,
        clock_ms: Callable[[], int] = _now_ms,
        backoff: Backoff | None = None,
    ) -> None:
        self.hub_id = hub_id
        self._verifier = verifier
        self.state = state
        self._appliers = dict(appliers)
        self._connect = connect
        self._clock_ms = clock_ms
        self._backoff = backoff or Backoff(initial_s=1.0, cap_s=120.0)
        # OSError: the state file could not be written; the unacknowledged command comes
        # again after the reconnect.
        self._restarts = RestartPolicy.reconnecting(
            (MqttError, OSError), self._backoff, at_once=ReconnectRequested
        )
        #: Set while subscribed (the broker routes commands only to a live subscription).
        self.subscribed = asyncio.Event()
        #: Broker sessions opened so far (a renewal reconnects with the new certificate).
        self.sessions = 0
        self._sessions_changed = asyncio.Condition()
        #: Every result in order (for tests and status).
        self.results: list[CommandResult] = []
        #: Called after each result is published (the hub republishes its status).
        self.on_result: Callable[[CommandResult], None] | None = None
        self._reconnect = False

    async def wait_sessions(self, count: int) -> None:
        """Return once ``count`` broker sessions were opened (subscribed)."""
        async with self._sessions_changed:
            await self._sessions_changed.wait_for(lambda: self.sessions >= count)

    def last_summary(self) -> dict[str, Any] | None:
        """The newest result for the status topic: kind, sequence, outcome, reason, time
        (never the command's data: a CSR or a configuration stays on the result topic)."""
        if not self.results:
            return None
        r = self.results[-1]
        return {
            "kind": r.kind,
            "seq": r.seq,
            "status": str(r.status),
            "reason": r.reason,
            "at_ms": r.at_ms,
        }

    def add_applier(self, kind: str, applier: Applier) -> None:
        """Carry out commands of ``kind`` with ``applier`` from now on."""
        self._appliers[kind] = applier

    def request_reconnect(self) -> None:
        """After the current result is sent, reconnect (new certificate installed)."""
        self._reconnect = True

    def _result(
        self,
        digest: str,
        status: Status,
        *,
        reason: str | None = None,
        detail: str = "",
        command: Command | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        return CommandResult(
            hub_id=self.hub_id,
            command_sha256=digest,
            status=status,
            reason=reason,
            detail=detail,
            seq=None if command is None else command.seq,
            kind=None if command is None else command.kind,
            at_ms=self._clock_ms(),
            data=dict(data or {}),
        )

    async def handle(self, message: bytes) -> CommandResult:
        """Verify and carry out one command message; every outcome is a result, never raised."""
        digest = message_digest(message)
        seen = self.state.result_for(digest)
        if seen is not None:
            return seen
        try:
            command = self._verifier.verify(
                message, now_ms=self._clock_ms(), last_seq=self.state.last_seq
            )
        except CommandError as exc:
            logger.warning("command refused: %s", exc.reason)
            return self._result(digest, Status.REJECTED, reason=exc.reason, detail=str(exc))
        applier = self._appliers.get(command.kind)
        if applier is None:
            # Unsupported here: refused before the sequence is consumed.
            logger.warning("command seq=%d refused: kind %s not enabled", command.seq, command.kind)
            return self._result(
                digest,
                Status.REJECTED,
                reason="unsupported",
                detail=f"this hub does not carry out {command.kind!r} commands",
                command=command,
            )
        interrupted = self._result(
            digest,
            Status.FAILED,
            reason="interrupted",
            detail="the hub stopped while carrying it out; send it again with a new sequence",
            command=command,
        )
        self.state.accept(command.seq, interrupted)
        try:
            data = await applier(command)
        except RemoteError as exc:
            result = self._result(
                digest,
                exc.status,
                reason=exc.reason,
                detail=exc.detail,
                command=command,
                data=exc.data,
            )
        except Exception as exc:
            # A fault in carrying out a management command must never stop the hub (and with
            # it the readings): it is reported as a failure, with its type, and logged.
            logger.exception("command seq=%d kind=%s failed", command.seq, command.kind)
            result = self._result(
                digest,
                Status.FAILED,
                reason="internal-error",
                detail=type(exc).__name__,
                command=command,
            )
        else:
            result = self._result(digest, Status.APPLIED, command=command, data=data)
        self.state.record(result)
        logger.info(
            "command seq=%d kind=%s: %s%s",
            command.seq,
            command.kind,
            result.status.value,
            f" ({result.reason})" if result.reason else "",
        )
        return result

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        await self._open_tasks(stack)
        self._start("remote", self.run())

    async def run(self) -> None:
        """Subscribe and handle commands until cancelled; the supervisor reconnects with
        backoff (:mod:`gateway.supervisor`), at once after a renewal."""
        await supervise("remote", self._session, self._restarts)

    async def _session(self) -> None:
        try:
            async with self._connect() as link:
                await link.subscribe(cmd_filter(self.hub_id))
                self._backoff.reset()
                self.subscribed.set()
                async with self._sessions_changed:
                    self.sessions += 1
                    self._sessions_changed.notify_all()
                async for message in link.messages():
                    result = await self.handle(message.payload)
                    self.results.append(result)
                    await link.publish(result_topic(self.hub_id), result.to_json())
                    # PUBACK the command only now: its result is out (MQTT 5.0 4.3.2).
                    link.ack(message)
                    if self.on_result is not None:
                        self.on_result(result)
                    if self._reconnect:
                        self._reconnect = False
                        raise ReconnectRequested
        finally:
            self.subscribed.clear()
