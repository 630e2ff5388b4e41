"""``narhub region ingest``: run a receiver (verify, de-duplicate, file to patients, write FHIR).

Mounted on ``narhub region`` by :mod:`region.cli`. With a SQLite ``--state`` everything the
receiver keeps is in that file; with a ``postgresql://`` state the batch keys, the resources,
the enrolments, the held readings, the device descriptions and the raw records are in that
database, shared by every receiver (``--enrolments FILE`` keeps the filing stores in a SQLite
file instead), and this receiver's findings and consents in ``--local-db``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from common.cli import EXIT_FAILED, emit
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from region.broker_config import recipient_root
from region.ca import CaVerifier, RegionCa
from region.consents import SqliteConsentRegistry
from region.fhir_post import FhirPoster
from region.receiver import RECEIVER_NAME, Receiver
from region.state import RegionStateError, is_postgres
from region.state_open import open_enrolments, open_fhir_queue, open_state, postgres_filing

if TYPE_CHECKING:
    from region.findings.engine import FindingsEngine

#: MQTT 5 Session Expiry Interval 0xFFFFFFFF: the session does not expire (MQTT 5.0 3.1.2.11.2).
#: A receiver's share of the shared subscription waits for it, never dropped.
NEVER_EXPIRES_S = 0xFFFFFFFF


def ingest(
    ca_dir: Annotated[Path, typer.Option(help="The region CA directory (hub certificates).")],
    host: Annotated[str, typer.Option(help="The broker host.")],
    cert: Annotated[Path, typer.Option(help="This receiver's certificate (CN region-receiver*).")],
    key: Annotated[Path, typer.Option(help="This receiver's key.")],
    state: Annotated[
        str,
        typer.Option(
            help="The state: a SQLite file (one receiver) or a postgresql:// URL shared by "
            "every receiver of the region (Observations stored in it; `narhub region export`)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="FHIR Observations, NDJSON (appended); with a SQLite --state."),
    ] = None,
    port: int = 8883,
    client_id: Annotated[
        str, typer.Option(help="Stable per receiver: its broker session survives restarts.")
    ] = f"{RECEIVER_NAME}-1",
    fhir_url: Annotated[
        str | None,
        typer.Option(
            help="Also POST each batch as a FHIR transaction Bundle (conditional creates) "
            "to this server base URL; queued durably, retried until accepted."
        ),
    ] = None,
    recipient: Annotated[
        str | None,
        typer.Option(
            help="Check every batch against this recipient's consents (`narhub region "
            "consent`, same --state) and read its topic tree (region: narhub/v1, else "
            "narhub/v1/r/NAME); unset: no consent check, the region's tree."
        ),
    ] = None,
    smart: Annotated[
        Path | None,
        typer.Option(
            help="SMART Backend Services client (TOML: token_url, client_id, key, alg, scope) "
            "for --fhir-url."
        ),
    ] = None,
    enrolments: Annotated[
        Path | None,
        typer.Option(
            help="Keep enrolments, held readings, devices and raw records in this SQLite file "
            "(`narhub region enrol --state FILE`); default: the --state itself (a SQLite "
            "file, or the postgresql:// database every receiver shares)."
        ),
    ] = None,
    local_db: Annotated[
        Path | None,
        typer.Option(
            help="With a postgresql:// --state: this receiver's SQLite file for findings and "
            "consents (default: --enrolments when given)."
        ),
    ] = None,
    with_findings: Annotated[
        bool,
        typer.Option(
            "--findings/--no-findings",
            help="Record what arrives and judge findings (docs/region.md, 'Findings'): the "
            "hubs' status topics too (client id CLIENT_ID-status).",
        ),
    ] = True,
    findings_out: Annotated[
        Path | None,
        typer.Option(help="Append each changed finding as FHIR (Task, DetectedIssue), NDJSON."),
    ] = None,
) -> None:
    """Receive batches on the shared subscription, verify, de-duplicate, file them to the
    enrolled patients (`narhub region enrol`, same --state), write FHIR."""
    from common.logsetup import configure_logging

    configure_logging(os.environ)
    if is_postgres(state) == (out is not None):
        raise typer.BadParameter(
            "give --out with a SQLite --state file; a postgresql:// --state keeps the "
            "Observations in the database (narhub region export writes them as NDJSON)",
            param_hint="--out",
        )
    local = local_db or enrolments or (None if is_postgres(state) else Path(state))
    if local is None and (with_findings or recipient is not None):
        raise typer.BadParameter(
            "with a postgresql:// --state, findings and consents need this receiver's SQLite "
            "file (--local-db FILE), or --no-findings and no --recipient",
            param_hint="--local-db",
        )
    ca = RegionCa(ca_dir)
    verifier = CaVerifier(ca)
    try:
        store = open_state(state, output=out, fhir_queue=fhir_url is not None, name=client_id)
        poster = None if fhir_url is None else _poster(state, fhir_url, smart, client_id)
        filing = (
            postgres_filing(state, name=client_id)
            if is_postgres(state) and enrolments is None
            else None
        )
    except RegionStateError as exc:
        emit({"ok": False, "error": str(exc)}, as_json=False)
        raise typer.Exit(EXIT_FAILED) from None
    # The findings read the enrolments where the receiver files by them.
    where = str(enrolments) if enrolments is not None else state
    # Findings to the FHIR server through the state's queue: with a SQLite state (same file).
    queue = fhir_url is not None and not is_postgres(state) and local == Path(state)
    engine = (
        None
        if local is None or not with_findings
        else _findings(local, where, findings_out, fhir_queue=queue)
    )
    receiver = Receiver(
        verifier,
        store,
        enrolment_db=enrolments,
        enrolments=None if filing is None else filing.enrolments,
        devices=None if filing is None else filing.devices,
        raw_records=None if filing is None else filing.raw_records,
        on_batch=None if poster is None else (lambda _b, _l: poster.wake.set()),
        on_ingested=None if engine is None else engine.filed,
        consents=(
            None if recipient is None or local is None else SqliteConsentRegistry(local, recipient)
        ),
        topic_root=(
            "narhub/v1" if recipient in (None, "region") else recipient_root(str(recipient))
        ),
    )
    tls = TlsFiles(ca.cert_file, cert, key)

    def connect() -> MqttLink:
        return MqttLink(
            host,
            port,
            client_id=client_id,
            tls=tls,
            manual_ack=True,
            session_expiry_s=NEVER_EXPIRES_S,
        )

    def connect_status() -> MqttLink:
        return MqttLink(host, port, client_id=f"{client_id}-status", tls=tls)

    async def serve() -> None:
        if poster is None and engine is None:
            await receiver.run(connect)
            return
        async with asyncio.TaskGroup() as group:
            if poster is not None:
                poster.retry_refused()
                group.create_task(poster.run(), name="fhir-post")
            if engine is not None:
                from region.findings.service import evaluate_every, to_engine, watch_status

                group.create_task(
                    watch_status(connect_status, to_engine(engine)), name="findings-status"
                )
                group.create_task(evaluate_every(engine), name="findings-evaluate")
            await receiver.run(connect)
            raise MqttError("connection ended")

    try:
        asyncio.run(serve())
    except* (MqttError, RegionStateError) as group:
        emit({"ok": False, "error": str(group.exceptions[0])}, as_json=False)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        receiver.close()
        if engine is not None:
            engine.close()


def _findings(
    local: Path, enrolments: str, out: Path | None, *, fhir_queue: bool
) -> FindingsEngine:
    """The findings engine in ``local`` (SQLite), reading the enrolment store ``enrolments``
    names (that file, another SQLite file, or the PostgreSQL state: its own connection)."""
    from region.findings.engine import FindingsEngine
    from region.findings.service import FindingsNdjson
    from region.findings.sqlite_facts import SqliteFactStore, SqlitePlanStore
    from region.findings.sqlite_findings import SqliteFindingStore

    on_change = None if out is None else FindingsNdjson(out)
    if Path(enrolments) == local:  # the enrolments are in this file
        # To the FHIR server too, through the state's queue (when it is this SQLite file).
        return FindingsEngine.sqlite(local, on_change=on_change, fhir_queue=fhir_queue)
    return FindingsEngine(
        SqlitePlanStore(local),
        SqliteFactStore(local),
        SqliteFindingStore(local),
        open_enrolments(enrolments),
        on_change=on_change,
    )


def _poster(state: str, fhir_url: str, smart: Path | None, name: str) -> FhirPoster:
    from region.smart_auth import SmartAuth, SmartClientError, load_smart_client

    try:
        auth = None if smart is None else SmartAuth(load_smart_client(smart), fhir_url)
        return FhirPoster(open_fhir_queue(state, name=f"{name}-poster"), fhir_url, auth=auth)
    except SmartClientError as exc:
        raise typer.BadParameter(str(exc), param_hint="--smart") from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fhir-url") from None
