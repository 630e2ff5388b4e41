"""Builders for the findings tests: a region state database with an enrolled hub and a plan,
and readings and statuses as the receiver and the status watcher would record them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from protocols.fhir.identity import PatientRef
from region.enrolment import DEFAULT_PATIENT_SYSTEM
from region.enrolment_sqlite import enrol_hub
from region.findings.engine import FindingsEngine
from region.findings.facts import (
    DeviceStatus,
    HubStatus,
    IngestedReading,
    Ingestion,
    StatusSeen,
    patient_key,
)
from region.findings.plan import parse_plan
from region.findings.sqlite_facts import plan_json

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HUB = "hub-0001"
PATIENT = PatientRef(DEFAULT_PATIENT_SYSTEM, "pat-0001")
PKEY = patient_key(PATIENT)
CUFF = "C0:FF:EE:00:00:02"
BOARD = "sim-0001"
PLAN = {
    "zone": "Europe/Stockholm",
    "expect": [
        {"measure": "blood-pressure", "from": "05:00", "by": "10:00"},
        {"measure": "body-weight", "from": "00:00", "by": "24:00"},
        {"measure": "spo2", "from": "22:00", "by": "07:00"},
        {"measure": "sensor-board", "max_gap": "PT15M"},
    ],
    "limits": {"hub_silent_after": "PT30M", "battery_low_percent": 20},
}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    """Epoch ms of a Stockholm local time on day ``day`` of March 2026."""
    moment = dt.datetime(2026, 3, day, hour, minute, second, tzinfo=STOCKHOLM)
    return round(moment.timestamp() * 1000)


def engine(
    state: Path,
    *,
    enrolled_ms: int,
    plan: dict[str, object] | None = None,
    fhir_queue: bool = False,
    findings_db: str | None = None,
) -> FindingsEngine:
    """A state database with HUB lent to PATIENT from ``enrolled_ms`` under ``plan``; the
    findings in ``findings_db`` (a PostgreSQL URL) when given."""
    enrol_hub(state, HUB, PATIENT, start_ms=enrolled_ms)
    eng = FindingsEngine.sqlite(
        state, clock_ms=lambda: enrolled_ms, fhir_queue=fhir_queue, findings_db=findings_db
    )
    parse_plan(plan or PLAN)
    eng.plans.set_plan(PKEY, plan_json(plan or PLAN), enrolled_ms)
    return eng


def reading(
    mdc: int,
    t_ms: int,
    value: str,
    *,
    device: str = CUFF,
    flags: frozenset[str] = frozenset(),
    unit: str = "mm[Hg]",
    patient: PatientRef | None = PATIENT,
) -> IngestedReading:
    """A filed reading (its key from its identity, as the receiver makes it)."""
    return IngestedReading(
        patient, device, mdc, unit, t_ms, Decimal(value), flags, f"{device}/{mdc}/{t_ms}/{value}"
    )


def ingest(
    eng: FindingsEngine, received_ms: int, *readings: IngestedReading, hub: str = HUB
) -> None:
    """The receiver filed a batch at ``received_ms``."""
    eng.ingested(Ingestion(hub, received_ms, tuple(readings)))


def status(
    eng: FindingsEngine,
    received_ms: int,
    seq: int,
    *,
    battery: int | None = 80,
    state: str = "online",
    retained: bool = False,
) -> None:
    """A status document arrived (a live one unless ``retained``)."""
    doc = HubStatus(
        HUB,
        state,
        received_ms if state == "online" else None,
        seq if state == "online" else None,
        (DeviceStatus(0, "blood_pressure", False, battery),),
    )
    eng.status(StatusSeen(doc, received_ms, retained))


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def alert_runs(readings: list[tuple[int, Decimal]], above: Decimal) -> list[tuple[int, int | None]]:
    """Runs of readings (time, value; in time order) above ``above``: when the first of each
    run was taken, and when the next reading that is not above was (``None``: none yet)."""
    runs: list[tuple[int, int | None]] = []
    for i, (taken, value) in enumerate(readings):
        if value > above and (i == 0 or readings[i - 1][1] <= above):
            after = next((t for t, v in readings[i:] if v <= above), None)
            runs.append((taken, after))
    return runs
