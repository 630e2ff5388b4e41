"""Open the state ``narhub region ingest --state`` names: a SQLite path or a PostgreSQL URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from region.device_registry import DeviceRegistry
from region.enrolment_store import EnrolmentStore
from region.raw_records import RawRecords
from region.state import FhirQueue, RegionState, RegionStateError, is_postgres
from region.state_sqlite import SqliteFhirQueue, SqliteState


@dataclass(frozen=True)
class FilingStores:
    """The receiver's filing stores (:class:`region.receiver.Receiver`'s keyword arguments)."""

    enrolments: EnrolmentStore
    devices: DeviceRegistry
    raw_records: RawRecords


def open_state(
    spec: str, *, output: Path | None, fhir_queue: bool = False, name: str = "narhub-receiver"
) -> RegionState:
    """The backend ``spec`` names (a path or a ``postgresql://`` URL); ``name`` is the
    receiver's name in PostgreSQL's ``application_name``."""
    if is_postgres(spec):
        # Imported only here: a SQLite region needs neither psycopg nor libpq.
        from region.state_pg import PostgresState  # noqa: PLC0415

        return PostgresState(spec, fhir_queue=fhir_queue, application_name=name)
    if output is None:
        raise RegionStateError("sqlite", "a SQLite state needs an NDJSON output file (--out)")
    return SqliteState(Path(spec), output, fhir_queue=fhir_queue)


def open_fhir_queue(spec: str, *, name: str | None = None) -> FhirQueue:
    """The FHIR queue of the state ``spec`` names; ``name`` (the receiver's client id) owns
    its leases, so a receiver that restarts takes its own claimed Bundles back at once."""
    if is_postgres(spec):
        from region.state_pg import PostgresFhirQueue  # noqa: PLC0415

        return PostgresFhirQueue(spec, name=name)
    return SqliteFhirQueue(Path(spec))


def postgres_filing(url: str, *, name: str = "narhub-receiver") -> FilingStores:
    """The enrolment store, device registry and raw records in the PostgreSQL state ``url``
    (shared by every receiver and ``narhub region enrol``); ``name`` prefixes their
    ``application_name``."""
    from region.enrolment_pg import (  # noqa: PLC0415
        PostgresDeviceRegistry,
        PostgresEnrolmentStore,
        PostgresRawRecords,
    )

    return FilingStores(
        PostgresEnrolmentStore(url, application_name=f"{name}-enrolments"),
        PostgresDeviceRegistry(url, application_name=f"{name}-devices"),
        PostgresRawRecords(url, application_name=f"{name}-raw"),
    )


def open_enrolments(spec: str) -> EnrolmentStore:
    """The enrolment store of the state ``spec`` names (a SQLite path or PostgreSQL URL)."""
    if is_postgres(spec):
        from region.enrolment_pg import PostgresEnrolmentStore  # noqa: PLC0415

        return PostgresEnrolmentStore(spec)
    from region.enrolment_sqlite import SqliteEnrolmentStore  # noqa: PLC0415

    return SqliteEnrolmentStore(Path(spec))
