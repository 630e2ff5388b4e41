"""The full demo (``narhub demo``): a compressed day in a virtual home, end to end.

The virtual rig (``narhub rig``: every device kind and a sensor board), a local TLS broker,
the hub (``narhub run``) and the region's receiver run as in :mod:`rig.home`. The hub is
enrolled (from the local midnight a day before the demo day, open-ended) to the pseudonym
:data:`DEMO_PATIENT`, as ``narhub region enrol`` would: the emulated CGM keeps a day of
records, and a hub that first reaches it late in the compressed day sets its session start
from that, so its first records are honestly dated up to a day before the hub saw them
(:data:`ENROLLED_DAYS_BEFORE`). While it runs, a live view
(rich ``Live``, only on a TTY) shows per device kind what was produced and what reached the
region as FHIR; at the end a summary says, per kind, produced, delivered and any difference
explained, and what the FHIR output holds (Observations with their subject, compound blood
pressures, Devices, coincident time stamps, readings held unattributed). With ``out``, the
ledger, the FHIR NDJSON and ``summary.json`` are left there.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.live import Live
from rich.table import Table

from protocols.fhir import PatientRef, is_measurement
from protocols.fhir.codes import (
    COINCIDENT_TIME_STAMP_EXTENSION,
    PHD_COMPOUND_NUMERIC,
    PHD_DEVICE,
    PHD_RTSA,
    PHG_DEVICE,
)
from protocols.fhir.devices import EUI64_SYSTEM
from region.enrolment import DEFAULT_PATIENT_SYSTEM
from region.findings.model import Kind
from rig.demo_worklist import DEMO_PLAN, DemoFindings, serve_worklist
from rig.home import HubOptions, VirtualHomeRig, eventually
from rig.ledger import LedgerEntry, Reconciliation, reconcile
from rig.other_recipient import recipients_summary
from rig.other_recipient import wait_delivered as wait_others

#: The demo home; ``{time_scale}`` makes its day last the demo's duration.
DEMO_SCENARIO = """\
name = "demo-day"
seed = 2026
time_scale = {time_scale}

[[devices]]
kind = "thermometer"
address = "C0:FF:EE:00:0D:01"
first_s = 1800
every_s = 14400
count = 5

[[devices]]
kind = "blood_pressure"
address = "C0:FF:EE:00:0D:02"
first_s = 3600
every_s = 28800
count = 3

[[devices]]
kind = "scale"
address = "C0:FF:EE:00:0D:03"
first_s = 5400
every_s = 43200
count = 2

[[devices]]
kind = "pulse_oximeter"
address = "C0:FF:EE:00:0D:04"
first_s = 900
every_s = 10800
count = 7

[[devices]]
kind = "glucose"
address = "C0:FF:EE:00:0D:05"
first_s = 2700
every_s = 21600
count = 4

[[devices]]
kind = "cgm"
address = "C0:FF:EE:00:0D:06"
every_s = 300
count = 288

[[devices]]
kind = "ghs"
address = "C0:FF:EE:00:0D:07"
first_s = 1200
every_s = 7200
count = 10

[[devices]]
kind = "enhanced_blood_pressure"
address = "C0:FF:EE:00:0D:08"
first_s = 25200
every_s = 43200
count = 2

[[devices]]
kind = "body_composition"
address = "C0:FF:EE:00:0D:09"
first_s = 27000
every_s = 43200
count = 1

[[boards]]
board_id = "sim-demo-01"
interval_ms = 1000
"""
DAY_S = 86_400.0
#: The hub is unplugged for two hours of the demo day (scenario seconds from midnight).
UNPLUG_AT_S, UNPLUG_FOR_S = 10 * 3600.0, 2 * 3600.0
#: The hub was lent the day before the demo day: a CGM's day of records (every five minutes,
#: offsets from its session start, CGM 1.0.2 §3.1) ends when the hub reads them, so its
#: first record can be a day older than the hub's first contact with the sensor.
ENROLLED_DAYS_BEFORE = 1
#: What the municipality holds consent for in the demo (the region: every category).
MUNICIPALITY_CONSENT = ("vital-signs", "activity")
#: The pseudonym the demo day's hub is lent to.
DEMO_PATIENT = PatientRef(DEFAULT_PATIENT_SYSTEM, "demo-day-0001")


@dataclass
class DemoSummary:
    """What the demo shows at the end (and writes as ``summary.json``)."""

    duration_s: float
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    exact: bool = False
    explanation: str = ""
    out: str | None = None
    #: What the FHIR output holds (:func:`fhir_shapes`), and readings held unattributed.
    fhir: dict[str, Any] = field(default_factory=dict)
    #: The findings of the day, per kind: opened and closed (docs/region.md, "Findings").
    findings: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Where the worklist was served while the demo ran.
    worklist: str | None = None
    #: What went to whom: per recipient, its consent and its readings per data category.
    recipients: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The absences explained (in flight on a board, lost in the power cut): not in the JSON.
    explained: list[LedgerEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON."""
        return {
            "ok": self.exact,
            "duration_s": self.duration_s,
            "kinds": self.kinds,
            "explanation": self.explanation,
            "fhir": self.fhir,
            "findings": self.findings,
            "worklist": self.worklist,
            "recipients": self.recipients,
            "out": self.out,
        }


def fhir_shapes(path: Path) -> dict[str, int]:
    """Counts of what an NDJSON output holds: Observations of readings (and how many name a
    patient as subject, are compound blood pressures or waveforms, reference a coincident time
    stamp), Devices (PhdDevice, PhgDevice, others; each once) and coincident time stamps."""
    shapes = dict.fromkeys(
        (
            "observations",
            "with_patient_subject",
            "compound_blood_pressure",
            "waveforms",
            "with_time_stamp",
            "phd_devices",
            "with_system_id",
            "gateway_devices",
            "other_devices",
            "coincident_time_stamps",
            "patients",
        ),
        0,
    )
    if not path.exists():
        return shapes
    devices: set[tuple[str, object]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            resource = json.loads(line)
        except json.JSONDecodeError:
            continue
        profiles = resource.get("meta", {}).get("profile", [])
        if resource.get("resourceType") == "Device":
            key = (
                "phd_devices"
                if PHD_DEVICE in profiles
                else "gateway_devices"
                if PHG_DEVICE in profiles
                else "other_devices"
            )
            # A Device comes again when its description changed: each is counted once.
            if (key, resource.get("id")) not in devices:
                devices.add((key, resource.get("id")))
                shapes[key] += 1
                shapes["with_system_id"] += key == "phd_devices" and any(
                    i.get("system") == EUI64_SYSTEM for i in resource.get("identifier", [])
                )
        elif resource.get("resourceType") == "Patient":
            shapes["patients"] += 1
        elif is_measurement(resource):
            shapes["observations"] += 1
            shapes["with_patient_subject"] += resource.get("subject", {}).get("type") == "Patient"
            shapes["compound_blood_pressure"] += PHD_COMPOUND_NUMERIC in profiles
            shapes["waveforms"] += PHD_RTSA in profiles
            shapes["with_time_stamp"] += any(
                e.get("url") == COINCIDENT_TIME_STAMP_EXTENSION
                for e in resource.get("extension", [])
            )
        elif resource.get("resourceType") == "Observation":  # a coincident time stamp
            shapes["coincident_time_stamps"] += 1
    return shapes


def _on_board(missing: list[LedgerEntry], unread: list[LedgerEntry]) -> list[LedgerEntry]:
    """The missing board readings explained by ``unread``, the ones the boards' flash still
    holds unacknowledged (the hub reads them when both run again). The reconciliation is a
    multiset match on (device, code, unit, value), so a missing entry is explained by any
    unread reading equal to it, each used once."""
    pool = Counter(_match_key(e) for e in unread)
    left = []
    for e in missing:
        if e.source == "board" and pool[_match_key(e)] > 0:
            pool[_match_key(e)] -= 1
            left.append(e)
    return left


#: A stored measurement a device gave up this long before the plug was pulled may not have
#: reached the hub's disk: the radio confirms an indication as it arrives (ATT Handle Value
#: Confirmation, Core 5.3 Vol 3 Part F 3.4.7.3), before the hub commits it (at once for a
#: clinical spot reading, gateway/outbox/worker.py), and the device then forgets it. The
#: window leaves room for a loaded machine.
POWER_CUT_WINDOW_MS = 5_000


def _in_power_cut(
    missing: list[LedgerEntry], confirmed: dict[str, list[int]], cuts_ms: list[int]
) -> list[LedgerEntry]:
    """The missing BLE readings explained by a power cut: each of a device's stored
    measurements whose indication the hub's radio confirmed within
    :data:`POWER_CUT_WINDOW_MS` before the plug was pulled explains one missing measurement of
    that device (its ledger entries, by ``seq``)."""
    budget: Counter[str] = Counter()
    for device, times in confirmed.items():
        budget[device] = sum(
            1 for t in times if any(cut - POWER_CUT_WINDOW_MS <= t <= cut for cut in cuts_ms)
        )
    measurements: dict[tuple[str, str], list[LedgerEntry]] = {}
    for e in missing:
        if e.source == "ble":
            measurements.setdefault((e.device, e.seq), []).append(e)
    out: list[LedgerEntry] = []
    for (device, _seq), entries in measurements.items():
        if budget[device] > 0:
            budget[device] -= 1
            out.extend(entries)
    return out


def _match_key(e: LedgerEntry) -> tuple[str, int, str, str]:
    return e.device, e.mdc, e.unit, e.value


def _summary(
    result: Reconciliation,
    produced: Counter[str],
    duration_s: float,
    ledger: list[LedgerEntry],
    on_boards: set[str],
    confirmed: dict[str, list[int]] | None = None,
    cuts_ms: list[int] | None = None,
) -> DemoSummary:
    """Per kind: everything produced (the final ledger, the home switched off), delivered,
    and every absence explained: a board reading the board's flash still holds unacknowledged
    (``on_boards``: the hub had not read and committed it when the home was switched off) is
    ``in_flight`` (the hub reads it when both run again); a BLE reading a device gave up
    just before the plug was pulled (``confirmed``, ``cuts_ms``: :func:`_in_power_cut`) is
    ``lost_in_power_cut``, named as such; any other absence is lost."""
    unread = [e for e in ledger if e.source == "board" and e.seq in on_boards]
    left = _on_board(result.missing, unread)
    lost = list(result.missing)
    for e in left:
        lost.remove(e)
    cut = _in_power_cut(lost, confirmed or {}, cuts_ms or [])
    for e in cut:
        lost.remove(e)
    exact = result.exact or (not lost and not result.duplicated and not result.unexpected)
    summary = DemoSummary(duration_s, exact=exact, explanation=result.explain())
    if exact and (left or cut):
        excepted = []
        if left:
            excepted.append(
                f"{len(left)} board readings taken as the home was switched off, still in "
                "the board's flash"
            )
        if cut:
            excepted.append(
                f"{len(cut)} readings a device gave up to the hub's radio just before its plug "
                "was pulled, which the device cannot send again"
            )
        summary.explanation = "every reading arrived exactly once, except " + "; ".join(excepted)
    summary.explained = [*left, *cut]
    for kind in sorted(set(produced) | set(result.delivered)):
        summary.kinds[kind] = {
            "produced": produced[kind],
            "delivered": result.delivered[kind],
            "missing": sum(1 for e in lost if e.kind == kind),
            "in_flight": sum(1 for e in left if e.kind == kind),
            "lost_in_power_cut": sum(1 for e in cut if e.kind == kind),
        }
    return summary


async def _unplug_hub(home: VirtualHomeRig, started_ms: int, time_scale: float) -> list[int]:
    """Pull the hub's plug at 10:00 of the demo day and put it back at 12:00; return when
    (wall ms) the plug was pulled."""
    cuts = []
    for at_s, action in ((UNPLUG_AT_S, "kill"), (UNPLUG_AT_S + UNPLUG_FOR_S, "start")):
        delay = started_ms / 1000 + at_s / time_scale - time.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the day's schedule is the point of sleeping
        if action == "kill":
            cuts.append(time.time_ns() // 1_000_000)
            home.kill_hub()
        else:
            await home.start_hub()
    return cuts


def _table(home: VirtualHomeRig, title: str) -> Table:
    ledger = home.ledger()
    result = reconcile(ledger, home.fhir(), settled=ledger)
    table = Table(title=title)
    for column in ("device kind", "produced", "at the region", "in flight"):
        table.add_column(column, justify="right" if column != "device kind" else "left")
    for kind in sorted(set(result.produced) | set(result.delivered)):
        produced, delivered = result.produced[kind], result.delivered[kind]
        table.add_row(kind, str(produced), str(delivered), str(max(0, produced - delivered)))
    hub = "running" if home.hub.running else "stopped"
    router = home.router
    uplink = "offline" if router is None or not router.is_online else "online"
    table.caption = f"hub {hub} · home internet {uplink} · broker TLS 1.3 :{home.broker_port}"
    return table


async def run_showcase(
    duration_s: float,
    workdir: Path,
    *,
    live: bool,
    console: Console,
    settle_s: float = 30.0,
) -> DemoSummary:
    """Play a day in ``duration_s`` seconds and return the per-kind summary."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = workdir / "demo-scenario.toml"
    time_scale = DAY_S / max(duration_s, 5.0)
    scenario.write_text(DEMO_SCENARIO.format(time_scale=time_scale))
    # The day of the care plan's zone (the demo's windows are Stockholm's local times).
    midnight = dt.datetime.now(tz=ZoneInfo(DEMO_PLAN["zone"])).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    midnight_ms = round(midnight.timestamp() * 1000)
    # Wall-clock arithmetic on an aware datetime: the day before's local 00:00, DST or not.
    enrolled_from = midnight - dt.timedelta(days=ENROLLED_DAYS_BEFORE)
    home = VirtualHomeRig(
        workdir / "home",
        scenario,
        patient=DEMO_PATIENT,
        enrolled_from_ms=round(enrolled_from.timestamp() * 1000),
        hub_options=HubOptions(municipality=MUNICIPALITY_CONSENT),
    )
    findings = DemoFindings(home.region_state, DEMO_PATIENT, midnight_ms, time_scale)
    home.on_ingested = findings.filed
    worklist_url = None
    async with home:
        await eventually(
            lambda: home.rig_facts().get("started_ms") is not None,
            timeout_s=30,
            what="the demo day started",
        )
        started = int(home.rig_facts()["started_ms"])
        engine = findings.start(started)
        watcher = asyncio.create_task(findings.watch(home), name="demo-findings")
        unplug = asyncio.create_task(_unplug_hub(home, started, time_scale), name="demo-unplug")
        async with serve_worklist(engine) as worklist_url:
            (console if live else Console(stderr=True)).print(
                f"worklist: {worklist_url} (sign in with any e-mail address)"
            )
            title = "narhub demo: a day in the home"
            wait = asyncio.ensure_future(home.wait_rig_done(timeout_s=duration_s * 2 + 30))
            if live:
                with Live(_table(home, title), console=console, refresh_per_second=4) as view:
                    while not wait.done():
                        await asyncio.wait({wait}, timeout=0.5)
                        view.update(_table(home, title))
                    await wait
                    await home.wait_delivered(settle_s, check=False)
                    view.update(_table(home, title))
            else:
                await wait
                await home.wait_delivered(settle_s, check=False)
            cuts_ms = await unplug
            # The final account: the home is switched off first (the rig reads the boards'
            # last readings into the ledger), then the hub delivers everything it holds;
            # only then is it stopped. Every reading the home produced must be there, or
            # its absence explained.
            await home.stop_rig()
            await home.wait_delivered(settle_s, check=False)
            await wait_others(list(home.others.values()), home.ledger(), settle_s)
            await home.stop_hub()
            engine.evaluate()
            day = engine.findings.findings(limit=10_000)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        findings.close()
        for source, name in (
            (home.fhir_path, "observations.ndjson"),
            (home.ledger_path, "ledger.jsonl"),
        ):
            if source.exists():
                shutil.copy(source, workdir / name)
            else:  # nothing reached the region (or nothing was produced): an empty file
                (workdir / name).write_text("")
        for other in home.others.values():  # each other recipient's own FHIR output
            if other.fhir_path.exists():
                shutil.copy(other.fhir_path, workdir / f"{other.name}-observations.ndjson")
        ledger = home.ledger()
        result = reconcile(ledger, home.fhir(), settled=ledger)
        produced = Counter(e.kind for e in ledger)
        held = home.unattributed()
        on_boards = home.on_boards()
        confirmed = {
            address: list(stats.get("stored_confirmed_ms", []))
            for address, stats in home.rig_facts().get("device_stats", {}).items()
        }
        region_fhir, others = home.fhir(), list(home.others.values())
    summary = _summary(result, produced, duration_s, ledger, on_boards, confirmed, cuts_ms)
    # What each recipient should have: the ledger less the absences explained above.
    explained = Counter(summary.explained)
    expected = []
    for entry in ledger:
        if explained[entry] > 0:
            explained[entry] -= 1
        else:
            expected.append(entry)
    summary.recipients = recipients_summary(region_fhir, others, expected)
    summary.worklist = worklist_url
    for kind in Kind:
        of_kind = [f for f in day if f.kind is kind]
        if of_kind:
            summary.findings[kind.value] = {
                "opened": len(of_kind),
                "closed": sum(1 for f in of_kind if f.closed_ms is not None),
            }
    summary.fhir = {
        **fhir_shapes(workdir / "observations.ndjson"),
        "unattributed": held,
        "patient": {"system": DEMO_PATIENT.system, "value": DEMO_PATIENT.value},
        "enrolled_from": enrolled_from.isoformat(),
    }
    if held:
        summary.explanation += (
            f"; {held} readings held unattributed (taken before the hub's enrolment)"
        )
    summary.out = str(workdir)
    (workdir / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    return summary


def _plain_table(title: str, columns: tuple[str, ...]) -> Table:
    """A table with the given columns, each left-aligned."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


def print_summary(console: Console, summary: DemoSummary) -> None:
    """The end-of-demo table."""
    table = _plain_table(
        "produced in the home vs. FHIR Observations at the region",
        ("device kind", "produced", "delivered", "difference"),
    )
    for kind, row in summary.kinds.items():
        reasons = []
        if row["missing"]:
            reasons.append(f"{row['missing']} lost")
        if row["in_flight"]:
            reasons.append(
                f"{row['in_flight']} taken as the home was switched off, in the board's flash"
            )
        why = "; ".join(reasons) or "none"
        table.add_row(kind, str(row["produced"]), str(row["delivered"]), why)
    console.print(table)
    shapes = summary.fhir
    if shapes:
        fhir = Table(title=f"FHIR at the region, filed to patient {shapes['patient']['value']}")
        fhir.add_column("resource")
        fhir.add_column("count", justify="right")
        for name, label in (
            ("observations", "Observations of readings"),
            ("with_patient_subject", "  with the patient as subject"),
            ("compound_blood_pressure", "  blood pressure, one compound Observation each"),
            ("waveforms", "  sample arrays (GHS), valueSampledData"),
            ("with_time_stamp", "  referencing a coincident time stamp"),
            ("coincident_time_stamps", "Coincident time stamps (device clock vs hub clock)"),
            ("phd_devices", "PhdDevice (the home's devices)"),
            ("with_system_id", "  with their DIS System ID (EUI-64) as identifier"),
            ("gateway_devices", "PhgDevice (the hub)"),
            ("other_devices", "Other Devices (sensor boards)"),
            ("patients", "Patient (the pseudonym only)"),
            ("unattributed", "Readings held unattributed"),
        ):
            fhir.add_row(label, str(shapes[name]))
        console.print(fhir)
    if summary.findings:
        found = _plain_table(
            "findings of the day (the worklist's)", ("finding", "opened", "closed")
        )
        for kind, row in summary.findings.items():
            found.add_row(kind, str(row["opened"]), str(row["closed"]))
        console.print(found)
    if summary.recipients:
        whom = _plain_table(
            "what went to whom (FHIR readings per data category)",
            ("recipient", "consent", "received"),
        )
        for name, entry in summary.recipients.items():
            received = ", ".join(f"{c} {n}" for c, n in entry["received"].items()) or "nothing"
            if entry.get("exact") is False:
                received += " (not exactly what its consent covers: see summary.json)"
            whom.add_row(name, str(entry["consent"]), received)
        console.print(whom)
    console.print(summary.explanation)
    if summary.out:
        console.print(f"ledger, FHIR NDJSON and summary.json in {summary.out}")


def run_demo_day(
    duration_s: float,
    out: Path | None,
    *,
    as_json: bool,
    emit_json: Callable[[dict[str, Any]], None],
) -> DemoSummary:
    """``narhub demo --duration S [--out DIR] [--json]``."""
    console = Console()
    workdir = out or Path(tempfile.mkdtemp(prefix="narhub-demo-"))
    live = console.is_terminal and not as_json
    if not as_json:
        console.rule("narhub demo: devices and a sensor board -> hub -> TLS broker -> FHIR")
    summary = asyncio.run(run_showcase(duration_s, workdir, live=live, console=console))
    if as_json:
        emit_json(summary.to_json())
    else:
        print_summary(console, summary)
    return summary
