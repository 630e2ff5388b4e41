"""The durable outbox, blocking: readings in, signed batches out, safe across power cuts.

A reading is acknowledged to its source only after the transaction that stored it has
committed; a batch is deleted only after the broker's PUBACK carried a reason code below 0x80.
:class:`Outbox` wires the concerns together, each in its own module behind the one transaction
seam (:mod:`gateway.outbox.transaction`): schema and recovery (:mod:`~gateway.outbox.schema`),
chunks (:mod:`~gateway.outbox.chunks`), source keys (:mod:`~gateway.outbox.keys`), quota and
tombstones (:mod:`~gateway.outbox.quota`), held readings and the clock back-fill
(:mod:`~gateway.outbox.held`), the batching policy (:mod:`~gateway.outbox.batching`, pure),
sealing (:mod:`~gateway.outbox.sealing`), acknowledgements (:mod:`~gateway.outbox.acks`) and
figures (:mod:`~gateway.outbox.figures`). Design, schema, quota and the crash/power-cut proof:
docs/pipeline.md.

All methods are blocking; the async hub calls them through one worker thread
(:class:`gateway.outbox.worker.AsyncOutbox`), which also groups concurrent adds into one commit.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.clock import ClockSample, ClockSource
from gateway.consents import ConsentLedger
from gateway.outbox import (
    acks,
    batching,
    chunks,
    consent_gate,
    delivery,
    figures,
    held,
    quota,
    sealing,
)
from gateway.outbox.acks import Acks, PendingBatch
from gateway.outbox.batching import BatchingPolicy
from gateway.outbox.consent_gate import ConsentGate
from gateway.outbox.figures import StoreStats
from gateway.outbox.keys import SourceKeys
from gateway.outbox.schema import DEFAULT_HOME, open_store
from gateway.outbox.sealing import SealPlan, StalePlanError
from gateway.outbox.streams import Streams
from gateway.outbox.telemetry import recovery_reading
from gateway.reading import Reading
from protocols.uplink import BatchSigner

logger = logging.getLogger(__name__)

DEFAULT_QUOTA_BYTES = 1024 * 2**20
DEFAULT_MIN_FREE_BYTES = 64 * 2**20
DEFAULT_DEDUP_RETENTION_S = 30 * 86_400.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Outbox:
    """Readings in, signed batches out; every change is one durable transaction."""

    def __init__(
        self,
        path: Path,
        *,
        recover: bool = False,
        batching: BatchingPolicy | None = None,
        quota_bytes: int = DEFAULT_QUOTA_BYTES,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        dedup_retention_s: float = DEFAULT_DEDUP_RETENTION_S,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
        clock_source: ClockSource | None = None,
        exclusive: bool = False,
        busy_timeout_s: float = 5.0,
        consent: ConsentGate | None = None,
        recipients: Sequence[str] | None = None,
        recipient_quotas: Mapping[str, int] | None = None,
    ) -> None:
        """``clock_source``: hold readings until it says the wall clock is trusted, then
        back-fill their times (None: every wall time is taken as it is, nothing is held).

        ``exclusive``: hold the database for this connection (``locking_mode=EXCLUSIVE``, the
        running hub): SQLite then keeps the WAL index in this process's memory instead of a
        shared ``-shm`` file, which the kernel would write back to the SD card every ~30 s
        while commits touch it (docs/pipeline.md, "Bytes on the SD card"). Anyone else
        opening it meanwhile gets :class:`StoreBusyError` after ``busy_timeout_s``.

        ``consent``: the recipient's consent gate: a seal puts in the batch only what the
        recipient holds consent for, and counts the rest as withheld (docs/consent.md).

        ``recipients``: every recipient's name, the home recipient first (default: the
        consent gate's, else ``region``): each reading is stored once and sealed for each of
        them (docs/pipeline.md, "Recipients"). Every recipient but the home one is always
        gated by the same consent file (no file: nothing leaves for it).
        ``recipient_quotas``: bytes waiting for one recipient at most (its chunks not taken,
        its unsent batches); beyond it, readings are evicted for that recipient alone.
        """
        self.consent = consent
        home = consent.recipient if consent is not None else None
        names = tuple(recipients or ((home,) if home else (DEFAULT_HOME,)))
        if home is not None and names[0] != home:
            names = (home, *(n for n in names if n != home))
        #: Every recipient, the home recipient first.
        self.recipients: tuple[str, ...] = names
        self.recipient_quotas = dict(recipient_quotas or {})
        self._gates: dict[str, ConsentGate | None] = {names[0]: consent}
        for name in names[1:]:
            self._gates[name] = None if consent is None else ConsentGate(consent.path, name)
        #: The ledger stamp each recipient's stored batches were last checked against.
        self._purged_stamp: dict[str, tuple[int, int] | None] = {}
        self.path = path
        self.exclusive = exclusive
        self.busy_timeout_s = busy_timeout_s
        self.batching = batching or BatchingPolicy()
        self.quota = quota.Quota(path, quota_bytes, min_free_bytes)
        self.stats = StoreStats()
        self._clock = clock
        self._wall_ms = wall_ms
        self._db, recovered = open_store(
            path,
            recover=recover,
            exclusive=exclusive,
            busy_timeout_s=busy_timeout_s,
            home=self.recipients[0],
        )
        #: Set when a damaged store was moved aside at open (``recover=True``).
        self.recovered = recovered
        #: A new boot id each time the store is opened: (hub, boot id, seq) names a batch.
        self.boot_id = uuid.uuid4().hex[:12]
        self._streams = Streams(self._db)
        self.keys = SourceKeys(self._db, retention_s=dedup_retention_s)
        if delivery.removed(self._db, self.recipients):  # a recipient left the configuration
            with self._db.write() as tx:
                delivery.forget_removed(tx, self.recipients, keys=self.keys, now_ms=self._wall_ms())
        self._acks = Acks()
        self._trust = held.ClockTrust(clock_source)
        self._held_readings = held.held_count(self._db)
        #: Per recipient, the monotonic time at which the readings waiting for it must leave
        #: (None: nothing waits).
        self._due_at: dict[str, float | None] = dict.fromkeys(self.recipients)
        for name in self.recipients:
            if sealing.waiting(self._db, name):
                self._due_at[name] = self._clock()  # they waited across a restart: due now
        if clock_source is not None:
            self._trust.trusted()  # before any reading this process receives
            if self._held_readings:
                self._all_due_now()  # seal looks at once: back-fill if trusted
        if recovered is not None:
            self.add([recovery_reading(self._wall_ms())])

    @property
    def home(self) -> str:
        """The home recipient (the one a call naming none is about)."""
        return self.recipients[0]

    def _name(self, recipient: str | None) -> str:
        if recipient is None:
            return self.recipients[0]
        if recipient not in self._due_at:
            msg = f"outbox: {recipient!r} is not a recipient of this outbox"
            raise ValueError(msg)
        return recipient

    def _all_due_now(self) -> None:
        now = self._clock()
        for name in self.recipients:
            self._due_at[name] = now

    @property
    def clock_trusted(self) -> ClockSample | None:
        """The first sample that said "trusted" (None: not yet, or no clock source)."""
        return self._trust.trusted_sample

    @property
    def clock_sample(self) -> ClockSample | None:
        """The latest sample taken (None: no clock source)."""
        return self._trust.sample

    def close(self) -> None:
        """Delete the batches acknowledged meanwhile and close the database (a checkpoint
        leaves the WAL small)."""
        try:
            with contextlib.suppress(sqlite3.Error):  # not deleted: sent again, dropped there
                self.flush_acks()
        finally:
            self._db.close()

    # -- readings in -----------------------------------------------------------------------

    def add(self, readings: Sequence[Reading]) -> int:
        """Store readings in one transaction; when this returns they are on disk.

        A reading whose ``source_key`` was stored before is skipped (sources resend what they
        could not see acknowledged). Returns how many readings were new.
        """
        return self.add_groups([readings])[0]

    def add_groups(
        self, groups: Sequence[Sequence[Reading]], *, waited_s: float = 0.0
    ) -> list[int]:
        """Store several callers' readings in one transaction (one sync): new count per group.

        ``waited_s``: how long the oldest of them waited for this commit (a group commit
        window); their batching deadline counts from their arrival, not from the commit."""
        now_ms = self._wall_ms()
        now_s = self._clock()
        held_boot: str | None = None
        if self._trust.source is not None:
            trust = self._trust.trusted()
            if trust is None:
                assert self._trust.sample is not None
                held_boot = self._trust.sample.boot_id
            else:
                self.backfill()
                groups = [held.backfilled(g, trust) for g in groups]
        with self._db.write() as tx:
            self._acks.delete(tx)
            kept, counts = self.keys.fresh(tx, groups)
            written = chunks.write(tx, kept, self._streams, held_boot=held_boot)
            self.keys.maintain(tx, now_ms)
            eviction = quota.enforce(
                tx,
                self.quota,
                page_size=self._db.page_size,
                keys=self.keys,
                now_ms=now_ms,
                recipients=self.recipients,
                recipient_quotas=self.recipient_quotas,
            )
        if held_boot is not None:
            self._held_readings += written.readings
        due = batching.after_commit(
            written.kinds,
            self.batching,
            now_s=now_s,
            waited_s=waited_s,
            held=held_boot is not None,
            evicted=eviction.readings > 0,
        )
        for name in self.recipients:
            self._due_at[name] = batching.earliest(self._due_at[name], due)
        added = sum(counts)
        self.stats.commits += 1
        self.stats.readings_added += added
        self.stats.duplicates += sum(len(g) for g in groups) - added
        self.stats.evicted += eviction.readings
        self.stats.over_quota = eviction.over_quota
        return counts

    # -- held readings -----------------------------------------------------------------------

    def held_readings(self) -> int:
        """Readings held until the wall clock is trusted (docs/pipeline.md)."""
        return self._held_readings

    def backfill(self) -> int:
        """Give held readings their wall time once the clock is trusted (one transaction;
        :func:`gateway.outbox.held.backfill`); they are due at once. Returns how many readings
        were back-filled; 0 while the clock is not trusted."""
        if not self._held_readings or self._trust.source is None:
            return 0
        trust = self._trust.trusted()
        if trust is None:
            return 0
        with self._db.write() as tx:
            exact, estimated = held.backfill(tx, trust)
        self._held_readings = 0
        self._all_due_now()  # they waited long enough: due now
        logger.info(
            "back-filled the wall time of %d held readings (%d estimated: an earlier boot)",
            exact + estimated,
            estimated,
        )
        return exact + estimated

    # -- batches out -------------------------------------------------------------------------

    def due_in_s(self, recipient: str | None = None) -> float | None:
        """Seconds until the readings waiting for ``recipient`` (default: the home
        recipient) must leave (<= 0: now); None if none wait."""
        due = self._due_at[self._name(recipient)]
        return None if due is None else due - self._clock()

    def seal(
        self,
        signer: BatchSigner,
        *,
        now_ms: int,
        max_readings: int | None = None,
        newest_alert_alone: bool = False,
        recipient: str | None = None,
    ) -> PendingBatch | None:
        """Seal readings waiting for ``recipient`` (default: the home recipient) into one
        signed batch of that recipient; None if none wait.

        Takes every waiting chunk, most urgent priority first and oldest first within one,
        until ``max_readings`` (at least one chunk), plus every pending tombstone
        (:func:`gateway.outbox.batching.choose`). The batch carries the most urgent priority
        among its readings. Signed between :meth:`prepare_seal` and :meth:`finish_seal`,
        outside the write lock (:mod:`gateway.outbox.sealing`).

        ``newest_alert_alone``: when more than one alert chunk waits (a backlog after days
        offline), seal only the newest alert chunk, so that it leaves first
        (docs/protocols/uplink.md, "Drain order"); None otherwise.
        """
        while True:
            plan = self.prepare_seal(
                signer.hub_id,
                now_ms=now_ms,
                max_readings=max_readings,
                newest_alert_alone=newest_alert_alone,
                recipient=recipient,
            )
            if plan is None:
                return None
            message = b"" if plan.empty else signer.sign(plan.body)
            batch = self.finish_seal(plan, message)
            if batch is not None:
                return batch

    def prepare_seal(
        self,
        hub_id: str,
        *,
        now_ms: int,
        max_readings: int | None = None,
        newest_alert_alone: bool = False,
        recipient: str | None = None,
    ) -> SealPlan | None:
        """The next batch encoded, not signed, nothing written (see :meth:`seal`); None when
        nothing is to be sealed. Back-fills held readings first when the clock allows."""
        name = self._name(recipient)
        self.backfill()
        consent = self._consent_ledger(name)
        if consent is not None and consent[1].stamp != self._purged_stamp.get(name):
            self._purge_sealed(hub_id, consent, now_ms)
        plan = sealing.prepare(
            self._db,
            self._streams,
            hub_id=hub_id,
            boot_id=self.boot_id,
            now_ms=now_ms,
            max_readings=max_readings or self.batching.max_batch_readings,
            newest_alert_alone=newest_alert_alone,
            recipient=name,
            consent=consent,
        )
        if plan is None and not newest_alert_alone:
            self._after_seal(name, still_waiting=False)
        return plan

    def finish_seal(self, plan: SealPlan, message: bytes) -> PendingBatch | None:
        """Store ``plan``'s signed ``message`` in place of its readings (one transaction);
        None when what it took changed meanwhile (prepare it again)."""
        try:
            with self._db.write() as tx:
                batch_id = sealing.finish(
                    tx,
                    plan,
                    message,
                    keys=self.keys,
                    now_ms=plan.header.created_ms,
                    recipients=self.recipients,
                )
                self._acks.delete(tx)  # only here: a seal that finds nothing writes nothing
        except StalePlanError as exc:
            logger.debug("outbox: batch plan stale (%s): prepared again", exc)
            return None
        self._after_seal(plan.recipient, still_waiting=sealing.waiting(self._db, plan.recipient))
        if plan.withheld:
            for row in plan.withheld:
                self.stats.withheld += row.n
            logger.debug(  # routine under a consent: counted in the figures, not a log event
                "outbox: %d readings withheld from %s (no consent: %s)",
                sum(r.n for r in plan.withheld),
                plan.withheld[0].recipient,
                ", ".join(sorted({r.category.value for r in plan.withheld})),
            )
        if plan.empty:
            return None
        header = plan.header
        return PendingBatch(batch_id, header.seq, header.priority, message)

    def _consent_ledger(self, recipient: str) -> tuple[str, ConsentLedger] | None:
        """The recipient's ledger; None: no gate (the home recipient of a hub without a
        consent file). Any other recipient without one has an empty ledger: nothing leaves."""
        gate = self._gates[recipient]
        ledger = None if gate is None else gate.ledger()
        if ledger is None:
            return None if recipient == self.home else (recipient, ConsentLedger((), None))
        return recipient, ledger

    def _purge_sealed(self, hub_id: str, consent: tuple[str, ConsentLedger], now_ms: int) -> None:
        """The ledger changed: take apart stored batches it no longer allows (a withdrawal
        removes the recipient's queued data of the category, sealed or not)."""
        with self._db.write() as tx:
            withheld = consent_gate.purge_sealed(
                tx,
                self._streams,
                consent,
                hub_id=hub_id,
                skip=self._acks.ids(),
                now_ms=now_ms,
                others=[r for r in self.recipients if r != consent[0]],
            )
        self._purged_stamp[consent[0]] = consent[1].stamp
        if withheld:
            self.stats.withheld += withheld
            logger.info("outbox: %d sealed readings withheld from %s", withheld, consent[0])

    def apply_consent(
        self, hub_id: str, recipient: str | None = None, *, now_ms: int | None = None
    ) -> int:
        """When the ledger changed since ``recipient`` last looked: its unsent batches and the
        readings waiting for it are checked against it now, without sealing (its broker may be
        down), so a withdrawal removes its queued readings of the category at once, counted
        (:func:`consent_gate.withhold_waiting`). Returns the readings withheld."""
        name = self._name(recipient)
        consent = self._consent_ledger(name)
        if consent is None or consent[1].stamp == self._purged_stamp.get(name):
            return 0
        now = self._wall_ms() if now_ms is None else now_ms
        before = self.stats.withheld
        self._purge_sealed(hub_id, consent, now)
        with self._db.write() as tx:
            withheld = consent_gate.withhold_waiting(
                tx, self._streams, consent, recipients=self.recipients, keys=self.keys, now_ms=now
            )
        self.stats.withheld += withheld
        if withheld:
            logger.info("outbox: %d waiting readings withheld from %s", withheld, name)
        if self.stats.withheld != before and sealing.waiting(self._db, name):
            # What may still leave went back as chunks: due now, as it was.
            self._due_at[name] = batching.earliest(self._due_at[name], self._clock())
        return self.stats.withheld - before

    def withheld(self) -> dict[str, dict[str, int]]:
        """Readings withheld for want of consent: recipient -> category -> count."""
        return consent_gate.withheld_totals(self._db)

    def _after_seal(self, recipient: str, *, still_waiting: bool) -> None:
        self._due_at[recipient] = batching.after_seal(
            self._due_at[recipient],
            still_waiting=still_waiting,
            held=bool(self._held_readings) and self._trust.source is not None,
            now_s=self._clock(),
        )

    # -- acknowledgements --------------------------------------------------------------------

    def pending(self, limit: int = 100, recipient: str | None = None) -> list[PendingBatch]:
        """``recipient``'s (default: the home recipient's) unsent, unrejected batches, alerts
        first, oldest first within a priority."""
        return acks.pending(self._db, self._acks, limit, self._name(recipient))

    def acknowledge(self, batch_id: int, *, defer: bool = False) -> None:
        """The broker accepted the batch (reason code < 0x80): delete it.

        ``defer``: delete it with the next transaction (a commit of readings, a seal, or
        :meth:`flush_acks`), not in one of its own: one sync fewer per batch on the SD card.
        Until then the store acts as if it were gone (:meth:`pending`, the counts); a crash
        before that commit only sends the batch again, which the region drops as a replay
        (at-least-once, docs/protocols/uplink.md). At most
        :data:`gateway.outbox.acks.MAX_DEFERRED_ACKS` wait.
        """
        if self._acks.add(batch_id) or not defer:
            self.flush_acks()

    def flush_acks(self) -> bool:
        """Delete the batches whose acknowledgement was deferred (one transaction, if any)."""
        if not self._acks:
            return False
        with self._db.write() as tx:
            self._acks.delete(tx)
        return True

    def reject(self, batch_id: int, reason_code: int) -> None:
        """The broker refused the batch: keep it, with the reason, for the technician."""
        with self._db.write() as tx:
            acks.reject(tx, batch_id, reason_code)

    def all_batches(self) -> list[tuple[PendingBatch, int | None]]:
        """Every stored batch with its rejection reason (None while still to send)."""
        return acks.all_batches(self._db, self._acks)

    # -- figures -----------------------------------------------------------------------------

    def unbatched_count(self) -> int:
        """Readings not yet sealed into a batch."""
        return figures.unbatched_count(self._db)

    def known_keys(self) -> int:
        """Source keys remembered: of waiting chunks, of recently sealed or evicted ones, and
        in ``source_keys`` (folded)."""
        return len(self.keys.recent) + self.stored_keys()

    def stored_keys(self) -> int:
        """Source keys folded into ``source_keys`` (:meth:`SourceKeys.fold`)."""
        return self.keys.stored(self._db)

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages not on the free list)."""
        return quota.used_bytes(self._db, self._db.page_size)

    def oldest_unsent_ms(self) -> int | None:
        """Epoch ms of the oldest reading not yet acknowledged by the broker, or None."""
        return figures.oldest_unsent_ms(self._db, self._acks)

    def depth_by_priority(self) -> dict[str, int]:
        """Readings not yet acknowledged by the broker, per priority topic name."""
        return figures.depth_by_priority(self._db, self._acks)

    def queue_figures(self) -> dict[str, Any]:
        """What ``narhub status`` shows of the queue (:func:`figures.queue_figures`)."""
        return figures.queue_figures(self._db, self._acks, self.counts(), self.recipients)

    def recipient_backlog(self) -> dict[str, dict[str, Any]]:
        """Per recipient, what waits for it (:func:`figures.recipient_backlog`)."""
        return figures.recipient_backlog(self._db, self._acks, self.recipients)

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check``: "ok" or the first problem found."""
        return figures.quick_check(self._db)

    def counts(self) -> dict[str, int]:
        """Queue depths, evictions and disk use."""
        return figures.counts(
            self._db,
            self._acks,
            held=self._held_readings,
            used_bytes=self.used_bytes(),
            quota_bytes=self.quota.quota_bytes,
        )
