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


def register(app: typer.Typer) -> None:
    """Mount ``plan`` and ``findings`` on ``narhub region``."""
    app.add_typer(plan_app, name="plan")
    app.command("findings")(findings)
