"""The hub's uplink: signed batches from the outbox to the region broker, alerts first.

Topic per batch: ``narhub/v1/{hub_id}/up/{priority}`` (QoS 1). A batch leaves the outbox only
when the PUBACK reason code is below 0x80 (MQTT 5.0 section 3.4.2.1); a refused batch is kept
with its reason. Connection failures back off with full jitter.

In flight: up to ``max_inflight`` batches are published before their PUBACKs return (MQTT 5.0
section 4.9 flow control; the broker's Receive Maximum bounds it too), in order, so the broker
sees alerts first, then clinical, then the rest. Each batch still leaves the store only on its
own PUBACK. After a long time offline the newest alert is sealed alone and sent first
(docs/protocols/uplink.md, "Drain order").

Status: ``narhub/v1/{hub_id}/status`` (retained, QoS 1) on every connect, on change at most
every ``status_min_interval_s`` and at least every ``status_interval_s``; the last will
(retained) says offline (docs/protocols/uplink.md, "Status topic").

Batching (docs/pipeline.md): the outbox knows when the earliest waiting reading must leave
(alerts at once, clinical spot readings within 10 s, continuous, environmental and telemetry
within 5 minutes, from ``[batching]``). At that deadline the uplink seals *everything* waiting
(a batch that must leave anyway carries the rest for free), then publishes pending batches
alerts first. While disconnected nothing is sealed: readings wait in the outbox, where the
quota can evict the least important ones reading by reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from common.backoff import Backoff
from drivers._aio import reraise_if_cancelling
from drivers.mqtt import REASON_FAILURE_THRESHOLD, MqttError, MqttLink
from gateway.outbox import AsyncOutbox, PendingBatch
from gateway.supervisor import Component, RestartPolicy, RestartRequested, supervise
from protocols.uplink import FORMAT_VERSION, BatchSigner

logger = logging.getLogger(__name__)


#: MQTT 5.0 reason code 0x10: accepted, but no subscription matched.
NO_MATCHING_SUBSCRIBERS = 0x10


#: Version of the status document (docs/protocols/uplink.md, "Status topic").
STATUS_VERSION = 1
#: Batches published and not yet acknowledged, at most (``[uplink] max_inflight``).
DEFAULT_MAX_INFLIGHT = 8
#: Status: published at least this often while connected, and on change at most this often.
DEFAULT_STATUS_INTERVAL_S = 60.0
DEFAULT_STATUS_MIN_INTERVAL_S = 5.0
#: On shutdown, the offline status is given this long to be acknowledged.
OFFLINE_STATUS_TIMEOUT_S = 1.0
#: Keys of the status document that change on every build (not a change of state).
_VOLATILE_STATUS_KEYS = frozenset({"at_ms", "status_seq"})

#: What the hub adds to its status: one entry per configured device (see :func:`status_document`).
DevicesSource = Callable[[], list[dict[str, Any]]]
#: The region's topic tree; another recipient's is ``narhub/v1/r/{name}`` (docs/consent.md).
TOPIC_ROOT = "narhub/v1"


def up_topic(hub_id: str, batch: PendingBatch, root: str = TOPIC_ROOT) -> str:
    """Where a batch of this priority goes."""
    return f"{root}/{hub_id}/up/{batch.priority.topic_name}"


def status_topic(hub_id: str, root: str = TOPIC_ROOT) -> str:
    """The hub's retained status topic."""
    return f"{root}/{hub_id}/status"


def narhub_version() -> str:
    """The installed narhub version (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return metadata.version("narhub")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def versions() -> dict[str, Any]:
    """Software and format versions, as the status document carries them."""
    return {"narhub": narhub_version(), "format": FORMAT_VERSION, "status": STATUS_VERSION}


def offline_status(hub_id: str) -> bytes:
    """The last will: the retained status the broker publishes when the hub vanishes."""
    document = {"v": STATUS_VERSION, "hub": hub_id, "state": "offline", "versions": versions()}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def status_document(
    hub_id: str,
    *,
    state: str,
    at_ms: int,
    status_seq: int,
    uplink: dict[str, int],
    counts: dict[str, int],
    depth: dict[str, int],
    oldest_unsent_ms: int | None,
    devices: list[dict[str, Any]],
    last_command: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document (docs/protocols/uplink.md, "Status topic"): no personal data, no
    values, no device addresses; devices are named by their configuration slot and kind."""
    oldest_age_s = None if oldest_unsent_ms is None else max(0, (at_ms - oldest_unsent_ms) // 1000)
    return {
        "v": STATUS_VERSION,
        "hub": hub_id,
        "state": state,
        "at_ms": at_ms,
        "status_seq": status_seq,
        "versions": versions(),
        "uplink": uplink,
        # The outcome of the newest region command (docs/remote-management.md); null if none.
        "last_command": last_command,
        "queue": {
            "readings": depth,
            "unbatched_readings": counts.get("unbatched_readings", 0),
            "pending_batches": counts.get("pending_batches", 0),
            "rejected_batches": counts.get("rejected_batches", 0),
            "oldest_unsent_ms": oldest_unsent_ms,
            "oldest_unsent_age_s": oldest_age_s,
            "used_bytes": counts.get("used_bytes", 0),
            "quota_bytes": counts.get("quota_bytes", 0),
        },
        "evictions": {
            "readings_total": counts.get("evicted_readings_total", 0),
            "tombstones_pending": counts.get("tombstones_pending", 0),
        },
        "devices": devices,
    }


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait for them (their outcome is read by the caller)."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def _fingerprint(document: dict[str, Any]) -> str:
    """The document without what changes on every build (the age of the oldest reading is
    derived from ``oldest_unsent_ms``, so only a change of that counts)."""
    stable = {k: v for k, v in document.items() if k not in _VOLATILE_STATUS_KEYS}
    queue = dict(stable.get("queue", {}))
    queue.pop("oldest_unsent_age_s", None)
    stable["queue"] = queue
    return json.dumps(stable, sort_keys=True, default=str)


@dataclass
class UplinkStats:
    """Counters for status and the demo."""

    published: int = 0
    rejected: int = 0
    no_subscribers: int = 0
    connects: int = 0
    last_reason_codes: list[int] = field(default_factory=list)


class Uplink(Component):
    """Seals readings into batches and forwards them: ``async with uplink`` runs it as the
    task ``uplink`` of its own TaskGroup (:meth:`run` is that task: it reconnects by itself)."""

    def __init__(
        self,
        hub_id: str,
        outbox: AsyncOutbox,
        signer: BatchSigner,
        connect: Callable[[], AbstractAsyncContextManager[MqttLink]],
        *,
        batch_window_s: float | None = None,
        backoff: Backoff | None = None,
        on_published: Callable[[PendingBatch, int], None] | None = None,
        keep_without_subscribers: bool = True,
        no_subscriber_retry_s: float = 10.0,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        puback_timeout_s: float = 30.0,
        status_interval_s: float | None = None,
        status_min_interval_s: float = DEFAULT_STATUS_MIN_INTERVAL_S,
        devices: DevicesSource | None = None,
        last_command: Callable[[], dict[str, Any] | None] | None = None,
        topic_root: str = TOPIC_ROOT,
        recipient: str | None = None,
    ) -> None:
        """``keep_without_subscribers``: a PUBACK with 0x10 "No matching subscribers" (MQTT 5.0
        3.4.2.1) means the broker accepted the batch but nobody will read it (no receiver
        session exists); the batch stays in the outbox and is sent again later.

        ``max_inflight``: batches published and awaiting their PUBACK at once (at least 1).
        ``status_interval_s``: publish the retained status on connect, on change (at most
        every ``status_min_interval_s``) and at least this often; None: no status (tests of
        the batch path). ``devices``: the status of each configured device, by slot.
        ``topic_root``: the recipient's topic tree (docs/consent.md; ``narhub/v1`` for the
        region). ``recipient``: whose batches this uplink seals and sends (default: the
        outbox's home recipient); one uplink per recipient, each its own connection, so one
        recipient's broker being down holds no other up (docs/pipeline.md, "Recipients")."""
        if max_inflight < 1:
            raise ValueError(f"uplink max_inflight must be at least 1, got {max_inflight}")
        self.hub_id = hub_id
        self.recipient = recipient
        self._topic_root = topic_root
        self._outbox = outbox
        self._signer = signer
        self._connect = connect
        #: Deprecated and unused (``[batching]`` sets the deadlines); kept for callers.
        self._window_s = batch_window_s
        self._backoff = backoff or Backoff()
        self._on_published = on_published
        self.stats = UplinkStats()
        self.idle = asyncio.Event()
        self._keep_without_subscribers = keep_without_subscribers
        self._no_subscriber_retry_s = no_subscriber_retry_s
        self.max_inflight = max_inflight
        self._puback_timeout_s = puback_timeout_s
        self._status_interval_s = status_interval_s
        self._status_min_interval_s = status_min_interval_s
        self._devices = devices
        self._last_command = last_command
        self._status_wake = asyncio.Event()
        self._status_seq = 0
        #: The newest alert sealed alone in this drain: published before anything else.
        self._newest_alert_id: int | None = None
        #: True while a broker connection is up (read by ``narhub status``'s recorder).
        self.connected = False
        #: The last status published (for ``narhub status`` and tests).
        self.last_status: dict[str, Any] | None = None
        #: Set after each status publish (tests clear it and wait).
        self.status_published = asyncio.Event()
        #: Set by :meth:`switch_signer`: the session reconnects with the new credentials.
        self._renewed = asyncio.Event()
        self._restarts = RestartPolicy.reconnecting(MqttError, self._backoff)

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        await self._open_tasks(stack)
        self._start("uplink", self.run())

    def switch_signer(self, signer: BatchSigner) -> None:
        """Seal with ``signer`` from now on and reconnect, so the connection uses the renewed
        certificate too (the TLS files are read at each connect; gateway/remote/renewal.py).
        Batches in flight stay in the outbox and are sent again over the new connection."""
        self._signer = signer
        self._renewed.set()

    def status_changed(self) -> None:
        """Something the status reports changed (readings stored, a device seen): publish
        a new status soon (rate bounded by ``status_min_interval_s``)."""
        self._status_wake.set()

    async def run(self) -> None:
        """Connect, drain, wait for more, until cancelled; the supervisor reconnects with
        backoff after a connection error (:mod:`gateway.supervisor`)."""
        await supervise("uplink", self._session, self._restarts)

    async def _session(self) -> None:
        """One broker connection, until it fails (or new credentials ask for another)."""
        self._renewed.clear()  # this connection reads the TLS files as they are now
        try:
            async with self._connect() as link:
                self.stats.connects += 1
                self._backoff.reset()
                logger.info("uplink%s connected", self._label())
                self.connected = True
                try:
                    await self._connected(link)
                finally:
                    self.connected = False
        except MqttError:
            # Not sealing while down: a withdrawal still removes its queue now.
            await self._outbox.apply_consent(self.hub_id, self.recipient)
            raise

    def _label(self) -> str:
        return "" if self.recipient is None else f" to {self.recipient}"

    async def _connected(self, link: MqttLink) -> None:
        with_status = self._status_interval_s is not None
        try:
            if with_status:
                # The status first: a subscriber sees "online" before the drain starts.
                await self._publish_status(link)
            await self._until_one_fails(link, with_status=with_status)
        except (asyncio.CancelledError, RestartRequested):
            if with_status:
                # A clean DISCONNECT does not fire the last will: say offline ourselves.
                await self._say_offline(link)
            raise

    async def _until_one_fails(self, link: MqttLink, *, with_status: bool) -> None:
        """Run the session's tasks until one of them fails; raise its error."""
        # Not a TaskGroup: on Python 3.11 a child failing while the group's __aexit__ waits
        # leaves the parent task's cancel count raised (fixed in 3.12), and the supervisor's
        # reraise_if_cancelling() would end the uplink instead of reconnecting.
        tasks = [asyncio.create_task(self._forward(link), name="uplink-forward")]
        if with_status:
            tasks.append(asyncio.create_task(self._status_loop(link), name="uplink-status"))
            # Idle links die too: notice it now, reconnect, and say online again.
            tasks.append(asyncio.create_task(link.wait_closed(), name="uplink-watch"))
        tasks.append(asyncio.create_task(self._until_renewed(), name="uplink-renewal"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            await _cancel_all(tasks)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _until_renewed(self) -> None:
        await self._renewed.wait()
        raise RestartRequested("new credentials")

    async def _say_offline(self, link: MqttLink) -> None:
        """Publish the retained offline status on shutdown, bounded by one second."""
        try:
            await asyncio.wait_for(
                link.publish(
                    status_topic(self.hub_id, self._topic_root),
                    offline_status(self.hub_id),
                    retain=True,
                ),
                OFFLINE_STATUS_TIMEOUT_S,
            )
        except (MqttError, TimeoutError) as exc:
            logger.info("offline status not published (%s); the last will says it", exc)

    async def status(self, state: str = "online") -> dict[str, Any]:
        """The status document as it would be published now."""
        counts, depth, oldest_ms = await self._outbox.status_counts()
        self._status_seq += 1
        return status_document(
            self.hub_id,
            state=state,
            at_ms=time.time_ns() // 1_000_000,
            status_seq=self._status_seq,
            uplink={
                "connects": self.stats.connects,
                "published_batches": self.stats.published,
                "rejected_batches": self.stats.rejected,
                "no_subscribers": self.stats.no_subscribers,
                "max_inflight": self.max_inflight,
            },
            counts=counts,
            depth=depth,
            oldest_unsent_ms=oldest_ms,
            devices=[] if self._devices is None else self._devices(),
            last_command=None if self._last_command is None else self._last_command(),
        )

    async def _publish_status(self, link: MqttLink) -> str:
        document = await self.status()
        payload = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        reason = await link.publish(
            status_topic(self.hub_id, self._topic_root), payload, retain=True
        )
        if reason >= REASON_FAILURE_THRESHOLD:
            logger.warning("broker refused the status (reason 0x%02X)", reason)
        self.last_status = document
        self.status_published.set()
        return _fingerprint(document)

    async def _status_loop(self, link: MqttLink) -> None:
        """Publish on change (at most every ``status_min_interval_s``) and periodically."""
        assert self._status_interval_s is not None
        loop = asyncio.get_running_loop()
        last = _fingerprint(self.last_status or {})
        published_at = loop.time()
        while True:
            # Rate bound: at most one status per min interval, however often things change.
            await asyncio.sleep(self._status_min_interval_s)
            remaining = published_at + self._status_interval_s - loop.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._status_wake.wait(), remaining)
                reraise_if_cancelling()
            self._status_wake.clear()
            periodic = loop.time() >= published_at + self._status_interval_s
            document = await self.status()
            if periodic or _fingerprint(document) != last:
                last = await self._publish_status(link)
                published_at = loop.time()

    async def _forward(self, link: MqttLink) -> None:
        while True:
            reraise_if_cancelling()
            # Clear before looking: a commit that lands while we seal sets it again, so the
            # wait below cannot miss it.
            changed = self._outbox.changed_for(self.recipient)
            changed.clear()
            # A consent changed since the last look: batches already sealed for this
            # recipient are checked against it before anything is published.
            await self._outbox.apply_consent(self.hub_id, self.recipient)
            due_in_s = self._outbox.due_in_s(self.recipient)
            if due_in_s is not None and due_in_s <= 0:
                await self._seal_all()
                due_in_s = self._outbox.due_in_s(self.recipient)
            pending = await self._outbox.pending(self.recipient)
            if not pending:
                if due_in_s is None:
                    self.idle.set()
                # Woken by a commit (maybe an alert) or by the next deadline.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), due_in_s)
                reraise_if_cancelling()  # Python 3.11 wait_for can swallow a racing cancel
                self.idle.clear()
                continue
            if not await self._send(link, self._drain_order(pending)):
                logger.warning(
                    "no receiver is subscribed at the region; batches kept, retry in %.0fs",
                    self._no_subscriber_retry_s,
                )
                await asyncio.sleep(self._no_subscriber_retry_s)

    def _drain_order(self, pending: list[PendingBatch]) -> list[PendingBatch]:
        """The store's order (alerts, clinical, environmental, telemetry; oldest first within
        one), with the newest alert sealed alone in this drain moved to the front."""
        newest = self._newest_alert_id
        if newest is None:
            return pending
        first = [b for b in pending if b.batch_id == newest]
        if not first:
            self._newest_alert_id = None  # acknowledged (or rejected) already
            return pending
        return first + [b for b in pending if b.batch_id != newest]

    async def _send(self, link: MqttLink, batches: list[PendingBatch]) -> bool:
        """Publish with up to ``max_inflight`` awaiting their PUBACK; settle each in order.

        Returns False when the broker said nobody subscribes (0x10) and the uplink keeps
        such batches: nothing further is published until the retry. Publishes are started in
        order, so the broker receives (and forwards) them in order (MQTT 5.0 section 4.6).
        """
        in_flight: deque[tuple[PendingBatch, asyncio.Task[int]]] = deque()
        subscribers = True
        try:
            for batch in batches:
                while len(in_flight) >= self.max_inflight:
                    subscribers &= await self._settle(*in_flight.popleft())
                if not subscribers:
                    break
                # Tasks start in creation order: the PUBLISH packets leave in this order.
                task = asyncio.ensure_future(
                    link.publish(up_topic(self.hub_id, batch, self._topic_root), batch.message)
                )
                in_flight.append((batch, task))
            while in_flight:
                subscribers &= await self._settle(*in_flight.popleft())
        finally:
            # Failed or cancelled: what is still in flight stays in the store, sent again.
            tasks = [task for _batch, task in in_flight]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        return subscribers

    async def _settle(self, batch: PendingBatch, task: asyncio.Task[int]) -> bool:
        """Wait for one batch's PUBACK and act on its reason code (False: 0x10 and kept)."""
        try:
            async with asyncio.timeout(self._puback_timeout_s):
                reason = await asyncio.shield(task)
        except TimeoutError:
            reraise_if_cancelling()
            raise MqttError(f"no PUBACK for batch seq={batch.seq} in time") from None
        self.stats.last_reason_codes = [*self.stats.last_reason_codes[-9:], reason]
        if self._on_published is not None:
            self._on_published(batch, reason)
        if reason == NO_MATCHING_SUBSCRIBERS and self._keep_without_subscribers:
            self.stats.no_subscribers += 1
            return False
        if reason < REASON_FAILURE_THRESHOLD:
            await self._outbox.acknowledge(batch.batch_id)
            self.stats.published += 1
        else:
            await self._outbox.reject(batch.batch_id, reason)
            self.stats.rejected += 1
            logger.error(
                "broker refused batch seq=%d (reason 0x%02X); kept in the outbox",
                batch.seq,
                reason,
            )
        if batch.batch_id == self._newest_alert_id:
            self._newest_alert_id = None
        self._status_wake.set()
        return True

    async def _seal_all(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        outbox, recipient = self._outbox, self.recipient
        newest = await outbox.seal(
            self._signer, now_ms=now_ms, newest_alert_alone=True, recipient=recipient
        )
        if newest is not None:
            self._newest_alert_id = newest.batch_id
        while await outbox.seal(self._signer, now_ms=now_ms, recipient=recipient):
            pass
