"""The region's reference receiver: verify signed batches and write FHIR R4 Observations.

Subscribes with an MQTT 5 shared subscription (``$share/{group}/narhub/v1/+/up/+``, MQTT 5.0
section 4.8.2) so that N receivers split the load. Each batch is verified (COSE_Sign1 against
the hub's key) and its readings turned into FHIR Observations; the state (:mod:`region.state`)
de-duplicates it by (hub, boot id, sequence) and writes the Observations not written before.

Observations are de-duplicated on their deterministic id (what a FHIR server's conditional
create keys on, :func:`protocols.fhir.reading_identifier`): a reading that reaches the region
in two batches (a source that sent it again, a hub that lost power between sending and
deleting) is written once. The batch is acknowledged (PUBACK) only after the state committed
its output and its key: SQLite and an fsynced NDJSON file for one receiver, one PostgreSQL
transaction for several.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from drivers.mqtt import MqttLink
from protocols.errors import DecodeError
from protocols.fhir import dumps_exact, observations
from protocols.uplink import Batch, BatchVerifier, ReplayError, UplinkError
from region.broker_config import RECEIVER_USER
from region.state import BatchKey, ObservationLine, RegionState

logger = logging.getLogger(__name__)

SHARED_GROUP = "narhub-region"
#: Receivers authenticate with a certificate whose CN is this (the broker ACL grants read)
RECEIVER_NAME = RECEIVER_USER
UP_FILTER = "narhub/v1/+/up/+"


@dataclass
class ReceiverStats:
    """What the receiver did."""

    batches: int = 0
    observations: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: Observations already written from another batch (same id), not written again.
    duplicate_observations: int = 0


class Receiver:
    """Verifies, de-duplicates and writes FHIR; one instance per process."""

    def __init__(
        self,
        verifier: BatchVerifier,
        state: RegionState,
        *,
        on_batch: Callable[[Batch, list[str]], None] | None = None,
    ) -> None:
        """``state``: where batch keys and Observations go (:mod:`region.state`: SQLite and
        an NDJSON file for one receiver, PostgreSQL for several)."""
        self._verifier = verifier
        self._state = state
        self._on_batch = on_batch
        self.stats = ReceiverStats()
        #: Set once the subscription is in place (the broker only routes to live subscribers).
        self.subscribed = asyncio.Event()

    def handle(self, topic: str, payload: bytes) -> list[str]:
        """Process one message; returns the NDJSON lines written (empty if dropped)."""
        try:
            batch = self._verifier.verify(payload, replay=self)
        except ReplayError:
            self.stats.duplicates += 1
            return []
        except (UplinkError, DecodeError) as exc:
            self.stats.rejected += 1
            logger.warning("rejected batch on %s: %s", topic, type(exc).__name__)
            return []
        header = batch.header
        expected = f"narhub/v1/{header.hub_id}/up/{header.priority.topic_name}"
        if topic != expected:
            self.stats.rejected += 1
            logger.warning("rejected batch: topic does not match its signed header")
            return []
        key = BatchKey(header.hub_id, header.boot_id, header.seq)
        resources = [
            ObservationLine(str(o["id"]), dumps_exact(o))
            for o in observations(header, batch.readings)
        ]
        lines = self._state.commit_batch(key, resources)
        if lines is None:  # another receiver committed it since the replay check
            self.stats.duplicates += 1
            return []
        self.stats.duplicate_observations += len(resources) - len(lines)
        self.stats.batches += 1
        self.stats.observations += len(lines)
        if self._on_batch is not None:
            self._on_batch(batch, lines)
        return lines

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether the batch (hub, boot id, seq) was already written (the replay check)."""
        return self._state.seen(hub_id, boot_id, seq)

    async def run(self, connect: Callable[[], AbstractAsyncContextManager[MqttLink]]) -> None:
        """Subscribe and process messages until cancelled or the connection drops."""
        async with connect() as link:
            await link.subscribe(f"$share/{SHARED_GROUP}/{UP_FILTER}")
            self.subscribed.set()
            logger.info("subscribed to $share/%s/%s", SHARED_GROUP, UP_FILTER)
            async for message in link.messages():
                self.handle(message.topic, message.payload)
                # PUBACK only now: the Observations and the batch key are committed, so a
                # receiver that dies before this gets the batch again (and de-duplicates it).
                link.ack(message)

    def close(self) -> None:
        """Close the state."""
        self._state.close()
