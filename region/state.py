"""The receiver's state behind one seam: batch keys, Observation ids, the written Observations and
the FHIR queue.

Two backends, chosen by ``narhub region ingest --state``:

- a path: :class:`region.state_sqlite.SqliteState`, one receiver on one machine (the embedded
  default). The Observations go to an NDJSON file, fsynced *before* the transaction that records
  the batch key and the ids; lines written after the last recorded offset (a receiver killed
  between the fsync and the commit) are recorded at the next start, and a torn last line is cut.
- a ``postgresql://`` URL: :class:`region.state_pg.PostgresState`, any number of receivers on
  the MQTT 5 shared subscription. The Observations are rows of the same database, inserted in
  the one transaction that inserts the batch key, so a batch is either wholly written with its
  key or not at all; ``narhub region export`` writes them as NDJSON.

Either way the receiver acknowledges a batch (PUBACK) only after
:meth:`RegionState.commit_batch` returned, so a batch is written once whichever receiver gets
it, however often it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from protocols.fhir.codes import URI_SYSTEM
from protocols.fhir.devices import description_digest
from protocols.fhir.identity import observation_id

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class RegionStateError(RuntimeError):
    """The state store failed; ``backend`` names it, ``reason`` says what went wrong."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"{backend} state: {reason}")


class StateUnavailableError(RegionStateError, ConnectionError):
    """The database cannot be reached (the batch is not acknowledged: it comes again)."""


class FilingRaceError(RegionStateError):
    """The filing's transaction was rolled back because another writer got there first: an
    enrolment of the hub changed since the readings were attributed (file them again), or
    another receiver released the same held readings (nothing to do). ``hub`` names it."""

    def __init__(self, hub: str, reason: str) -> None:
        self.hub = hub
        super().__init__("postgresql", reason)


class JointWrites(Protocol):
    """A filing's writes to the enrolment store when that store lives in the state's own
    database (:mod:`region.enrolment_pg`): applied inside :meth:`RegionState.commit_batch`'s
    transaction, so that holding, attributing and releasing readings commit with the output
    and the batch key, or not at all."""

    #: How many readings the writes held that were not held before (set by :meth:`apply`).
    held_new: int

    def apply(self, cursor: Any) -> None:
        """Run the writes on the state's transaction (``cursor``); raise
        :class:`FilingRaceError` to roll all of it back."""


def resource_key(resource: dict[str, Any]) -> str:
    """What the de-duplication records for a resource: an Observation's id, a Device's id
    with the digest of its description (a changed Device is written again)."""
    if resource.get("resourceType") == "Device":
        return f"Device/{resource['id']}#{description_digest(resource)}"
    return str(resource["id"])


@dataclass(frozen=True)
class BatchKey:
    """What identifies a batch across receivers: the signed header's hub id, boot id, seq."""

    hub_id: str
    boot_id: str
    seq: int


@dataclass(frozen=True)
class ObservationLine:
    """One FHIR resource: its de-duplication key (an Observation's deterministic id, a
    Device's id with the digest of its description), its exact JSON text (one NDJSON line),
    and whether it is an Observation (``False``: a Device or a coincident time stamp that the
    batch's Observations reference).

    An Observation identified by the PHD IG's identifier (device, patient, type, PHD second)
    also has an ``alias``: the id of narhub's own identifier of the reading (its exact value
    too), which the resource carries as its second identifier, and the ``alternate`` line:
    the same Observation under that identifier alone. :func:`resolve` writes the alternate
    when the IG's identifier already names another reading (two measurements in one second
    of a device clock that stamps whole minutes or seconds), so neither is taken for a resend
    of the other."""

    id: str
    line: str
    observation: bool = True
    alias: str | None = None
    alternate: str | None = None


@dataclass(frozen=True)
class Resolution:
    """What :func:`resolve` decided for a batch: the lines to write (in order), the keys to
    record, and the batch's resources with each chosen alternate in its resource's place."""

    fresh: list[ObservationLine]
    keys: list[str]
    view: list[ObservationLine]


def resolve(resources: Sequence[ObservationLine], known: set[str]) -> Resolution:
    """The resources new to the region, given the keys already recorded (``known``).

    A resource without an alias is new when its key is unknown. One with an alias is a
    resend when its alias is known (it was written, under either identifier); else it is
    written under the IG's identifier when that one is free, under its alias otherwise. An
    id twice in one batch is written once."""
    taken = set(known)
    fresh: list[ObservationLine] = []
    keys: list[str] = []
    view: list[ObservationLine] = []
    for r in resources:
        chosen = r
        if r.alias is None or r.alternate is None:
            if r.id not in taken:
                taken.add(r.id)
                fresh.append(r)
                keys.append(r.id)
        elif r.alias not in taken:
            if r.id in taken:
                chosen = ObservationLine(r.alias, r.alternate, observation=r.observation)
                keys.append(r.alias)
            else:
                taken.add(r.id)
                keys.extend((r.id, r.alias))
            taken.add(r.alias)
            fresh.append(chosen)
        view.append(chosen)
    return Resolution(fresh, keys, view)


def line_keys(resource: dict[str, Any]) -> list[str]:
    """The keys a written resource records: :func:`resource_key`, and for an Observation
    with narhub's identifier beside the IG's, that identifier's id (its alias)."""
    keys = [resource_key(resource)]
    identifiers = resource.get("identifier")
    if resource.get("resourceType") == "Observation" and isinstance(identifiers, list):
        keys.extend(
            observation_id(str(i["value"]))
            for i in identifiers[1:]
            if isinstance(i, dict) and i.get("system") == URI_SYSTEM and "value" in i
        )
    return keys


#: The hub id of the key under which held readings released to an enrolment are committed
#: (no hub has an empty id, so the verifier's replay check never meets it).
RELEASE_HUB = ""


def queued_lines(resources: Sequence[ObservationLine], written: Sequence[str]) -> list[str]:
    """What a FHIR server gets for a batch: its new Observations (those in ``written``) with
    everything they reference, written now or before (a transaction Bundle that stands
    alone); nothing when no Observation is new."""
    fresh = set(written)
    observations = []
    for r in resources:
        if r.observation and r.line in fresh:
            fresh.discard(r.line)  # a resource twice in one batch: queued once
            observations.append(r.line)
    if not observations:
        return []
    return [*dict.fromkeys(r.line for r in resources if not r.observation), *observations]


class RegionState(Protocol):
    """What a receiver keeps; one object per receiver process."""

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """Whether the batch was already written (the verifier's replay check; a hint, the
        authority is :meth:`commit_batch`)."""

    def commit_batch(
        self,
        key: BatchKey,
        observations: Sequence[ObservationLine],
        *,
        writes: JointWrites | None = None,
    ) -> list[str] | None:
        """Write the resources not written before and record the batch key (with the FHIR
        queue, also :func:`queued_lines`), and apply ``writes`` in the same transaction;
        return the lines written, or ``None`` when the key was already recorded (nothing
        written, ``writes`` not applied)."""

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of this state, where the enrolment store lives by default
        (``None``: a PostgreSQL state; the enrolment store is then given separately)."""

    def close(self) -> None:
        """Release the database."""


class FhirQueue(Protocol):
    """Bundles of NDJSON lines waiting for the FHIR server (:mod:`region.fhir_post`)."""

    def claim(self) -> tuple[int, list[str]] | None:
        """The oldest waiting Bundle's row id and lines, or ``None`` when none waits."""

    def done(self, row_id: int, refused: str | None) -> None:
        """Delete a posted Bundle, or keep it marked refused with the server's reason."""

    def retry_refused(self) -> int:
        """Put refused Bundles back in the queue; how many."""

    def pending(self) -> int:
        """Bundles waiting (refused ones not counted)."""

    def close(self) -> None:
        """Release the database."""


def is_postgres(spec: str) -> bool:
    """Whether ``--state`` names a PostgreSQL database rather than a SQLite file."""
    return spec.startswith(POSTGRES_SCHEMES)
