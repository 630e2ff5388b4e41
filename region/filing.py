"""Filing a batch's readings to patients: attribution, holding, release (the receiver's policy).

For each verified batch (:meth:`Filer.file_batch`):

1. its Device Information readings and measured codes update the device registry
   (:mod:`region.device_registry`); its raw records (values the hub could not decode,
   :mod:`protocols.uplink.undecoded`) are kept in :mod:`region.raw_records`, never filed;
2. each reading is attributed by its effective time to the enrolment of its hub (or device)
   covering it (:func:`region.enrolment.attribute`); the hub's own readings (device ``hub``)
   are no patient's;
3. readings no enrolment covers are **held** in the enrolment store (durably, before the
   batch is acknowledged: nothing is dropped, nothing guessed);
4. the rest become FHIR resources (:func:`protocols.fhir.batch_resources`).

:meth:`Filer.releasable` finds held readings an enrolment made since then covers and files
them the same way; the receiver writes them and then :meth:`Filer.released` forgets them (a
crash in between files them again, and the output's de-duplication writes them once).

When the enrolment store lives in the state's database (PostgreSQL), steps 3 and the release
are not written by the filer: the filing carries them (:attr:`Filing.writes`,
:meth:`region.enrolment_store.EnrolmentStore.joint`) and the state applies them in the
batch's own transaction, so holding, attributing and releasing commit with the output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from protocols.fhir import BatchResources, Filed, batch_resources, describe
from protocols.fhir.identity import HUB_DEVICE, held_key, reading_identity
from protocols.uplink import FORMAT_VERSION, Batch, WireReading
from protocols.uplink.device_facts import is_device_info
from protocols.uplink.undecoded import RawRecord, is_undecoded, raw_record
from region.device_registry import DeviceRegistry
from region.enrolment import Enrolment, attribute
from region.enrolment_store import EnrolmentStore, HeldReading
from region.raw_records import RawRecords
from region.state import JointWrites


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Filing:
    """What filing some readings gave: the resources to write, and what was held."""

    hub: str
    resources: BatchResources
    held: int = 0
    #: Raw records (undecoded values) newly kept.
    raw_records: int = 0
    #: Held readings this filing releases (forget them once the output is written).
    released: list[str] = field(default_factory=list)
    #: The readings filed, each with its patient (the findings' ingestion event).
    filed: list[Filed] = field(default_factory=list)
    #: When the region filed them (epoch ms, its own clock: the ingestion time).
    received_ms: int = 0
    #: The store's writes for the state to commit with the output (``None``: done already).
    writes: JointWrites | None = None


@dataclass(frozen=True, slots=True)
class _Split:
    filed: list[Filed]
    held: list[HeldReading]
    filed_until: dict[int, int]


def split(
    hub: str,
    readings: Iterable[WireReading],
    enrolments: Sequence[Enrolment],
    *,
    now_ms: int,
) -> _Split:
    """Attribute readings (pure): filed ones with their patient, the others to hold, and the
    latest time filed per enrolment. Device Information readings and raw records are neither."""
    filed: list[Filed] = []
    held: list[HeldReading] = []
    filed_until: dict[int, int] = {}
    occurrences: dict[tuple[str, ...], int] = {}
    for r in readings:
        if is_device_info(r) or is_undecoded(r):
            continue
        if r.device == HUB_DEVICE:
            filed.append(Filed(r, None))
            continue
        enrolment = attribute(enrolments, r.device, r.t_ms)
        if enrolment is None:
            identity = reading_identity(r)
            occurrence = occurrences.get(identity, 0)
            occurrences[identity] = occurrence + 1
            held.append(HeldReading(held_key(hub, r, occurrence), hub, r, now_ms))
            continue
        filed.append(Filed(r, enrolment.patient))
        filed_until[enrolment.id] = max(filed_until.get(enrolment.id, r.t_ms), r.t_ms)
    return _Split(filed, held, filed_until)


def _raw(reading: WireReading) -> RawRecord:
    record = raw_record(reading)
    if record is None:
        return RawRecord(reading.device, "", reading.t_ms, (reading.special or "").encode())
    return record


class Filer:
    """Files batches with an enrolment store and a device registry."""

    def __init__(
        self,
        enrolments: EnrolmentStore,
        devices: DeviceRegistry,
        *,
        raw_records: RawRecords | None = None,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.enrolments = enrolments
        self.devices = devices
        self.raw_records = raw_records
        self._clock_ms = clock_ms

    def file_batch(self, batch: Batch) -> Filing:
        """File one verified batch; its unattributed readings are held (on disk) first."""
        header = batch.header
        raw = self._keep_raw(header.hub_id, batch.readings)
        descriptions = self.devices.update(
            describe(r for r in batch.readings if not is_undecoded(r))
        )
        now = self._clock_ms()
        enrolments = self.enrolments.enrolments(header.hub_id)
        parts = split(header.hub_id, batch.readings, enrolments, now_ms=now)
        writes = self.enrolments.joint(
            header.hub_id, enrolments, held=parts.held, filed=parts.filed_until
        )
        if writes is None:
            held = self.enrolments.hold(parts.held)
            self.enrolments.note_filed(parts.filed_until)
        else:
            held = len(parts.held)  # counted again by the state's transaction
        resources = batch_resources(header.hub_id, header.version, parts.filed, descriptions)
        return Filing(
            header.hub_id,
            resources,
            held=held,
            raw_records=raw,
            filed=parts.filed,
            received_ms=now,
            writes=writes,
        )

    def _keep_raw(self, hub: str, readings: Sequence[WireReading]) -> int:
        """Keep the batch's raw records (on disk before the batch is acknowledged). One whose
        flags or hex cannot be read (a hub's defect) is kept with its text as the bytes and
        no UUID, rather than lost."""
        records = [_raw(r) for r in readings if is_undecoded(r)]
        if not records or self.raw_records is None:
            return 0
        return self.raw_records.keep(hub, records)

    def releasable(self) -> list[Filing]:
        """Held readings that enrolments now cover, filed (per hub); the receiver writes them,
        then calls :meth:`released`."""
        out = []
        for hub in self.enrolments.held_hubs():
            enrolments = self.enrolments.enrolments(hub)
            if not enrolments:
                continue
            held = self.enrolments.held(hub)
            covered = [
                h
                for h in held
                if attribute(enrolments, h.reading.device, h.reading.t_ms) is not None
            ]
            if not covered:
                continue
            now = self._clock_ms()
            parts = split(hub, [h.reading for h in covered], enrolments, now_ms=now)
            released = [h.key for h in covered]
            writes = self.enrolments.joint(
                hub, enrolments, filed=parts.filed_until, released=released
            )
            if writes is None:
                self.enrolments.note_filed(parts.filed_until)
            devices = self.devices.get(sorted({h.reading.device for h in covered}))
            resources = batch_resources(hub, FORMAT_VERSION, parts.filed, devices)
            out.append(
                Filing(
                    hub,
                    resources,
                    released=released,
                    filed=parts.filed,
                    received_ms=now,
                    writes=writes,
                )
            )
        return out

    def released(self, filing: Filing) -> None:
        """Forget the held readings a written filing released (unless its joint writes did,
        in the transaction that wrote it)."""
        if filing.writes is None:
            self.enrolments.release(filing.released)
