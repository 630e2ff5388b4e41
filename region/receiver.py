"""The region's reference receiver: verify signed batches, file them to patients, write FHIR.

Subscribes with an MQTT 5 shared subscription (``$share/{group}/narhub/v1/+/up/+``, MQTT 5.0
section 4.8.2) so that N receivers split the load. Each batch is verified (COSE_Sign1 against
the hub's key), de-duplicated by (hub, boot id, sequence) in SQLite, filed to the patients its
hub is lent to (:mod:`region.filing`: readings no enrolment covers are held, and released
when one does), and written as NDJSON FHIR resources (FHIR bulk-data style: the Devices and
coincident time stamps the Observations reference, each written once, then the
Observations), fsynced before the batch is marked seen.

Resources are de-duplicated too, on their deterministic id (what a FHIR server's
conditional create keys on, :mod:`protocols.fhir.identity`): a reading that reaches the region
in two batches (a source that sent it again, a hub that lost power between sending and
deleting) is written once; a Device is written again only when its description changed. The
ids written are recorded with the batch key in one transaction after the fsync; at start,
lines written after the last recorded offset (a receiver killed between the fsync and that
transaction) are read back and recorded, and a torn last line is cut off (it was never
acknowledged: the batch comes again).
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
from typing import Any

from drivers.mqtt import MqttLink
from protocols.errors import DecodeError
from protocols.fhir import dumps_exact
from protocols.fhir.devices import description_digest
from protocols.uplink import Batch, BatchVerifier, ReplayError, UplinkError
from region.broker_config import RECEIVER_USER
from region.device_registry import DeviceRegistry, SqliteDeviceRegistry
from region.enrolment_sqlite import SqliteEnrolmentStore
from region.enrolment_store import EnrolmentStore
from region.fhir_post import QUEUE_SCHEMA
from region.filing import Filer, Filing

logger = logging.getLogger(__name__)

SHARED_GROUP = "narhub-region"
#: Receivers authenticate with a certificate whose CN is this (the broker ACL grants read)
RECEIVER_NAME = RECEIVER_USER
UP_FILTER = "narhub/v1/+/up/+"
_ID_QUERY_CHUNK = 500
#: How often held readings are checked against enrolments made since (seconds).
RELEASE_INTERVAL_S = 5.0


def resource_key(resource: dict[str, Any]) -> str:
    """What the output's de-duplication records for a resource: an Observation's id, a
    Device's id with the digest of its description (a changed Device is written again)."""
    if resource.get("resourceType") == "Device":
        return f"Device/{resource['id']}#{description_digest(resource)}"
    return str(resource["id"])


@dataclass
class ReceiverStats:
    """What the receiver did."""

    batches: int = 0
    observations: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: Observations already written from another batch (same id), not written again.
    duplicate_observations: int = 0
    #: Readings no enrolment covered, held (:mod:`region.filing`).
    held: int = 0
    #: Held readings filed once an enrolment covered them.
    released: int = 0


class Receiver:
    """Verifies, de-duplicates, files and writes FHIR; one instance per process."""

    def __init__(
        self,
        verifier: BatchVerifier,
        state_db: Path,
        output: Path,
        *,
        on_batch: Callable[[Batch, list[str]], None] | None = None,
        on_ingested: Callable[[Filing], object] | None = None,
        fhir_queue: bool = False,
        enrolments: EnrolmentStore | None = None,
        devices: DeviceRegistry | None = None,
        release_interval_s: float = RELEASE_INTERVAL_S,
    ) -> None:
        """``fhir_queue``: also queue each batch's new Observations (with the Devices and
        time stamps they reference) for a FHIR server, in the transaction that marks the
        batch seen (:mod:`region.fhir_post`). ``enrolments`` and ``devices``: the region's
        shared state (default: SQLite in ``state_db``, where `narhub region enrol` writes).
        ``on_ingested``: told every filing once its output is written (a batch's, and held
        readings released), with what was filed to whom and when (the findings' hook,
        :mod:`region.findings`)."""
        self._verifier = verifier
        self._filer = Filer(
            enrolments if enrolments is not None else SqliteEnrolmentStore(state_db),
            devices if devices is not None else SqliteDeviceRegistry(state_db),
        )
        self._release_interval_s = release_interval_s
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
        self._on_ingested = on_ingested
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
        filing = self._filer.file_batch(batch)
        self.stats.held += filing.held
        lines = self._write(filing, key)
        self.stats.batches += 1
        if self._on_ingested is not None:
            self._on_ingested(filing)
        if self._on_batch is not None:
            self._on_batch(batch, lines)
        return lines

    def _write(self, filing: Filing, key: tuple[str, str, int] | None) -> list[str]:
        """Append the filing's resources not written before, fsync, then record them (and
        the batch ``key`` as seen) in one transaction; returns the lines written."""
        resources = filing.resources.all()
        keys = [resource_key(r) for r in resources]
        known = self._known_ids(keys)
        fresh = [(k, r) for k, r in zip(keys, resources, strict=True) if k not in known]
        observations = filing.resources.observations
        measured = {id(r) for r in observations}
        fresh_observations = [r for _, r in fresh if id(r) in measured]
        self.stats.duplicate_observations += len(observations) - len(fresh_observations)
        text = {id(r): dumps_exact(r) for _, r in fresh}
        lines = list(text.values())
        with self._output.open("ab") as out:
            out.writelines((line + "\n").encode() for line in lines)
            out.flush()
            os.fsync(out.fileno())
            end = out.tell()
        # A FHIR server gets the new Observations with everything they reference (a
        # transaction Bundle that stands alone).
        queued = []
        if fresh_observations and self._fhir_queue:
            referenced = [*filing.resources.devices, *filing.resources.time_stamps]
            queued = [text.get(id(r)) or dumps_exact(r) for r in [*referenced, *fresh_observations]]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if key is not None:
                self._db.execute("INSERT INTO seen(hub, boot, seq) VALUES (?, ?, ?)", key)
            self._record([k for k, _ in fresh], end, queued)
        self.stats.observations += len(fresh_observations)
        return lines

    def release_held(self) -> int:
        """File held readings that enrolments now cover; returns how many were released."""
        released = 0
        for filing in self._filer.releasable():
            self._write(filing, None)
            self._filer.released(filing)
            if self._on_ingested is not None:
                self._on_ingested(filing)
            released += len(filing.released)
        self.stats.released += released
        if released:
            logger.info("released %d held readings to their enrolments", released)
        return released

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
                    ids.append(resource_key(resource))
                    recovered.append(line.decode())
                except (ValueError, KeyError, TypeError):
                    logger.warning(
                        "output line %d after the last record is not a FHIR resource", number
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
                logger.info("recorded %d resources written before the last stop", len(ids))

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether the batch (hub, boot id, seq) was already written (the replay check)."""
        key = (hub_id, boot_id, seq)
        row = self._db.execute("SELECT 1 FROM seen WHERE hub=? AND boot=? AND seq=?", key)
        return row.fetchone() is not None

    async def run(self, connect: Callable[[], AbstractAsyncContextManager[MqttLink]]) -> None:
        """Subscribe and process messages until cancelled or the connection drops (its
        :class:`~drivers.mqtt.MqttError` propagates as it is); held readings are checked
        against new enrolments every ``release_interval_s`` meanwhile."""
        async with connect() as link:
            releaser = asyncio.create_task(self._release_loop(), name="receiver-release")
            try:
                await link.subscribe(f"$share/{SHARED_GROUP}/{UP_FILTER}")
                self.subscribed.set()
                async for message in link.messages():
                    self.handle(message.topic, message.payload)
                    # PUBACK only now: the Observations are fsynced and the batch marked seen,
                    # so a receiver that dies before this gets the batch again (and
                    # de-duplicates it).
                    link.ack(message)
            finally:
                releaser.cancel()
                await asyncio.wait([releaser])  # never raises: its outcome is read below
            if not releaser.cancelled() and (error := releaser.exception()) is not None:
                raise error

    async def _release_loop(self) -> None:
        while True:
            self.release_held()
            await asyncio.sleep(self._release_interval_s)

    def close(self) -> None:
        """Close the de-duplication database and the shared state."""
        self._db.close()
        self._filer.enrolments.close()
        self._filer.devices.close()
