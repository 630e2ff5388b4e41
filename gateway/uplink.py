"""The hub's uplink: signed batches from the outbox to the region broker, alerts first.

Topic per batch: ``narhub/v1/{hub_id}/up/{priority}`` (QoS 1). A batch leaves the outbox only
when the PUBACK reason code is below 0x80 (MQTT 5.0 section 3.4.2.1); a refused batch is kept
with its reason. Connection failures back off with full jitter.

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
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from drivers._aio import reraise_if_cancelling
from drivers.mqtt import REASON_FAILURE_THRESHOLD, MqttError, MqttLink
from gateway.backoff import Backoff
from gateway.store import AsyncOutbox, PendingBatch
from protocols.uplink import BatchSigner

logger = logging.getLogger(__name__)


#: MQTT 5.0 reason code 0x10: accepted, but no subscription matched.
NO_MATCHING_SUBSCRIBERS = 0x10


def up_topic(hub_id: str, batch: PendingBatch) -> str:
    """Where a batch of this priority goes."""
    return f"narhub/v1/{hub_id}/up/{batch.priority.topic_name}"


@dataclass
class UplinkStats:
    """Counters for status and the demo."""

    published: int = 0
    rejected: int = 0
    no_subscribers: int = 0
    connects: int = 0
    last_reason_codes: list[int] = field(default_factory=list)


class Uplink:
    """Seals readings into batches and forwards them until cancelled."""

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
    ) -> None:
        """``keep_without_subscribers``: a PUBACK with 0x10 "No matching subscribers" (MQTT 5.0
        3.4.2.1) means the broker accepted the batch but nobody will read it (no receiver
        session exists); the batch stays in the outbox and is sent again later."""
        self.hub_id = hub_id
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

    async def run(self) -> None:
        """Connect, drain, wait for more; reconnect with backoff on connection errors."""
        while True:
            reraise_if_cancelling()
            try:
                async with self._connect() as link:
                    self.stats.connects += 1
                    self._backoff.reset()
                    logger.info("uplink connected")
                    await self._forward(link)
            except MqttError as exc:
                delay = self._backoff.next_delay_s()
                logger.warning("uplink: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _forward(self, link: MqttLink) -> None:
        while True:
            reraise_if_cancelling()
            # Clear before looking: a commit that lands while we seal sets it again, so the
            # wait below cannot miss it.
            self._outbox.changed.clear()
            due_in_s = self._outbox.due_in_s()
            if due_in_s is not None and due_in_s <= 0:
                await self._seal_all()
                due_in_s = self._outbox.due_in_s()
            pending = await self._outbox.pending()
            if not pending:
                if due_in_s is None:
                    self.idle.set()
                # Woken by a commit (maybe an alert) or by the next deadline.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox.changed.wait(), due_in_s)
                self.idle.clear()
                continue
            for batch in pending:
                reason = await link.publish(up_topic(self.hub_id, batch), batch.message)
                self.stats.last_reason_codes = [*self.stats.last_reason_codes[-9:], reason]
                if self._on_published is not None:
                    self._on_published(batch, reason)
                if reason == NO_MATCHING_SUBSCRIBERS and self._keep_without_subscribers:
                    self.stats.no_subscribers += 1
                    logger.warning(
                        "no receiver is subscribed at the region; batches kept, retry in %.0fs",
                        self._no_subscriber_retry_s,
                    )
                    await asyncio.sleep(self._no_subscriber_retry_s)
                    break
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

    async def _seal_all(self) -> None:
        while await self._outbox.seal(self._signer, now_ms=time.time_ns() // 1_000_000):
            pass
