"""What the worklist's pages show, assembled from the findings' stores (no HTML here).

:func:`worklist` sorts patients by what needs attention: open findings nobody acknowledged
first (an alert reading before a missed measurement before a device matter, then the
oldest), then open ones acknowledged, then the rest; hubs whose findings name no patient
(readings held unattributed on a hub nobody is enrolled on) are listed apart.
:func:`patient_page` gathers one patient's findings with their history, latest readings,
plots and the hub's and devices' state. Times are shown in the patient's plan zone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from region.enrolment import Enrolment
from region.findings.engine import FindingsEngine
from region.findings.facts import HubFacts, patient_key, patient_of
from region.findings.measures import MEASURES, is_board_code, measure_of
from region.findings.model import RANK, Finding, FindingEvent, Kind
from region.worklist.svg import Series, plot

ZONE = "Europe/Stockholm"
PAGE_SIZE = 100
_DAY_MS = 86_400_000


def when(t_ms: int | None, zone: str = ZONE) -> str:
    """A time as the page shows it (local, to the minute)."""
    if t_ms is None:
        return ""
    return dt.datetime.fromtimestamp(t_ms / 1000, tz=ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class FindingView:
    """A finding as a page shows it."""

    finding: Finding
    label_key: str
    what: str
    opened: str
    closed: str
    acknowledged: str

    @property
    def id(self) -> int:
        """The finding's id."""
        return self.finding.id


def describe(finding: Finding, words: Mapping[str, str], zone: str) -> str:
    """A finding's details in the page's language (no reading values)."""
    d = finding.detail
    kind = finding.kind
    if kind is Kind.MISSED:
        measure = words.get(f"measure.{d.get('measure')}", str(d.get("measure")))
        return f"{measure}, {words['by']} {when(d.get('by_ms'), zone)[11:]} ({d.get('windows', 1)})"
    if kind is Kind.ALERT:
        measure = words.get(f"measure.{d.get('measure')}", f"MDC {d.get('mdc_code')}")
        return f"{measure}, {words['measured'].lower()} {when(d.get('taken_ms'), zone)}"
    if kind is Kind.HUB_SILENT:
        last = when(d.get("last_contact_ms"), zone) or words["never"]
        return f"{words['hub']} {finding.hub}, {words['last_contact']} {last}"
    if kind is Kind.BATTERY_LOW:
        return f"{d.get('kind')} ({words['device']} {d.get('slot')}): {d.get('percent')} %"
    if kind is Kind.DEVICE_UNSEEN:
        last = when(d.get("last_received_ms"), zone) or words["never"]
        return f"{finding.device}, {words['last_reading_arrived']} {last}"
    if kind is Kind.CLOCK_OFF:
        return f"{finding.device}: {d.get('offset_s')} s"
    return f"{words['hub']} {finding.hub}: {d.get('count')}"


def view(finding: Finding, words: Mapping[str, str], zone: str) -> FindingView:
    """A finding for a page."""
    ack = ""
    if finding.ack_by is not None:
        ack = f"{finding.ack_by}, {when(finding.ack_ms, zone)}"
    return FindingView(
        finding,
        f"kind.{finding.kind.value}",
        describe(finding, words, zone),
        when(finding.opened_ms, zone),
        when(finding.closed_ms, zone),
        ack,
    )


@dataclass
class Row:
    """A patient on the worklist."""

    value: str
    system: str
    hub: str
    hub_state: str
    last_contact: str
    findings: list[FindingView] = field(default_factory=list)
    order: tuple[int, int, int, str] = (3, 9, 0, "")


def _order(value: str, findings: Sequence[Finding]) -> tuple[int, int, int, str]:
    unacked = [f for f in findings if f.ack_by is None]
    group = unacked or list(findings)
    if not group:
        return (2, 9, 0, value)
    return (
        0 if unacked else 1,
        min(RANK[f.kind] for f in group),
        min(f.opened_ms for f in group),
        value,
    )


def _hub_state(facts: HubFacts | None, words: Mapping[str, str], zone: str) -> tuple[str, str]:
    if facts is None:
        return words["unknown"], words["never"]
    state = words.get(facts.state or "unknown", words["unknown"])
    return state, when(facts.last_contact_ms, zone) or words["never"]


@dataclass
class Worklist:
    """The worklist page: one page of rows, how many in all, and hubs without a patient."""

    rows: list[Row]
    total: int
    page: int
    pages: int
    hubs: list[FindingView]


def worklist(
    engine: FindingsEngine, words: Mapping[str, str], now_ms: int, page: int = 1
) -> Worklist:
    """Patients enrolled now or with open findings, sorted by what needs attention."""
    open_findings = engine.findings.open_findings()
    by_patient: dict[str, list[Finding]] = defaultdict(list)
    without: list[Finding] = []
    for f in open_findings:
        if f.patient is None:
            without.append(f)
        else:
            by_patient[f.patient].append(f)
    hubs_of: dict[str, str] = {}
    for e in engine.enrolments.enrolments():
        if e.covers(now_ms):
            hubs_of.setdefault(patient_key(e.patient), e.hub)
    for key, found in by_patient.items():
        hubs_of.setdefault(key, found[0].hub)
    ordered = sorted(hubs_of, key=lambda k: _order(patient_of(k).value, by_patient.get(k, [])))
    pages = max(1, -(-len(ordered) // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = ordered[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    facts = engine.facts.hubs({hubs_of[k] for k in shown})
    rows = []
    for key in shown:
        who = patient_of(key)
        hub = hubs_of[key]
        state, contact = _hub_state(facts.get(hub), words, ZONE)
        found = sorted(
            by_patient.get(key, []), key=lambda f: (f.ack_by is not None, RANK[f.kind], f.opened_ms)
        )
        rows.append(
            Row(who.value, who.system, hub, state, contact, [view(f, words, ZONE) for f in found])
        )
    hub_views = [view(f, words, ZONE) for f in sorted(without, key=lambda f: f.opened_ms)]
    return Worklist(rows, len(ordered), page, pages, hub_views)


@dataclass
class Plot:
    """A vital sign's plots over 7 and 30 days."""

    measure: str
    label_key: str
    svg_7: str
    svg_30: str


@dataclass
class PatientPage:
    """Everything on a patient's page."""

    value: str
    system: str
    zone: str
    enrolments: list[Enrolment]
    plan: dict[str, Any] | None
    open: list[FindingView]
    closed: list[FindingView]
    history: dict[int, list[tuple[str, FindingEvent]]]
    latest: list[dict[str, Any]]
    plots: list[Plot]
    hubs: list[dict[str, Any]]


def _plots(
    engine: FindingsEngine,
    key: str,
    words: Mapping[str, str],
    zone: str,
    now_ms: int,
    codes: set[int],
) -> list[Plot]:
    out = []
    for measure in MEASURES.values():
        lines = [line for line in measure.lines if line.mdc_code in codes]
        if not lines:
            continue
        svgs = []
        for days, bucket in ((7, 3_600_000), (30, 6 * 3_600_000)):
            start = now_ms - days * _DAY_MS
            series = [
                Series(
                    words.get(f"line.{line.label}", line.label),
                    engine.facts.series(key, line.mdc_code, start, bucket),
                )
                for line in lines
            ]
            svgs.append(
                plot(
                    series,
                    from_ms=start,
                    to_ms=now_ms,
                    zone=zone,
                    title=f"{words[f'measure.{measure.name}']}, {words[f'days_{days}']}",
                    unit=measure.unit,
                    empty_text=words["no_readings"],
                    describe=words["plot_desc"],
                )
            )
        out.append(Plot(measure.name, f"measure.{measure.name}", svgs[0], svgs[1]))
    return out


def patient_page(
    engine: FindingsEngine, system: str, value: str, words: Mapping[str, str], now_ms: int
) -> PatientPage | None:
    """A patient's page, or None when the region knows nothing of the patient."""
    key = f"{system}|{value}"
    enrolments = [e for e in engine.enrolments.enrolments() if patient_key(e.patient) == key]
    record = engine.plans.plan(key)
    found = engine.findings.findings(patient=key, limit=200)
    latest = engine.facts.latest_readings(key)
    if not enrolments and record is None and not found and not latest:
        return None
    zone = record.plan.zone if record is not None else ZONE
    events = engine.findings.history([f.id for f in found])
    history: dict[int, list[tuple[str, FindingEvent]]] = defaultdict(list)
    for event in events:
        history[event.finding_id].append((when(event.at_ms, zone), event))
    rows = []
    for r in latest:
        measure = measure_of(r.mdc_code)
        line = None
        if measure is not None and len(measure.lines) > 1:
            line = next((x.label for x in measure.lines if x.mdc_code == r.mdc_code), None)
        label = None if measure is None else f"measure.{measure.name}"
        rows.append(
            {
                "label_key": "measure.sensor-board" if is_board_code(r.mdc_code) else label,
                "line_key": None if line is None else f"line.{line}",
                "mdc_code": r.mdc_code,
                "value": r.value,
                "unit": r.unit,
                "measured": when(r.t_ms, zone),
                "arrived": when(r.received_ms, zone),
                "device": r.device,
                "alerted": r.alerted,
            }
        )
    hubs = sorted(
        {e.hub for e in enrolments if e.covers(now_ms)} or {e.hub for e in enrolments[-1:]}
    )
    facts = engine.facts.hubs(hubs)
    devices = engine.facts.devices(hubs)
    hub_rows = []
    for hub in hubs:
        state, contact = _hub_state(facts.get(hub), words, zone)
        hub_facts = facts.get(hub)
        hub_rows.append(
            {
                "hub": hub,
                "state": state,
                "last_contact": contact,
                "batteries": [] if hub_facts is None else hub_facts.batteries,
                "devices": [
                    {
                        "device": d.device,
                        "last": when(d.last_received_ms, zone),
                        "clock_offset_s": d.clock_offset_s,
                    }
                    for d in devices
                    if d.hub == hub
                ],
            }
        )
    views = [view(f, words, zone) for f in found]
    return PatientPage(
        value,
        system,
        zone,
        enrolments,
        None if record is None else record.plan.to_json(),
        [v for v in views if v.finding.open and not v.finding.closed_ms],
        [v for v in views if v.finding.closed_ms is not None],
        dict(history),
        rows,
        _plots(engine, key, words, zone, now_ms, {r.mdc_code for r in latest}),
        hub_rows,
    )
