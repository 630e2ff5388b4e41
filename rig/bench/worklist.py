"""``narhub bench worklist``: findings and the worklist page at 10,000 enrolled patients.

A region state database is filled with ``patients`` patients, each on its own hub with a
care plan (blood pressure by 10:00, weight by 20:00, a sensor board always on) and a day of
facts: most measured and in touch; 10 % without this morning's blood pressure, 5 % of the
hubs silent for an hour, 3 % with an alert reading, 2 % with a low battery. The set-up writes
the tables directly (one transaction); what is timed goes through the stores and the engine
as the service runs them:

* ``evaluate_all_s``: judging every hub at once the first time (opening the findings), and
  ``evaluate_again_s`` when nothing changed (the periodic judgement of the service);
* ``ingest_one_ms``: a batch of one hub recorded and that hub judged (the receiver's hook);
* ``worklist_ms``: GET / (the first page of 100, sorted by what needs attention) over HTTP
  on loopback through uvicorn, p50 and p95 of ``requests``; ``patient_ms`` the same for a
  patient's page (plots of 7 and 30 days included);
* ``peak_rss_kib``: the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from protocols.fhir.identity import PatientRef
from region.enrolment import DEFAULT_PATIENT_SYSTEM
from region.findings.engine import FindingsEngine
from region.findings.facts import IngestedReading, Ingestion, patient_key
from region.findings.model import Kind
from region.findings.sqlite_facts import BUCKET_MS, connect, plan_json
from region.worklist.app import create_app
from region.worklist.auth import AuthConfig, networks
from region.worklist.serve import running
from rig.bench.procstat import proc_status_kib

ZONE = ZoneInfo("Europe/Stockholm")
PLAN: dict[str, object] = {
    "zone": "Europe/Stockholm",
    "expect": [
        {"measure": "blood-pressure", "from": "05:00", "by": "10:00"},
        {"measure": "body-weight", "from": "05:00", "by": "20:00"},
        {"measure": "sensor-board", "max_gap": "PT30M"},
    ],
}
BOARD_CODE = 2 * 65536 + 0xF001


def _now_ms() -> int:
    today = dt.datetime.now(tz=ZONE).date()
    noon = dt.datetime(today.year, today.month, today.day, 12, tzinfo=ZONE)
    return round(noon.timestamp() * 1000)


def _fill(state: Path, patients: int, now_ms: int) -> None:
    """Enrolments, plans and a day of facts, written directly (the set-up is not timed)."""
    engine = FindingsEngine.sqlite(state)  # creates every table
    engine.close()
    db = connect(state)
    day_start = now_ms - 12 * 3_600_000
    plan = plan_json(PLAN)
    rows: dict[str, list[tuple[Any, ...]]] = {k: [] for k in ("e", "p", "h", "b", "d", "l", "s")}
    for i in range(patients):
        hub = f"hub-{i:05d}"
        who = patient_key(PatientRef(DEFAULT_PATIENT_SYSTEM, f"pat-{i:05d}"))
        rows["e"].append((hub, DEFAULT_PATIENT_SYSTEM, f"pat-{i:05d}", day_start - 86_400_000))
        rows["p"].append((who, plan, day_start - 86_400_000))
        silent = i % 20 == 7
        contact = now_ms - (3_600_000 if silent else 60_000)
        rows["h"].append((hub, contact, "online", f"online:{i}:{i}", contact))
        rows["b"].append((hub, 0, "blood_pressure", 12 if i % 50 == 3 else 80, day_start))
        rows["d"].append((hub, "sim-board", 1, contact))
        rows["d"].append((hub, "C0:FF:EE:00:00:02", 0, day_start + 8 * 3_600_000))
        measured_bp = i % 10 != 5
        alert = i % 33 == 4
        for mdc, value, hour in ((150021, 125, 8), (150022, 80, 8), (188736, 80.5, 7)):
            if mdc != 188736 and not measured_bp:
                continue
            for day in range(30):
                t = day_start + hour * 3_600_000 - day * 86_400_000
                bucket = t - t % BUCKET_MS
                v = value + (day % 7)
                rows["s"].append((who, mdc, bucket, 1, v, v, v, 0))
            t = day_start + hour * 3_600_000
            alerted = alert and mdc == 150021
            alert_cols = (f"k{i}", t, t + 60_000) if alerted else (None, None, None)
            value_text = "182" if alerted else str(value)
            rows["l"].append(
                (who, mdc, t, t + 60_000, value_text, "u", "dev", int(alerted), *alert_cols)
            )
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO enrolments (hub, patient_system, patient_value, start_ms) "
            "VALUES (?, ?, ?, ?)",
            rows["e"],
        )
        db.executemany("INSERT INTO care_plans VALUES (?, ?, ?)", rows["p"])
        db.executemany(
            "INSERT INTO fact_hubs (hub, last_contact_ms, state, status_identity, "
            "status_received_ms) VALUES (?, ?, ?, ?, ?)",
            rows["h"],
        )
        db.executemany("INSERT INTO fact_batteries VALUES (?, ?, ?, ?, ?)", rows["b"])
        db.executemany(
            "INSERT INTO fact_devices (hub, device, board, last_received_ms) VALUES (?, ?, ?, ?)",
            rows["d"],
        )
        db.executemany(
            "INSERT INTO fact_latest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows["l"]
        )
        db.executemany("INSERT INTO fact_series VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows["s"])
    db.close()


def _timed_get(url: str) -> float:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"{url} is not the bench's loopback server")
    request = urllib.request.Request(url, headers={"X-Forwarded-Email": "bench@example.org"})  # noqa: S310
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - loopback
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status}")
    return (time.perf_counter() - start) * 1000


async def _pages(engine: FindingsEngine, requests: int) -> dict[str, dict[str, float]]:
    app = create_app(engine, AuthConfig("proxy", networks(["127.0.0.1"])), evaluate_every_s=None)
    out = {}
    async with running(app, "127.0.0.1", 0) as url:
        for name, path in (("worklist_ms", "/"), ("patient_ms", "/patient/pat-00005")):
            times = [await asyncio.to_thread(_timed_get, url + path) for _ in range(requests)]
            times.sort()
            out[name] = {
                "p50": round(statistics.median(times), 1),
                "p95": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
                "max": round(times[-1], 1),
            }
    return out


def run(duration_s: float = 1.0, patients: int = 10_000, requests: int = 20) -> dict[str, Any]:
    """Fill, judge, ingest, serve; the figures as JSON."""
    del duration_s  # sized by ``patients``, not by time
    with tempfile.TemporaryDirectory(prefix="narhub-bench-worklist-") as tmp:
        state = Path(tmp) / "state.db"
        now = _now_ms()
        _fill(state, patients, now)
        engine = FindingsEngine.sqlite(state, clock_ms=lambda: now)
        start = time.perf_counter()
        opened = engine.evaluate(now)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        again = engine.evaluate(now + 1000)
        again_s = time.perf_counter() - start
        kinds: dict[str, int] = {}
        for f in opened:
            kinds[f.kind.value] = kinds.get(f.kind.value, 0) + 1
        patient = PatientRef(DEFAULT_PATIENT_SYSTEM, "pat-00005")
        reading = IngestedReading(
            patient,
            "C0:FF:EE:00:00:02",
            150021,
            "mm[Hg]",
            now - 1000,
            Decimal(131),
            frozenset(),
            "bench",
        )
        start = time.perf_counter()
        closed = engine.ingested(Ingestion("hub-00005", now + 2000, (reading,)))
        ingest_ms = (time.perf_counter() - start) * 1000
        pages = asyncio.run(_pages(engine, requests))
        engine.close()
        size = state.stat().st_size
    return {
        "patients": patients,
        "findings_opened": len(opened),
        "findings_by_kind": kinds,
        "evaluate_all_s": round(first_s, 3),
        "evaluate_again_s": round(again_s, 3),
        "evaluate_again_changed": len(again),
        "ingest_one_ms": round(ingest_ms, 2),
        "ingest_closed_missed": sum(1 for f in closed if f.kind is Kind.MISSED),
        **pages,
        "state_db_bytes": size,
        "peak_rss_kib": proc_status_kib(os.getpid())["VmHWM"],
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))  # noqa: T201
