"""The region's reference receiver: verify signed batches and write FHIR R4 Observations.

Subscribes with an MQTT 5 shared subscription (``$share/{group}/narhub/v1/+/up/+``, MQTT 5.0
section 4.8.2) so that N receivers split the load. Each batch is verified (COSE_Sign1 against
the hub's key), de-duplicated by (hub, boot id, sequence) in SQLite, and its readings written
as NDJSON Observations (FHIR bulk-data style), fsynced before the batch is marked seen.

Observations are de-duplicated too, on their deterministic id (what a FHIR server's
conditional create keys on, :func:`protocols.fhir.reading_identifier`): a reading that
reaches the region in two batches (a source that sent it again, a hub that lost power
between sending and deleting) is written once. The ids written are recorded with the batch
key in one transaction after the fsync; at start, lines written after the last recorded
offset (a receiver killed between the fsync and that transaction) are read back and
recorded, and a torn last line is cut off (it was never acknowledged: the batch comes again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from drivers.mqtt import MqttLink
from protocols.errors import DecodeError
from protocols.fhir import dumps_exact, observations
from protocols.uplink import Batch, BatchVerifier, ReplayError, UplinkError
from region.broker_config import RECEIVER_USER
from region.fhir_post import QUEUE_SCHEMA

logger = logging.getLogger(__name__)

SHARED_GROUP = "narhub-region"
#: Receivers authenticate with a certificate whose CN is this (the broker ACL grants read)
RECEIVER_NAME = RECEIVER_USER
UP_FILTER = "narhub/v1/+/up/+"
_ID_QUERY_CHUNK = 500


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
        state_db: Path,
        output: Path,
        *,
        on_batch: Callable[[Batch, list[str]], None] | None = None,
        fhir_queue: bool = False,
    ) -> None:
        """``fhir_queue``: also queue each batch's new Observations for a FHIR server, in
        the transaction that marks the batch seen (:mod:`region.fhir_post`)."""
        self._verifier = verifier
        self._fhir_queue = fhir_queue
        self._db = sqlite3.connect(state_db, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (hub TEXT, boot TEXT, seq INTEGER, "
            "PRIMARY KEY (hub, boot, seq))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS observations (id TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outputs (path TEXT PRIMARY KEY, recorded INTEGER NOT NULL)"
        )
        if fhir_queue:
            self._db.execute(QUEUE_SCHEMA)
        self._output = output
        self._recover_output()
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
        resources = observations(header, batch.readings)
        known = self._known_ids([str(o["id"]) for o in resources])
        fresh = [o for o in resources if o["id"] not in known]
        self.stats.duplicate_observations += len(resources) - len(fresh)
        lines = [dumps_exact(o) for o in fresh]
        with self._output.open("ab") as out:
            out.writelines((line + "\n").encode() for line in lines)
            out.flush()
            os.fsync(out.fileno())
            end = out.tell()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO seen(hub, boot, seq) VALUES (?, ?, ?)", key)
            self._record([str(o["id"]) for o in fresh], end, lines)
        self.stats.batches += 1
        self.stats.observations += len(lines)
        if self._on_batch is not None:
            self._on_batch(batch, lines)
        return lines

    def _known_ids(self, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for i in range(0, len(ids), _ID_QUERY_CHUNK):
            part = ids[i : i + _ID_QUERY_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT id FROM observations WHERE id IN ({marks})",  # noqa: S608 - marks only
                part,
            )
            known.update(row[0] for row in rows)
        return known

    def _record(self, ids: list[str], end: int, lines: list[str]) -> None:
        if self._fhir_queue and lines:
            self._db.execute("INSERT INTO fhir_queue(lines) VALUES (?)", ("\n".join(lines),))
        self._db.executemany(
            "INSERT OR IGNORE INTO observations(id) VALUES (?)", [(i,) for i in ids]
        )
        self._db.execute(
            "INSERT INTO outputs(path, recorded) VALUES (?, ?) "
            "ON CONFLICT(path) DO UPDATE SET recorded = excluded.recorded",
            (str(self._output.resolve()), end),
        )

    def _recover_output(self) -> None:
        """Record the ids of lines written after the last recorded offset; cut a torn tail."""
        if not self._output.exists():
            return
        row = self._db.execute(
            "SELECT recorded FROM outputs WHERE path = ?", (str(self._output.resolve()),)
        ).fetchone()
        recorded = 0 if row is None else int(row[0])
        if recorded > self._output.stat().st_size:
            recorded = 0  # another file now: record all of it (ids already known are kept)
        with self._output.open("rb+") as out:
            out.seek(recorded)
            tail = out.read()
            complete = tail[: tail.rfind(b"\n") + 1]
            ids: list[str] = []
            recovered: list[str] = []
            for number, line in enumerate(complete.splitlines(), 1):
                try:
                    resource = json.loads(line)
                    ids.append(str(resource["id"]))
                    recovered.append(line.decode())
                except (ValueError, KeyError, TypeError):
                    logger.warning(
                        "output line %d after the last record is not an Observation", number
                    )
            if len(complete) < len(tail):
                out.truncate(recorded + len(complete))
                out.flush()
                os.fsync(out.fileno())
                logger.warning("cut %d bytes of a torn last line", len(tail) - len(complete))
        if tail:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                # Their FHIR POST too (conditional creates: posting twice creates once).
                self._record(ids, recorded + len(complete), recovered)
            if ids:
                logger.info("recorded %d observations written before the last stop", len(ids))

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
