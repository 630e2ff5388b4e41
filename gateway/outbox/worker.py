"""The outbox behind one worker thread, with group commit and backpressure (the async hub's
side of :class:`gateway.outbox.store.Outbox`; docs/pipeline.md, "The store").

Every call to the store runs on one thread (``narhub-store``): SQLite's connection is used
from one thread at a time and commits are serialised. Only the ES256 signature of a batch runs
elsewhere (:meth:`AsyncOutbox.seal`), so that commits of readings go on while it is computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gateway.outbox.acks import PendingBatch
from gateway.outbox.store import Outbox
from gateway.reading import Reading
from protocols.uplink import BatchSigner, Priority

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_WINDOW_S = 1.0
DEFAULT_MAX_PENDING_READINGS = 100_000


@dataclass
class _Waiter:
    readings: Sequence[Reading]
    future: asyncio.Future[int]


@dataclass
class _Group:
    waiters: list[_Waiter] = field(default_factory=list)
    readings: int = 0
    #: Loop time by which this group must be committed (the earliest waiter's window).
    commit_by: float = float("inf")
    #: Loop time the first waiter arrived (its batching deadline counts from then).
    opened: float = float("inf")


def _commit_at_once(r: Reading) -> bool:
    """Alerts, and clinical spot readings: a BLE host stack confirms an indication (ATT
    Handle Value Confirmation, Core 5.3 Vol 3 Part F 3.4.7.3) as it arrives, before the hub can
    commit, and the device then forgets it; the shorter the wait for the commit, the smaller
    the window a power cut could take it in. Continuous and environmental streams wait for the
    group commit window (their sources resend, or a lost second matters little)."""
    return r.priority is Priority.ALERT or (r.priority is Priority.CLINICAL and not r.continuous)


def waits_long(r: Reading) -> bool:
    """May this reading wait ``continuous_commit_window_s`` for its commit? Yes when no source
    waits for the commit and none could resend the reading: continuous notification streams
    (oximetry, heart rate) and the hub's own telemetry. A power cut takes at most that window
    of them (docs/pipeline.md, "Bytes on the SD card")."""
    return r.source_key is None and (r.continuous or r.priority is Priority.TELEMETRY)


class AsyncOutbox:
    """The :class:`Outbox` behind one worker thread, with group commit and backpressure.

    Concurrent :meth:`add` calls within ``commit_window_s`` of the first share one
    transaction (one sync); each returns only after that commit. Readings that no source
    waits for and none can resend (continuous notifications: no source key) may wait
    ``continuous_commit_window_s`` instead (default: the same); a power cut loses at most
    that much of such a stream (docs/pipeline.md, SD-card wear). An alert, or
    ``max_pending_readings`` waiting, commits at once. Backpressure: while that many readings
    wait for a commit, a further :meth:`add` waits (bounded memory; the sources hold their
    data: boards keep unacknowledged readings, the BLE queue fills and the central
    disconnects devices, which keep their records).
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        commit_window_s: float = DEFAULT_COMMIT_WINDOW_S,
        continuous_commit_window_s: float | None = None,
        max_pending_readings: int = DEFAULT_MAX_PENDING_READINGS,
    ) -> None:
        self.outbox = outbox
        self.commit_window_s = commit_window_s
        self.continuous_commit_window_s = (
            commit_window_s if continuous_commit_window_s is None else continuous_commit_window_s
        )
        self.max_pending_readings = max_pending_readings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="narhub-store")
        #: Per recipient, set after every commit of readings: each recipient's uplink clears
        #: and waits on its own (one shared event would let one uplink clear another's wake).
        self._changed = {name: asyncio.Event() for name in outbox.recipients}
        self._group = _Group()
        self._in_flight = 0
        self._urgent = asyncio.Event()
        #: Set when the open group's commit moved earlier (or became urgent): the committer
        #: may be waiting out a longer window and must look again.
        self._sooner = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._committer: asyncio.Task[None] | None = None
        self._ack_flusher: asyncio.Task[None] | None = None

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every recipient, the home recipient first."""
        return self.outbox.recipients

    @property
    def changed(self) -> asyncio.Event:
        """The home recipient's commit event (:meth:`changed_for`)."""
        return self._changed[self.outbox.home]

    def changed_for(self, recipient: str | None) -> asyncio.Event:
        """Set after every commit of readings (cleared by ``recipient``'s uplink)."""
        return self._changed[self.outbox.home if recipient is None else recipient]

    def _waiting_readings(self) -> int:
        return self._group.readings + self._in_flight

    async def add(self, readings: Sequence[Reading]) -> int:
        """Durably store readings; returns (new count) only after their commit."""
        if not readings:
            return 0
        while self._waiting_readings() and (
            self._waiting_readings() + len(readings) > self.max_pending_readings
        ):
            self._space.clear()
            await self._space.wait()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(readings, loop.create_future())
        group = self._group
        window = self.commit_window_s
        if self.continuous_commit_window_s != window and all(map(waits_long, readings)):
            window = self.continuous_commit_window_s
        now = loop.time()
        if now + window < group.commit_by:
            group.commit_by = now + window
            self._sooner.set()
        group.opened = min(group.opened, now)
        group.waiters.append(waiter)
        group.readings += len(readings)
        if group.readings >= self.max_pending_readings or any(map(_commit_at_once, readings)):
            self._urgent.set()
            self._sooner.set()
        if self._committer is None:
            self._committer = loop.create_task(self._commit_loop(), name="store-group-commit")
        return await waiter.future

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._group.waiters:
                # The group's deadline can move earlier while we wait (a board's reading
                # joins a group a continuous stream opened with its 60 s window): look again.
                while not self._urgent.is_set():
                    remaining = self._group.commit_by - loop.time()
                    if remaining <= 0:
                        break
                    self._sooner.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._sooner.wait(), remaining)
                group, self._group = self._group, _Group()
                self._urgent.clear()
                self._in_flight += group.readings
                done = loop.run_in_executor(
                    self._executor,
                    functools.partial(
                        self.outbox.add_groups,
                        [w.readings for w in group.waiters],
                        waited_s=max(0.0, loop.time() - group.opened),
                    ),
                )
                done.add_done_callback(functools.partial(self._committed, group=group))
                # Shielded: a cancelled caller must not leave others waiting for their commit.
                with contextlib.suppress(Exception):
                    await asyncio.shield(done)
        finally:
            self._committer = None

    def _committed(self, done: asyncio.Future[list[int]], *, group: _Group) -> None:
        self._in_flight -= group.readings
        self._space.set()
        if done.cancelled():
            error: BaseException = asyncio.CancelledError()
        else:
            error_or_none = done.exception()
            if error_or_none is None:
                for waiter, count in zip(group.waiters, done.result(), strict=True):
                    if not waiter.future.done():
                        waiter.future.set_result(count)
                for event in self._changed.values():
                    event.set()
                return
            error = error_or_none
        for waiter in group.waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)

    def due_in_s(self, recipient: str | None = None) -> float | None:
        """See :meth:`Outbox.due_in_s` (an attribute read: safe from the loop)."""
        return self.outbox.due_in_s(recipient)

    async def seal(
        self,
        signer: BatchSigner,
        *,
        now_ms: int,
        newest_alert_alone: bool = False,
        recipient: str | None = None,
    ) -> PendingBatch | None:
        """See :meth:`Outbox.seal`: the batch is prepared and stored on the store's thread and
        signed on another (a secure element may take tens of ms), so that commits of readings
        (an alert's) do not wait for the signature. A plan gone stale meanwhile (the quota
        evicted what it took) is sealed again in one go on the store's thread."""
        plan = await self._run(
            self.outbox.prepare_seal,
            signer.hub_id,
            now_ms=now_ms,
            newest_alert_alone=newest_alert_alone,
            recipient=recipient,
        )
        if plan is None:
            return None
        message = b"" if plan.empty else await asyncio.to_thread(signer.sign, plan.body)
        batch: PendingBatch | None = await self._run(self.outbox.finish_seal, plan, message)
        if batch is None:
            batch = await self._run(
                self.outbox.seal,
                signer,
                now_ms=now_ms,
                newest_alert_alone=newest_alert_alone,
                recipient=recipient,
            )
        return batch

    async def status_counts(self) -> tuple[dict[str, int], dict[str, int], int | None]:
        """:meth:`Outbox.counts`, :meth:`Outbox.depth_by_priority` and
        :meth:`Outbox.oldest_unsent_ms`, read together on the store's thread."""

        def read() -> tuple[dict[str, int], dict[str, int], int | None]:
            store = self.outbox
            return store.counts(), store.depth_by_priority(), store.oldest_unsent_ms()

        result: tuple[dict[str, int], dict[str, int], int | None] = await self._run(read)
        return result

    async def pending(self, recipient: str | None = None) -> list[PendingBatch]:
        """See :meth:`Outbox.pending`."""
        result: list[PendingBatch] = await self._run(self.outbox.pending, recipient=recipient)
        return result

    async def apply_consent(self, hub_id: str, recipient: str | None = None) -> int:
        """See :meth:`Outbox.apply_consent`."""
        result: int = await self._run(self.outbox.apply_consent, hub_id, recipient)
        return result

    async def recipient_backlog(self) -> dict[str, dict[str, Any]]:
        """See :meth:`Outbox.recipient_backlog`."""
        result: dict[str, dict[str, Any]] = await self._run(self.outbox.recipient_backlog)
        return result

    async def acknowledge(self, batch_id: int) -> None:
        """See :meth:`Outbox.acknowledge`: deferred, deleted with the next commit or at the
        latest ``continuous_commit_window_s`` later."""
        await self._run(self.outbox.acknowledge, batch_id, defer=True)
        if self._ack_flusher is None:
            self._ack_flusher = asyncio.get_running_loop().create_task(
                self._flush_acks_later(), name="store-ack-flush"
            )

    async def _flush_acks_later(self) -> None:
        await asyncio.sleep(self.continuous_commit_window_s)  # a timer, not synchronisation
        self._ack_flusher = None
        try:
            await self._run(self.outbox.flush_acks)
        except sqlite3.Error as exc:  # the batches are sent again: the region drops replays
            logger.warning("outbox: acknowledged batches not deleted (%s)", type(exc).__name__)

    async def reject(self, batch_id: int, reason_code: int) -> None:
        """See :meth:`Outbox.reject`."""
        await self._run(self.outbox.reject, batch_id, reason_code)

    async def queue_figures(self) -> dict[str, Any]:
        """See :meth:`Outbox.queue_figures`."""
        result: dict[str, Any] = await self._run(self.outbox.queue_figures)
        return result

    async def counts(self) -> dict[str, int]:
        """See :meth:`Outbox.counts`."""
        result: dict[str, int] = await self._run(self.outbox.counts)
        return result

    def close(self) -> None:
        """Commit what still waits, finish queued work and close the database."""
        flusher, self._ack_flusher = self._ack_flusher, None
        if flusher is not None:  # Outbox.close deletes the acknowledged batches
            with contextlib.suppress(RuntimeError):
                flusher.cancel()
        committer, self._committer = self._committer, None
        if committer is not None:  # it may be waiting out a window: the group is taken here
            with contextlib.suppress(RuntimeError):  # its loop may be closed already
                committer.cancel()
        group, self._group = self._group, _Group()
        if group.waiters:
            future = self._executor.submit(
                self.outbox.add_groups, [w.readings for w in group.waiters]
            )
            try:
                counts = future.result()
            except Exception as exc:  # noqa: BLE001 - handed to each waiting caller
                for waiter in group.waiters:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
            else:
                for waiter, count in zip(group.waiters, counts, strict=True):
                    if not waiter.future.done():
                        waiter.future.set_result(count)
        self._executor.shutdown(wait=True)
        self.outbox.close()
