"""The region's reference receiver: verify signed batches, file them to patients, write FHIR.

Subscribes with an MQTT 5 shared subscription (``$share/{group}/narhub/v1/+/up/+``, MQTT 5.0
section 4.8.2) so that N receivers split the load. Each batch is verified (COSE_Sign1 against
the hub's key), filed to the patients its hub is lent to (:mod:`region.filing`: readings no
enrolment covers are held, and released when one does), and turned into FHIR resources (the
Devices and coincident time stamps the Observations reference, then the Observations); the
state (:mod:`region.state`) de-duplicates the batch by (hub, boot id, sequence) and writes the
resources not written before.

Resources are de-duplicated on their deterministic id (what a FHIR server's conditional
create keys on, :mod:`protocols.fhir.identity`): a reading that reaches the region in two
batches (a source that sent it again, a hub that lost power between sending and deleting) is
written once; a Device is written again only when its description changed. The batch is
acknowledged (PUBACK) only after the state committed its output and its key: SQLite and an
fsynced NDJSON file for one receiver, one PostgreSQL transaction for several.

Enrolments, the device registry and the raw records live behind :mod:`region.enrolment_store`'s
seam: by default SQLite in the state's own file; with a PostgreSQL state, in the same database
(:func:`region.state_open.postgres_filing`, shared by every receiver; holding, attributing and
releasing readings then commit in the batch's own transaction) or a SQLite file given
separately (``enrolment_db``, docs/region-scale.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from drivers.mqtt import MqttLink
from protocols.errors import DecodeError
from protocols.fhir import dumps_exact
from protocols.uplink import Batch, BatchVerifier, ReplayError, UplinkError
from region.broker_config import RECEIVER_USER
from region.consents import SqliteConsentRegistry
from region.device_registry import DeviceRegistry, SqliteDeviceRegistry
from region.enrolment_sqlite import SqliteEnrolmentStore
from region.enrolment_store import EnrolmentStore
from region.filing import Filer, Filing
from region.raw_records import RawRecords, SqliteRawRecords
from region.state import (
    RELEASE_HUB,
    BatchKey,
    FilingRaceError,
    ObservationLine,
    RegionState,
    resource_key,
)

logger = logging.getLogger(__name__)

SHARED_GROUP = "narhub-region"
#: Receivers authenticate with a certificate whose CN is this (the broker ACL grants read)
RECEIVER_NAME = RECEIVER_USER
UP_FILTER = "narhub/v1/+/up/+"
#: How often held readings are checked against enrolments made since (seconds).
RELEASE_INTERVAL_S = 5.0
#: Times a batch is filed again when an enrolment of its hub changed while it was filed.
FILING_ATTEMPTS = 5


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
    #: Raw records (values the hub could not decode) newly kept (:mod:`region.raw_records`).
    raw_records: int = 0
    #: Batches refused because they carried a category this recipient holds no consent for.
    consent_refused: int = 0


class Receiver:
    """Verifies, de-duplicates, files and writes FHIR; one instance per process."""

    def __init__(
        self,
        verifier: BatchVerifier,
        state: RegionState,
        *,
        on_batch: Callable[[Batch, list[str]], None] | None = None,
        on_ingested: Callable[[Filing], object] | None = None,
        enrolment_db: Path | None = None,
        enrolments: EnrolmentStore | None = None,
        devices: DeviceRegistry | None = None,
        raw_records: RawRecords | None = None,
        release_interval_s: float = RELEASE_INTERVAL_S,
        consents: SqliteConsentRegistry | None = None,
        topic_root: str = "narhub/v1",
    ) -> None:
        """``state``: where batch keys and resources go (:mod:`region.state`: SQLite and an
        NDJSON file for one receiver, PostgreSQL for several). ``enrolments``, ``devices``
        and ``raw_records``: the region's filing state, by default SQLite in ``enrolment_db``
        (where `narhub region enrol` writes), itself by default the SQLite state's file; a
        PostgreSQL state needs ``enrolment_db`` (or the three stores). ``consents``: this
        recipient's consents (docs/consent.md); a batch carrying a category it holds none for
        is refused, counted and kept for the report; None: no check. ``topic_root``: this
        recipient's topic tree (``narhub/v1/r/{recipient}`` on a shared broker).
        ``on_ingested``: told every filing once its output is committed (a batch's, and held
        readings released), with what was filed to whom and when (the findings' hook,
        :mod:`region.findings`)."""
        self._consents = consents
        self._topic_root = topic_root
        self._verifier = verifier
        self._state = state
        db = enrolment_db if enrolment_db is not None else state.sqlite_path
        if db is None and (enrolments is None or devices is None or raw_records is None):
            raise ValueError("a PostgreSQL state needs enrolment_db: the enrolments' SQLite file")
        self._filer = Filer(
            enrolments if enrolments is not None else SqliteEnrolmentStore(_need(db)),
            devices if devices is not None else SqliteDeviceRegistry(_need(db)),
            raw_records=raw_records if raw_records is not None else SqliteRawRecords(_need(db)),
        )
        self._release_interval_s = release_interval_s
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
        expected = f"{self._topic_root}/{header.hub_id}/up/{header.priority.topic_name}"
        if topic != expected:
            self.stats.rejected += 1
            logger.warning("rejected batch: topic does not match its signed header")
            return []
        if self._consents is not None:
            refusal = self._consents.check(header.hub_id, batch.readings, header.priority)
            if refusal is not None:
                self.stats.consent_refused += 1
                self._consents.refused(refusal, header.boot_id, header.seq)
                logger.warning(
                    "refused batch: categories without consent for %s: %s",
                    refusal.recipient,
                    ", ".join(sorted(c.value for c in refusal.missing)),
                )
                return []
        key = BatchKey(header.hub_id, header.boot_id, header.seq)
        filing, written = self._file_and_write(batch, key)
        if written is None:  # another receiver committed it since the replay check
            self.stats.duplicates += 1
            return []
        lines = written
        self.stats.held += filing.held
        self.stats.raw_records += filing.raw_records
        self.stats.batches += 1
        if self._on_ingested is not None:
            self._on_ingested(filing)
        if self._on_batch is not None:
            self._on_batch(batch, lines)
        return lines

    def _file_and_write(self, batch: Batch, key: BatchKey) -> tuple[Filing, list[str] | None]:
        """File the batch and commit it; filed again when an enrolment of its hub changed in
        between (:class:`region.state.FilingRaceError`, a store shared with the state)."""
        for attempt in range(FILING_ATTEMPTS):
            filing = self._filer.file_batch(batch)
            try:
                return filing, self._write(filing, key)
            except FilingRaceError:
                if attempt == FILING_ATTEMPTS - 1:
                    raise
                logger.info("an enrolment changed while a batch was filed; filing it again")
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, filing: Filing, key: BatchKey) -> list[str] | None:
        """Commit the filing's resources not written before with the batch ``key`` through
        the state; returns the lines written (``None``: the key was already recorded)."""
        out = filing.resources
        resources = [
            ObservationLine(resource_key(r), dumps_exact(r), observation=False)
            for r in (*out.patients, *out.devices, *out.time_stamps)
        ]
        for pos, r in enumerate(out.observations):
            alternate = out.alternates.get(pos)
            resources.append(
                ObservationLine(
                    resource_key(r),
                    dumps_exact(r),
                    alias=None if alternate is None else str(alternate["id"]),
                    alternate=None if alternate is None else dumps_exact(alternate),
                )
            )
        lines = self._state.commit_batch(key, resources, writes=filing.writes)
        if lines is None:
            return None
        if filing.writes is not None:
            filing.held = filing.writes.held_new
        written = set(lines)
        fresh = sum(1 for r in resources if r.observation and written & {r.line, r.alternate})
        self.stats.duplicate_observations += len(out.observations) - fresh
        self.stats.observations += fresh
        return lines

    def release_held(self) -> int:
        """File held readings that enrolments now cover; returns how many were released."""
        released = 0
        for filing in self._filer.releasable():
            # Released readings have no batch of their own: a key of their own, whose hub id
            # no hub has (:data:`region.state.RELEASE_HUB`).
            try:
                self._write(filing, BatchKey(RELEASE_HUB, uuid.uuid4().hex, 0))
            except FilingRaceError:
                continue  # released by another receiver, or enrolments changed: next round
            self._filer.released(filing)
            if self._on_ingested is not None:
                self._on_ingested(filing)
            released += len(filing.released)
        self.stats.released += released
        if released:
            logger.info("released %d held readings to their enrolments", released)
        return released

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether the batch (hub, boot id, seq) was already written (the replay check)."""
        return self._state.seen(hub_id, boot_id, seq)

    @property
    def up_filter(self) -> str:
        """The subscription filter of this recipient's batches."""
        return f"{self._topic_root}/+/up/+"

    async def run(self, connect: Callable[[], AbstractAsyncContextManager[MqttLink]]) -> None:
        """Subscribe and process messages until cancelled or the connection drops (its
        :class:`~drivers.mqtt.MqttError` propagates as it is); held readings are checked
        against new enrolments every ``release_interval_s`` meanwhile."""
        async with connect() as link:
            releaser = asyncio.create_task(self._release_loop(), name="receiver-release")
            try:
                await link.subscribe(f"$share/{SHARED_GROUP}/{self.up_filter}")
                self.subscribed.set()
                logger.info("subscribed to $share/%s/%s", SHARED_GROUP, UP_FILTER)
                async for message in link.messages():
                    self.handle(message.topic, message.payload)
                    # PUBACK only now: the resources and the batch key are committed, so a
                    # receiver that dies before this gets the batch again (and de-duplicates
                    # it).
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
        """Close the state and the filing stores."""
        self._state.close()
        self._filer.enrolments.close()
        self._filer.devices.close()
        if self._filer.raw_records is not None:
            self._filer.raw_records.close()
        if self._consents is not None:
            self._consents.close()


def _need(db: Path | None) -> Path:
    if db is None:  # checked in Receiver.__init__
        raise AssertionError("no enrolment database")
    return db
