"""The region's reference receiver: verify signed batches and write FHIR R4 Observations.

Subscribes with an MQTT 5 shared subscription (``$share/{group}/narhub/v1/+/up/+``, MQTT 5.0
section 4.8.2) so that N receivers split the load. Each batch is verified (COSE_Sign1 against
the hub's key), de-duplicated by (hub, boot id, sequence) in SQLite, and its readings written
as NDJSON Observations (FHIR bulk-data style), fsynced before the batch is marked seen.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from drivers.mqtt import MqttLink
from gateway.region.broker_config import RECEIVER_USER
from protocols.errors import DecodeError
from protocols.fhir import dumps_exact, observation
from protocols.uplink import Batch, BatchVerifier, ReplayError, UplinkError

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


class Receiver:
    """Verifies, de-duplicates and writes FHIR; one instance per process."""

    def __init__(
        self,
        verifier: BatchVerifier,
        state_db: Path,
        output: Path,
        *,
        on_batch: Callable[[Batch, list[str]], None] | None = None,
    ) -> None:
        self._verifier = verifier
        self._db = sqlite3.connect(state_db, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (hub TEXT, boot TEXT, seq INTEGER, "
            "PRIMARY KEY (hub, boot, seq))"
        )
        self._output = output
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
        key = (header.hub_id, header.boot_id, header.seq)
        lines = [dumps_exact(observation(header, r)) for r in batch.readings]
        with self._output.open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
            out.flush()
            os.fsync(out.fileno())
        self._db.execute("INSERT INTO seen(hub, boot, seq) VALUES (?, ?, ?)", key)
        self.stats.batches += 1
        self.stats.observations += len(lines)
        if self._on_batch is not None:
            self._on_batch(batch, lines)
        return lines

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether the batch (hub, boot id, seq) was already written (the replay check)."""
        key = (hub_id, boot_id, seq)
        row = self._db.execute("SELECT 1 FROM seen WHERE hub=? AND boot=? AND seq=?", key)
        return row.fetchone() is not None

    async def run(self, connect: Callable[[], AbstractAsyncContextManager[MqttLink]]) -> None:
        """Subscribe and process messages until cancelled or the connection drops."""
        async with connect() as link:
            await link.subscribe(f"$share/{SHARED_GROUP}/{UP_FILTER}")
            self.subscribed.set()
            async for message in link.messages():
                self.handle(message.topic, message.payload)
                # PUBACK only now: the Observations are fsynced and the batch marked seen, so
                # a receiver that dies before this gets the batch again (and de-duplicates it).
                link.ack(message)

    def close(self) -> None:
        """Close the de-duplication database."""
        self._db.close()
