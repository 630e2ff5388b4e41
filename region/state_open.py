"""Open the state ``narhub region ingest --state`` names: a SQLite path or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

from region.state import FhirQueue, RegionState, RegionStateError, is_postgres
from region.state_sqlite import SqliteFhirQueue, SqliteState


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
