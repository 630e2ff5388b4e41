"""``narhub region plan set|show`` and ``narhub region findings``: care plans and findings.

Mounted on ``narhub region`` by :mod:`region.cli`. The store is the region's state database
(``--state``, the one ``narhub region ingest`` keeps).
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from common.cli import EXIT_FAILED, JsonFlag, emit
from region.enrolment import DEFAULT_PATIENT_SYSTEM, EnrolmentError, format_ms, patient
from region.findings.engine import FindingsEngine
from region.findings.facts import patient_key
from region.findings.fhir import describe
from region.findings.plan import PlanError, parse_plan
from region.findings.sqlite_facts import SqlitePlanStore, plan_json

State = Annotated[
    Path, typer.Option("--state", help="The region's state database (as `ingest --state`).")
]
PatientOption = Annotated[str, typer.Option("--patient", help="The patient's pseudonym.")]
SystemOption = Annotated[str, typer.Option("--patient-system", help="The pseudonym's system URI.")]

plan_app = typer.Typer(help="Care plans: what the care team expects each patient to measure.")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read(file: Path) -> object:
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".toml":
        return tomllib.loads(text)
    return json.loads(text)


@plan_app.command("set")
def plan_set(
    state: State,
    patient_value: PatientOption,
    file: Annotated[
        Path, typer.Option("--file", help="The plan, JSON or TOML (docs/region.md, 'Care plans').")
    ],
    patient_system: SystemOption = DEFAULT_PATIENT_SYSTEM,
    as_json: JsonFlag = False,
) -> None:
    """Set (replace) a patient's care plan; it is judged from now on."""
    try:
        who = patient(patient_system, patient_value)
        plan = parse_plan(_read(file))
    except (PlanError, EnrolmentError) as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        emit({"ok": False, "error": f"cannot read {file}: {exc}"}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    now = _now_ms()
    store = SqlitePlanStore(state)
    try:
        store.set_plan(patient_key(who), plan_json(plan.to_json()), now)
    finally:
        store.close()
    emit(
        {"ok": True, "patient": who.value, "since": format_ms(now), "plan": plan.to_json()}, as_json
    )


@plan_app.command("show")
def plan_show(
    state: State,
    patient_value: PatientOption,
    patient_system: SystemOption = DEFAULT_PATIENT_SYSTEM,
    as_json: JsonFlag = False,
) -> None:
    """Show a patient's care plan (exit code 1 when there is none)."""
    store = SqlitePlanStore(state)
    try:
        record = store.plan(patient_key(patient(patient_system, patient_value)))
    except EnrolmentError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        store.close()
    if record is None:
        emit({"ok": False, "error": f"patient {patient_value} has no care plan"}, as_json)
        raise typer.Exit(EXIT_FAILED)
    emit(
        {
            "ok": True,
            "patient": patient_value,
            "since": format_ms(record.since_ms),
            "plan": record.plan.to_json(),
        },
        as_json,
    )


def findings(
    state: State,
    open_only: Annotated[bool, typer.Option("--open", help="Only open findings.")] = False,
    evaluate: Annotated[
        bool, typer.Option(help="Judge every hub now first (as the service does periodically).")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """List findings: kind, hub, patient pseudonym, opened, closed, acknowledged (no values)."""
    engine = FindingsEngine.sqlite(state)
    try:
        if evaluate:
            engine.evaluate()
        found = engine.findings.open_findings() if open_only else engine.findings.findings()
    finally:
        engine.close()
    rows: list[dict[str, Any]] = [
        {
            "id": f.id,
            "kind": f.kind.value,
            "hub": f.hub,
            "patient": None if f.patient is None else f.patient.rpartition("|")[2],
            "device": f.device,
            "opened": format_ms(f.opened_ms),
            "closed": None if f.closed_ms is None else format_ms(f.closed_ms),
            "acknowledged_by": f.ack_by,
            "what": describe(f),
        }
        for f in sorted(found, key=lambda f: (f.opened_ms, f.id))
    ]
    emit({"ok": True, "findings": rows}, as_json)


def worklist(
    state: State,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve on (behind the login proxy).")
    ] = "127.0.0.1:8080",
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or network of the reverse proxy whose user header is trusted "
            "(repeat). Default: 127.0.0.1 and ::1.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="HTTPS certificate: client-certificate login instead.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="HTTPS key.")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="CA that issues the users' client certificates.")
    ] = None,
    evaluate_every_s: Annotated[
        float, typer.Option("--evaluate-every", help="Judge every hub this often (seconds).")
    ] = 30.0,
) -> None:
    """Serve the care team's worklist (docs/worklist.md): an OIDC login at a reverse proxy
    passes the user in a header from --trusted-proxy, or --tls-cert/--tls-key/--client-ca
    require a client certificate whose CN is the user."""
    try:
        from region.worklist.app import create_app
        from region.worklist.auth import AuthConfig, networks
        from region.worklist.serve import ServerTls, serve
    except ImportError as exc:
        emit({"ok": False, "error": f"{exc}: install narhub[region]"}, as_json=False)
        raise typer.Exit(EXIT_FAILED) from None
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        raise typer.BadParameter("give HOST:PORT", param_hint="--listen")
    tls_files = (tls_cert, tls_key, client_ca)
    if any(f is not None for f in tls_files) and not all(f is not None for f in tls_files):
        raise typer.BadParameter("give all three of --tls-cert, --tls-key and --client-ca")
    tls = None
    if tls_cert is not None and tls_key is not None and client_ca is not None:
        tls = ServerTls(tls_cert, tls_key, client_ca)
        auth = AuthConfig("client-cert")
    else:
        try:
            proxies = networks(trusted_proxy or ["127.0.0.1", "::1"])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--trusted-proxy") from None
        auth = AuthConfig("proxy", proxies)
    engine = FindingsEngine.sqlite(state)
    try:
        serve(
            create_app(engine, auth, evaluate_every_s=evaluate_every_s),
            host.strip("[]"),
            int(port_text),
            tls,
        )
    finally:
        engine.close()


def register(app: typer.Typer) -> None:
    """Mount ``plan``, ``findings`` and ``worklist`` on ``narhub region``."""
    app.add_typer(plan_app, name="plan")
    app.command("findings")(findings)
    app.command("worklist")(worklist)
