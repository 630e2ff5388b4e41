"""A rig day for the findings: what the region received, recorded, then judged on rig time.

The virtual rig compresses a day (``time_scale``) but the region's clock is real: a 30-minute
silence lasts 7.5 real seconds at scale 240. So the day is played on the rig while
:class:`IngestionLog` records every filing (the receiver's ``on_ingested`` hook) and every
status document (a status watcher) with its **real** ingestion time; :func:`replay` then
feeds the log, in order, to a findings engine whose clock is **rig time**
(:class:`RigClock`: ``day0 + (real - started) * time_scale``), judging every rig minute in
between. The readings' effective times are mapped the same way (the rig's devices keep real
clocks). What the engine opens and closes can then be held against the rig's ledger and its
schedule, in rig time.

:data:`FINDINGS_DAY` is the day: from 06:00, a sensor board always on, a thermometer every
hour (readings above 37.5 Cel alert), a blood-pressure cuff first used at 11:00 (the plan
wants it by 10:00), an oximeter whose battery is at 8 % until it is replaced at 14:30, and
the hub unplugged (SIGKILL) from 12:00 to 14:00.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from protocols.fhir.identity import PatientRef
from region.enrolment_sqlite import enrol_hub
from region.filing import Filing
from region.findings.engine import FindingsEngine
from region.findings.facts import (
    HubStatus,
    IngestedReading,
    Ingestion,
    StatusSeen,
    ingestion,
    patient_key,
)
from region.findings.model import Finding
from region.findings.sqlite_facts import plan_json

ZONE = ZoneInfo("Europe/Stockholm")
#: Rig seconds per real second for the findings day (a rig minute is 250 ms).
TIME_SCALE = 240.0
#: Scenario seconds from 06:00.
HOUR_S = 3600
UNPLUG_AT_S = 6 * HOUR_S  # 12:00
UNPLUG_FOR_S = 2 * HOUR_S
DAY_END_S = 11 * HOUR_S  # 17:00
ALERT_ABOVE = Decimal("37.5")

FINDINGS_DAY = f"""\
name = "findings-day"
seed = 22
time_scale = {TIME_SCALE}

[[devices]]
kind = "thermometer"
address = "C0:FF:EE:00:0F:01"
first_s = 1800
every_s = 3600
count = 11

[[devices]]
kind = "blood_pressure"
address = "C0:FF:EE:00:0F:02"
first_s = {5 * HOUR_S}
every_s = {int(4.5 * HOUR_S)}
count = 2

[[devices]]
kind = "pulse_oximeter"
address = "C0:FF:EE:00:0F:04"
first_s = 900
every_s = 5400
count = 7
battery_percent = 8
[[devices.faults]]
at_s = {int(8.5 * HOUR_S)}
fault = "battery_replaced"

[[boards]]
board_id = "sim-findings-01"
interval_ms = 250
"""


def rig_plan(blood_pressure_by: str, silent_after: str) -> dict[str, Any]:
    """A rig day's care plan (docs/region.md, "Care plans"): a blood pressure from 06:00 by
    ``blood_pressure_by`` (local time), the sensor board and the hub silent no longer than
    ``silent_after`` (an ISO 8601 duration), a battery below 20 % low."""
    return {
        "zone": "Europe/Stockholm",
        "expect": [
            {"measure": "blood-pressure", "from": "06:00", "by": blood_pressure_by},
            {"measure": "sensor-board", "max_gap": silent_after},
        ],
        "limits": {"hub_silent_after": silent_after, "battery_low_percent": 20},
    }


PLAN = rig_plan("10:00", "PT30M")


def day0_ms(today: dt.date | None = None) -> int:
    """06:00 Stockholm time of the rig day (today's date by default)."""
    day = today or dt.datetime.now(tz=ZONE).date()
    return round(dt.datetime(day.year, day.month, day.day, 6, tzinfo=ZONE).timestamp() * 1000)


@dataclass(frozen=True)
class RigClock:
    """Real time to rig time: ``day0_ms`` is rig time when the scenario started at
    ``started_ms`` (real)."""

    started_ms: int
    time_scale: float
    day0_ms: int

    def rig(self, real_ms: int) -> int:
        """The rig time of a real time."""
        return self.day0_ms + round((real_ms - self.started_ms) * self.time_scale)

    def scenario_s(self, rig_ms: int) -> float:
        """The scenario time of a rig time."""
        return (rig_ms - self.day0_ms) / 1000


@dataclass
class IngestionLog:
    """What the region received, in order, at its real ingestion time."""

    events: list[Ingestion | StatusSeen] = field(default_factory=list)

    def filed(self, filing: Filing) -> None:
        """The receiver's ``on_ingested`` hook."""
        now = time.time_ns() // 1_000_000
        readings = [(f.reading, f.patient) for f in filing.filed]
        self.events.append(ingestion(filing.hub, now, readings, held=filing.held))

    def status(self, status: HubStatus, retained: bool) -> None:
        """A status document arrived."""
        self.events.append(StatusSeen(status, time.time_ns() // 1_000_000, retained))


def _on_rig_time(event: Ingestion | StatusSeen, clock: RigClock) -> Ingestion | StatusSeen:
    if isinstance(event, StatusSeen):
        return replace(event, received_ms=clock.rig(event.received_ms))
    readings = tuple(
        IngestedReading(
            r.patient, r.device, r.mdc_code, r.unit, clock.rig(r.t_ms), r.value, r.flags, r.key
        )
        for r in event.readings
    )
    return Ingestion(event.hub, clock.rig(event.received_ms), readings, event.held)


class Replay:
    """A recorded day judged on rig time, in as many steps as the caller wants: events up to
    a moment, a judgement every ``step_ms`` between them (the engine's clock reads
    :attr:`now_ms`, so a page served in between sees the day stopped there)."""

    def __init__(
        self,
        log: IngestionLog,
        clock: RigClock,
        state: Path,
        *,
        hub: str,
        patient: PatientRef,
        plan: dict[str, Any] | None = None,
        step_ms: int = 60_000,
    ) -> None:
        enrol_hub(state, hub, patient, start_ms=clock.day0_ms)
        self.now_ms = clock.day0_ms
        self.step_ms = step_ms
        self.engine = FindingsEngine.sqlite(state, clock_ms=lambda: self.now_ms)
        self.engine.plans.set_plan(
            patient_key(patient), plan_json(PLAN if plan is None else plan), clock.day0_ms
        )
        self._events = sorted((_on_rig_time(e, clock) for e in log.events), key=_received)

    @property
    def last_ms(self) -> int:
        """Rig time of the last event not yet fed (or of the judgement so far)."""
        return _received(self._events[-1]) if self._events else self.now_ms

    def until(self, until_ms: int) -> FindingsEngine:
        """Feed the events that arrived by ``until_ms``, judging every step, and stop there."""
        while self._events and _received(self._events[0]) <= until_ms:
            event = self._events.pop(0)
            self._judge_until(_received(event))
            self.now_ms = max(self.now_ms, _received(event))
            if isinstance(event, StatusSeen):
                self.engine.status(event)
            else:
                self.engine.ingested(event)
        self._judge_until(until_ms)
        if self.now_ms < until_ms:  # judged at the moment itself too
            self.now_ms = until_ms
            self.engine.evaluate(until_ms)
        return self.engine

    def _judge_until(self, t_ms: int) -> None:
        while self.now_ms + self.step_ms <= t_ms:
            self.now_ms += self.step_ms
            self.engine.evaluate(self.now_ms)


def replay(
    log: IngestionLog,
    clock: RigClock,
    state: Path,
    *,
    hub: str,
    patient: PatientRef,
    until_ms: int,
    step_ms: int = 60_000,
) -> FindingsEngine:
    """Judge the recorded day on rig time (every ``step_ms`` and at every event)."""
    return Replay(log, clock, state, hub=hub, patient=patient, step_ms=step_ms).until(until_ms)


def _received(event: Ingestion | StatusSeen) -> int:
    return event.received_ms


def findings_of(engine: FindingsEngine) -> list[Finding]:
    """Every finding of the day, oldest first."""
    return sorted(engine.findings.findings(limit=10_000), key=lambda f: (f.opened_ms, f.id))
