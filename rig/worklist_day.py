"""A short rig day recorded for the worklist: the findings a nurse must see, open at once.

:data:`WORKLIST_DAY` runs from 06:00 to 08:00 rig time (30 real seconds at the scale of
:mod:`rig.findings_day`): a sensor board always on, a thermometer whose one reading at 06:05
crosses the care team's threshold (above 35.9 Cel, below anything the emulated thermometer
gives: the alert does not depend on the seed), an oximeter reporting a battery at 8 %, a
blood-pressure cuff the plan wants by 06:45 but first used at 07:45, and the hub unplugged
(SIGKILL) from 06:45 to 07:30. At :data:`NURSE_LOOKS_S` (07:20) the alert, the low
battery, the missed blood pressure, the silent hub and the board not seen are open at once;
the cuff's reading after the hub is back closes the missed measurement.

:func:`record_day` plays the day (or another, :data:`rig.findings_day.FINDINGS_DAY`) on the
virtual rig (real parts: emulated devices over the emulated radio, the hub as a process, the
TLS broker, the region's receiver) and records what the region received
(:class:`rig.findings_day.IngestionLog`); a :class:`rig.findings_day.Replay` judges it on rig
time up to any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from drivers.mqtt import MqttError
from gateway.config import ThresholdConfig
from region.findings.service import watch_status
from region.receiver import RECEIVER_NAME
from rig.findings_day import TIME_SCALE, IngestionLog, RigClock, day0_ms, rig_plan
from rig.home import HubOptions, VirtualHomeRig, eventually
from rig.ledger import LedgerEntry

#: Scenario seconds (from 06:00).
MINUTE_S = 60
UNPLUG_AT_S = 45 * MINUTE_S  # 06:45
UNPLUG_FOR_S = 45 * MINUTE_S  # back at 07:30
NURSE_LOOKS_S = 80 * MINUTE_S  # 07:20
DAY_END_S = 120 * MINUTE_S  # 08:00
#: Oral temperature (MDC_TEMP_ORAL) above this is an alert: every reading the emulated
#: thermometer gives (36.0-38.4 Cel).
ORAL = 188424
ALERT_ABOVE = Decimal("35.9")

WORKLIST_DAY = f"""\
name = "worklist-day"
seed = 23
time_scale = {TIME_SCALE}

[[devices]]
kind = "thermometer"
address = "C0:FF:EE:00:1F:01"
first_s = 300
count = 1

[[devices]]
kind = "pulse_oximeter"
address = "C0:FF:EE:00:1F:04"
first_s = 420
count = 1
battery_percent = 8

[[devices]]
kind = "blood_pressure"
address = "C0:FF:EE:00:1F:02"
first_s = {105 * MINUTE_S}
count = 1

[[boards]]
board_id = "sim-worklist-01"
interval_ms = 250
"""

PLAN = rig_plan("06:45", "PT15M")


async def _watch_status(home: VirtualHomeRig, log: IngestionLog, ready: asyncio.Event) -> None:
    assert home.broker is not None
    connect = home.broker.connector(RECEIVER_NAME, f"{RECEIVER_NAME}-status")
    while True:
        try:
            await watch_status(connect, log.status, subscribed=ready)  # the service's watcher
        except (MqttError, OSError):
            await asyncio.sleep(0.1)  # the broker restarting: connect again


@dataclass(frozen=True)
class RecordedDay:
    """What the region received (:class:`rig.findings_day.IngestionLog`), the clock that maps
    its real times to rig time, the rig's ledger of what the devices measured and, when the
    hub was unplugged, the rig times it was killed and had started again."""

    log: IngestionLog
    clock: RigClock
    ledger: list[LedgerEntry]
    unplugged_ms: int | None = None
    replugged_ms: int | None = None


async def _until(started_ms: int, scenario_s: float, time_scale: float) -> None:
    """Sleep until a scenario time (the schedule is the point of sleeping)."""
    delay = started_ms / 1000 + scenario_s / time_scale - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def record_day(
    directory: Path,
    scenario_toml: str = WORKLIST_DAY,
    *,
    time_scale: float = TIME_SCALE,
    day_end_s: float = DAY_END_S,
    unplug: tuple[float, float] | None = (UNPLUG_AT_S, UNPLUG_FOR_S),
    alert_above: Decimal = ALERT_ABOVE,
) -> RecordedDay:
    """Play a day (:data:`WORKLIST_DAY` by default) on the virtual rig in ``directory``,
    the hub unplugged at ``unplug[0]`` for ``unplug[1]`` scenario seconds, thermometer
    readings above ``alert_above`` flagged by the hub; what the region received."""
    scenario = directory / "day.toml"
    scenario.write_text(scenario_toml)
    log = IngestionLog()
    options = HubOptions(
        thresholds=(ThresholdConfig(mdc_code=ORAL, unit="Cel", above=alert_above),)
    )
    async with VirtualHomeRig(
        directory / "home", scenario, hub_options=options, on_ingested=log.filed
    ) as home:
        ready = asyncio.Event()
        watcher = asyncio.create_task(_watch_status(home, log, ready), name="day-status")
        try:
            await asyncio.wait_for(ready.wait(), 20)
            await eventually(
                lambda: home.rig_facts().get("started_ms") is not None,
                timeout_s=30,
                what="the rig's schedule started",
            )
            started = int(home.rig_facts()["started_ms"])
            unplugged = replugged = None
            if unplug is not None:
                await _until(started, unplug[0], time_scale)
                home.kill_hub()
                unplugged = time.time_ns() // 1_000_000
                await _until(started, unplug[0] + unplug[1], time_scale)
                await home.start_hub()
                replugged = time.time_ns() // 1_000_000
            await home.wait_rig_done(timeout_s=day_end_s / time_scale + 60)
            await _until(started, day_end_s, time_scale)
            await home.wait_delivered(60)
            await home.stop_hub()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        ledger = home.ledger()
    clock = RigClock(started, time_scale, day0_ms())
    return RecordedDay(
        log,
        clock,
        ledger,
        None if unplugged is None else clock.rig(unplugged),
        None if replugged is None else clock.rig(replugged),
    )
