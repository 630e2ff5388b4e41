"""The conditions true now, from the facts and the care plans: pure functions, one per finding.

Every time here is the region's: ``now_ms`` and the facts' ingestion times. The one use of a
reading's effective time is to tell which window a measurement was taken in (a blood
pressure taken at 08:00 belongs to the morning window however late it arrives); a deadline
passes, a hub falls silent and a device goes unseen on the region's clock alone.

Rules (docs/region.md, "Findings"):

* **missed measurement**: the last window due by now (that started after the plan was set
  and the patient enrolled) holds no reading of the measure, and none was taken since. It
  is true from that run's first missed deadline; a reading taken in or after the window ends
  it (a late one too: the measurement came).
* **hub silent**: no batch and no live status for longer than ``hub_silent_after``.
* **device not seen**: no reading from a device of the hub for longer than
  ``device_unseen_after`` (a sensor board the plan expects: its ``max_gap``).
* **battery low**: a device's last reported level at or below ``battery_low_percent``.
* **device clock off**: the last clock read of a device off by more than
  ``device_clock_off_s`` (the offset the hub observed; it stamps readings right anyway).
* **alert reading**: the newest reading of a code is one the hub's threshold flagged; it ends
  with a newer reading that is not. An alert that arrived more than ``alert_stale_after``
  after it was taken is recorded, not raised (quiet).
* **held unattributed**: the hub has readings no enrolment covers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from region.enrolment import Enrolment, attribute
from region.findings.facts import DeviceFacts, HeldFacts, HubFacts, LatestFacts, patient_key
from region.findings.measures import MEASURES, SENSOR_BOARD, measure_of
from region.findings.model import Condition, Kind
from region.findings.plan import CarePlan, Expectation, Limits, Window

_DAY_MS = 86_400_000
#: Windows are looked for this far around a point (an overnight window spans < 1 day).
_SPAN_MS = 3 * _DAY_MS
#: The key of a board expected by a plan but never heard from.
ANY_BOARD = "sensor-board"


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A patient's plan and since when it applies (epoch ms, region clock)."""

    plan: CarePlan
    since_ms: int


@dataclass(frozen=True)
class World:
    """Everything judged at once (the store loads it, for all hubs or some)."""

    enrolments: Sequence[Enrolment]
    plans: Mapping[str, PlanRecord]
    hubs: Mapping[str, HubFacts]
    devices: Sequence[DeviceFacts]
    latest: Sequence[LatestFacts]
    held: Sequence[HeldFacts]

    def active(self, now_ms: int) -> dict[str, list[Enrolment]]:
        """The enrolments covering ``now_ms``, per hub."""
        out: dict[str, list[Enrolment]] = defaultdict(list)
        for e in self.enrolments:
            if e.covers(now_ms):
                out[e.hub].append(e)
        return out


def limits_of(world: World, enrolments: Iterable[Enrolment]) -> Limits:
    """The strictest limits among the plans of the patients enrolled (defaults without)."""
    limits: Limits | None = None
    for e in enrolments:
        record = world.plans.get(patient_key(e.patient))
        if record is not None:
            limits = record.plan.limits if limits is None else limits.strictest(record.plan.limits)
    return limits or Limits()


def _patient_at(enrolments: Sequence[Enrolment], device: str | None, now_ms: int) -> str | None:
    found = attribute(enrolments, device or "", now_ms)
    return None if found is None else patient_key(found.patient)


def _last_window(plan: CarePlan, e: Expectation, after_ms: int, now_ms: int) -> Window | None:
    windows = plan.windows(e, max(after_ms, now_ms - _SPAN_MS), now_ms)
    return windows[-1] if windows else None


def missed(
    patient: str, hub: str, record: PlanRecord, since_ms: int, last_t: dict[str, int], now_ms: int
) -> list[Condition]:
    """Missed measurements of one patient (``last_t``: newest effective time per measure)."""
    plan = record.plan
    judged_from = max(record.since_ms, since_ms)
    out = []
    for e in plan.expect:
        if not e.windowed:
            continue
        last = _last_window(plan, e, judged_from, now_ms)
        taken = last_t.get(e.measure)
        if last is None or (taken is not None and taken >= last.start_ms):
            continue
        after = judged_from if taken is None else max(judged_from, taken + 1)
        first = plan.windows(e, after, after + _SPAN_MS)[0]
        out.append(
            Condition(
                key=f"missed|{patient}|{e.measure}",
                kind=Kind.MISSED,
                evidence=str(first.start_ms),
                since_ms=first.by_ms,
                hub=hub,
                patient=patient,
                detail={
                    "measure": e.measure,
                    "window_start_ms": last.start_ms,
                    "by_ms": last.by_ms,
                    "windows": 1 + round((last.by_ms - first.by_ms) / _DAY_MS),
                    "last_taken_ms": taken,
                },
            )
        )
    return out


def hub_silent(
    hub: HubFacts | None, hub_id: str, since_ms: int, limits: Limits, now_ms: int
) -> list[Condition]:
    """The hub silent: no contact since ``last_contact`` (or the enrolment) plus the limit."""
    last = hub.last_contact_ms if hub is not None and hub.last_contact_ms is not None else None
    baseline = since_ms if last is None else max(last, since_ms)
    if now_ms - baseline <= limits.hub_silent_after_ms:
        return []
    return [
        Condition(
            key=f"silent|{hub_id}",
            kind=Kind.HUB_SILENT,
            evidence=str(baseline),
            since_ms=baseline + limits.hub_silent_after_ms,
            hub=hub_id,
            detail={
                "last_contact_ms": last,
                "state": None if hub is None else hub.state,
                "silent_after_ms": limits.hub_silent_after_ms,
            },
        )
    ]


def batteries(hub: HubFacts | None, limits: Limits) -> list[Condition]:
    """Devices whose last reported battery level is at or below the limit."""
    if hub is None:
        return []
    return [
        Condition(
            key=f"battery|{hub.hub}|{b.slot}",
            kind=Kind.BATTERY_LOW,
            evidence=f"{b.slot}:{b.since_ms}",
            since_ms=b.since_ms,
            hub=hub.hub,
            device=f"slot:{b.slot}",
            detail={"slot": b.slot, "kind": b.kind, "percent": b.percent},
        )
        for b in hub.batteries
        if b.percent <= limits.battery_low_percent
    ]


def devices_unseen(
    hub_id: str,
    devices: Sequence[DeviceFacts],
    since_ms: int,
    limits: Limits,
    board_gap_ms: int | None,
    now_ms: int,
) -> list[Condition]:
    """Devices of the hub not heard from for too long; a board the plan expects and none ever
    reported (``board_gap_ms``: the plan's ``max_gap``, or None when it expects none)."""
    out = []
    for d in devices:
        gap = (
            board_gap_ms if d.board and board_gap_ms is not None else limits.device_unseen_after_ms
        )
        baseline = max(d.last_received_ms, since_ms)
        if now_ms - baseline > gap:
            out.append(_unseen(hub_id, d.device, baseline, gap, d.last_received_ms, d.board))
    never = board_gap_ms is not None and not any(d.board for d in devices)
    if never and board_gap_ms is not None and now_ms - since_ms > board_gap_ms:
        out.append(_unseen(hub_id, ANY_BOARD, since_ms, board_gap_ms, None, True))
    return out


def _unseen(
    hub: str, device: str, baseline: int, gap: int, last: int | None, board: bool
) -> Condition:
    return Condition(
        key=f"unseen|{hub}|{device}",
        kind=Kind.DEVICE_UNSEEN,
        evidence=str(baseline),
        since_ms=baseline + gap,
        hub=hub,
        device=device,
        detail={"last_received_ms": last, "board": board, "gap_ms": gap},
    )


def clocks_off(devices: Sequence[DeviceFacts], limits: Limits) -> list[Condition]:
    """Devices whose last clock read was off by more than the limit."""
    return [
        Condition(
            key=f"clock|{d.hub}|{d.device}",
            kind=Kind.CLOCK_OFF,
            evidence=d.clock_read or "",
            since_ms=d.clock_received_ms or d.last_received_ms,
            hub=d.hub,
            device=d.device,
            detail={"offset_s": d.clock_offset_s, "limit_s": limits.device_clock_off_s},
        )
        for d in devices
        if d.clock_offset_s is not None and abs(d.clock_offset_s) > limits.device_clock_off_s
    ]


def alerts(latest: LatestFacts, hub: str, limits: Limits) -> list[Condition]:
    """An alert run on a patient's code (quiet when the first alerted reading was stale)."""
    if latest.alert_key is None or latest.alert_received_ms is None:
        return []
    taken = latest.alert_t_ms if latest.alert_t_ms is not None else latest.t_ms
    late_ms = latest.alert_received_ms - taken
    measure = measure_of(latest.mdc_code)
    return [
        Condition(
            key=f"alert|{latest.patient}|{latest.mdc_code}",
            kind=Kind.ALERT,
            evidence=latest.alert_key,
            since_ms=latest.alert_received_ms,
            hub=hub,
            patient=latest.patient,
            detail={
                "mdc_code": latest.mdc_code,
                "measure": None if measure is None else measure.name,
                "taken_ms": taken,
                "late_ms": late_ms,
            },
            quiet=late_ms > limits.alert_stale_after_ms,
        )
    ]


def held(facts: HeldFacts, patient: str | None) -> Condition:
    """Readings of a hub held unattributed."""
    return Condition(
        key=f"held|{facts.hub}",
        kind=Kind.HELD,
        evidence=str(facts.first_held_ms),
        since_ms=facts.first_held_ms,
        hub=facts.hub,
        patient=patient,
        detail={"count": facts.count},
    )


def _board_gap(world: World, enrolments: Sequence[Enrolment]) -> int | None:
    gaps = []
    for e in enrolments:
        record = world.plans.get(patient_key(e.patient))
        if record is None:
            continue
        gaps += [
            x.max_gap_ms for x in record.plan.expect if x.measure == SENSOR_BOARD and x.max_gap_ms
        ]
    return min(gaps) if gaps else None


def _board_since(world: World, enrolments: Sequence[Enrolment]) -> int:
    starts = [e.start_ms for e in enrolments]
    for e in enrolments:
        record = world.plans.get(patient_key(e.patient))
        if record is not None:
            starts.append(record.since_ms)
    return max(starts)


def conditions(world: World, now_ms: int) -> list[Condition]:
    """Every condition true at ``now_ms`` in ``world``."""
    out: list[Condition] = []
    active = world.active(now_ms)
    devices_by_hub: dict[str, list[DeviceFacts]] = defaultdict(list)
    for d in world.devices:
        devices_by_hub[d.hub].append(d)
    last_t: dict[str, dict[str, int]] = defaultdict(dict)
    for latest in world.latest:
        measure = measure_of(latest.mdc_code)
        if measure is not None:
            seen = last_t[latest.patient]
            seen[measure.name] = max(seen.get(measure.name, latest.t_ms), latest.t_ms)
    hub_of_patient: dict[str, str] = {}
    for hub_id, enrolments in active.items():
        limits = limits_of(world, enrolments)
        since = min(e.start_ms for e in enrolments)
        hub = world.hubs.get(hub_id)
        hub_patient = _patient_at(enrolments, None, now_ms)
        hub_wide = hub_silent(hub, hub_id, since, limits, now_ms) + batteries(hub, limits)
        out.extend(_with_patient(c, hub_patient) for c in hub_wide)
        devices = devices_by_hub.get(hub_id, [])
        board_gap = _board_gap(world, enrolments)
        board_since = _board_since(world, enrolments) if board_gap is not None else since
        unseen = devices_unseen(hub_id, devices, board_since, limits, board_gap, now_ms)
        out.extend(
            _with_patient(c, _patient_at(enrolments, c.device, now_ms))
            for c in unseen + clocks_off(devices, limits)
        )
        starts: dict[str, int] = {}
        for e in enrolments:
            key = patient_key(e.patient)
            hub_of_patient.setdefault(key, hub_id)
            starts[key] = min(starts.get(key, e.start_ms), e.start_ms)
        for key, start in starts.items():
            record = world.plans.get(key)
            if record is not None:
                out += missed(key, hub_id, record, start, last_t.get(key, {}), now_ms)
    for latest in world.latest:
        record = world.plans.get(latest.patient)
        limits = record.plan.limits if record is not None else Limits()
        out += alerts(latest, hub_of_patient.get(latest.patient, ""), limits)
    for facts in world.held:
        patient = _patient_at(active.get(facts.hub, []), None, now_ms)
        out.append(held(facts, patient))
    return _unique(out)


def _with_patient(condition: Condition, patient: str | None) -> Condition:
    if patient is None or condition.patient is not None:
        return condition
    return Condition(
        condition.key,
        condition.kind,
        condition.evidence,
        condition.since_ms,
        condition.hub,
        patient,
        condition.device,
        condition.detail,
        condition.quiet,
    )


def _unique(found: list[Condition]) -> list[Condition]:
    """One condition per key (a patient with a hub-wide and a device enrolment on one hub is
    judged once per measure)."""
    seen: dict[str, Condition] = {}
    for c in found:
        seen.setdefault(c.key, c)
    return list(seen.values())


def measures_expected(plan: CarePlan) -> list[str]:
    """The measures of a plan that have plots (every windowed one)."""
    return [e.measure for e in plan.expect if e.measure in MEASURES]
