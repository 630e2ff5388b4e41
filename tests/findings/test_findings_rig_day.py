"""A rig day judged against the rig's ledger and schedule: a missed morning blood pressure, the
hub unplugged for two hours, a low battery and alert readings each open a finding once, at the
right time, and close when their condition ends.

The day runs on the virtual rig (emulated devices, a sensor board, TLS broker, the hub as a
process, the region's receiver) at 240 rig seconds per real second; the receiver's
``on_ingested`` hook and a status watcher record what the region received and when (real
time). The findings engine then judges that record on rig time with an injected clock
(rig/findings_day.py: a 30-minute silence would otherwise last 7.5 real seconds). Times
the region decides (a deadline, a silence measured from the last contact, an end at the
arrival of the data that end it) must be within a rig minute; so must an alert's opening
against the time the ledger says the reading was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.mqtt import MqttError, MqttLink, TlsFiles
from gateway.config import ThresholdConfig
from region.findings.model import Kind
from region.findings.service import watch_status
from rig.findings_day import (
    ALERT_ABOVE,
    DAY_END_S,
    FINDINGS_DAY,
    HOUR_S,
    TIME_SCALE,
    UNPLUG_AT_S,
    UNPLUG_FOR_S,
    IngestionLog,
    RigClock,
    day0_ms,
    findings_of,
    replay,
)
from rig.home import RIG_PATIENT, HubOptions, VirtualHomeRig, eventually
from rig.ledger import LedgerEntry

pytestmark = [pytest.mark.broker, pytest.mark.slow]
MINUTE_MS = 60_000
#: How far the region's arrival may trail the ledger's time of measurement at this scale: a
#: BLE connection, a commit and a batching window take about a real second on a quiet machine
#: (3-4 rig minutes); two real seconds leave room for a loaded CI machine.
WAY_MS = 8 * MINUTE_MS
ORAL = 188424


async def _watch_status(home: VirtualHomeRig, log: IngestionLog, ready: asyncio.Event) -> None:
    assert home.pki is not None
    assert home.broker is not None
    identity = home.pki.client("region-receiver")
    tls = TlsFiles(home.pki.ca_file, identity.cert_file, identity.key_file)
    broker = home.broker

    def connect() -> MqttLink:
        return MqttLink(broker.host, broker.port, client_id="region-receiver-status", tls=tls)

    while True:
        try:
            await watch_status(connect, log.status, subscribed=ready)  # the service's watcher
        except (MqttError, OSError):
            await asyncio.sleep(0.1)  # the broker restarting: connect again


async def _until(started_ms: int, scenario_s: float) -> None:
    """Sleep until a scenario time (the schedule is the point of sleeping)."""
    delay = started_ms / 1000 + scenario_s / TIME_SCALE - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _play(tmp_path: Path) -> tuple[IngestionLog, RigClock, list[LedgerEntry], int, int]:
    scenario = tmp_path / "findings-day.toml"
    scenario.write_text(FINDINGS_DAY)
    log = IngestionLog()
    options = HubOptions(
        thresholds=(ThresholdConfig(mdc_code=ORAL, unit="Cel", above=ALERT_ABOVE),)
    )
    async with VirtualHomeRig(
        tmp_path / "home", scenario, hub_options=options, on_ingested=log.filed
    ) as home:
        ready = asyncio.Event()
        watcher = asyncio.create_task(_watch_status(home, log, ready))
        try:
            await asyncio.wait_for(ready.wait(), 20)
            await eventually(
                lambda: home.rig_facts().get("started_ms") is not None,
                timeout_s=30,
                what="the rig's schedule started",
            )
            started = int(home.rig_facts()["started_ms"])
            await _until(started, UNPLUG_AT_S)
            home.kill_hub()
            unplugged = time.time_ns() // 1_000_000
            await _until(started, UNPLUG_AT_S + UNPLUG_FOR_S)
            await home.start_hub()
            replugged = time.time_ns() // 1_000_000
            await home.wait_rig_done(timeout_s=DAY_END_S / TIME_SCALE + 60)
            await _until(started, DAY_END_S)
            await home.wait_delivered(60)
            await home.stop_hub()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        ledger = home.ledger()
    clock = RigClock(started, TIME_SCALE, day0_ms())
    return log, clock, ledger, clock.rig(unplugged), clock.rig(replugged)


def _near(actual: int | None, expected: int, what: str) -> None:
    assert actual is not None, f"{what}: never"
    assert abs(actual - expected) <= MINUTE_MS, (
        f"{what}: {(actual - expected) / 1000:+.0f} rig s off"
    )


async def test_a_rig_day_opens_and_closes_each_finding_once_at_the_right_time(tmp_path: Path):
    log, clock, ledger, unplugged, replugged = await _play(tmp_path)
    day0 = clock.day0_ms
    engine = replay(
        log,
        clock,
        tmp_path / "judged.db",
        hub="hub-rig-0001",
        patient=RIG_PATIENT,
        until_ms=day0 + DAY_END_S * 1000,
    )
    found = findings_of(engine)
    by_kind = {k: [f for f in found if f.kind is k] for k in Kind}
    # Contact: a batch, or a status the hub published just now (not a retained copy, not its
    # last will).
    arrivals = sorted(
        e.received_ms
        for e in log.events
        if hasattr(e, "readings") or (not e.retained and e.status.state == "online")
    )

    # The missed morning blood pressure: opens at 10:00 sharp, closes when the cuff's first
    # reading (taken at 11:00 by the ledger) reaches the region.
    bp = sorted(clock.rig(e.taken_ms) for e in ledger if e.kind == "blood_pressure")
    assert bp, "the cuff measured"
    assert bp[0] > day0 + 4 * HOUR_S * 1000, "no blood pressure before 10:00 in the ledger"
    bp_arrived = min(
        clock.rig(e.received_ms)
        for e in log.events
        if hasattr(e, "readings") and any(r.mdc_code == 150021 for r in e.readings)
    )
    missed = by_kind[Kind.MISSED]
    assert len(missed) == 1, missed
    assert missed[0].opened_ms == day0 + 4 * HOUR_S * 1000
    _near(missed[0].closed_ms, bp_arrived, "missed blood pressure closed on its arrival")
    # The reading's way from the cuff to the region (connection, clinical batching window of
    # 0.2 real s) is a rig minute or two at this scale (WAY_MS at most).
    assert 0 <= bp_arrived - bp[0] <= WAY_MS

    # The hub unplugged at 12:00 for two hours: silent 30 minutes after its last contact,
    # until its first contact once plugged in again.
    contacts = sorted(clock.rig(t) for t in arrivals)
    last_before = max(t for t in contacts if t <= unplugged)
    first_after = min(t for t in contacts if t >= replugged)
    silent = by_kind[Kind.HUB_SILENT]
    assert len(silent) == 1, silent
    _near(silent[0].opened_ms, last_before + 30 * MINUTE_MS, "hub silent opened")
    _near(silent[0].closed_ms, first_after, "hub silent closed")
    # In touch until unplugged: the board's readings leave every 0.5 real s (environmental
    # batching in the rig), two rig minutes at this scale (WAY_MS at most).
    assert 0 <= unplugged - last_before <= WAY_MS
    # The board, expected always on (max_gap 30 minutes), unseen for as long.
    board = [f for f in by_kind[Kind.DEVICE_UNSEEN] if f.device == "sim-findings-01"]
    assert len(board) == 1, board
    _near(board[0].opened_ms, last_before + 30 * MINUTE_MS, "board not seen opened")
    assert board[0].closed_ms is not None
    assert board[0].closed_ms >= replugged

    # The oximeter's battery at 8 %: low from the first status that carried it until the
    # status after its replacement at 14:30.
    low = by_kind[Kind.BATTERY_LOW]
    assert len(low) == 1, low
    statuses = [
        (clock.rig(e.received_ms), e)
        for e in log.events
        if hasattr(e, "status") and any(d.battery_percent is not None for d in e.status.devices)
    ]
    first_low = min(t for t, e in statuses if any(d.battery_percent == 8 for d in e.status.devices))
    first_full = min(
        t for t, e in statuses if any(d.battery_percent == 100 for d in e.status.devices)
    )
    _near(low[0].opened_ms, first_low, "battery low opened")
    _near(low[0].closed_ms, first_full, "battery low closed")
    assert first_full > day0 + int(8.5 * HOUR_S) * 1000

    # Alerts: one finding per run of readings above 37.5 Cel in the ledger, opened when the
    # first of the run arrived and closed when the next reading that was not arrived. From
    # the ledger's time of measurement to the region is the hub's BLE connection to the
    # thermometer and a commit (about a real second: several rig minutes; WAY_MS at most).
    arrived = {}
    for e in log.events:
        for r in getattr(e, "readings", ()):
            if r.mdc_code == ORAL:
                arrived.setdefault(r.value, clock.rig(e.received_ms))
    temps = sorted((clock.rig(e.taken_ms), Decimal(e.value)) for e in ledger if e.mdc == ORAL)
    runs: list[tuple[int, int | None]] = []
    for i, (t, value) in enumerate(temps):
        if value > ALERT_ABOVE and (i == 0 or temps[i - 1][1] <= ALERT_ABOVE):
            after = next((u for u, v in temps[i:] if v <= ALERT_ABOVE), None)
            runs.append((t, after))
    alerts = [f for f in by_kind[Kind.ALERT] if f.closed_ms != f.opened_ms]
    assert runs, "the day's seed gives at least one reading above 37.9"
    assert len(alerts) == len(runs), (alerts, runs)
    values = {clock.rig(e.taken_ms): Decimal(e.value) for e in ledger if e.mdc == ORAL}
    for finding, (taken, ended) in zip(alerts, runs, strict=True):
        _near(finding.opened_ms, arrived[values[taken]], "alert opened on its arrival")
        assert 0 <= finding.opened_ms - taken <= WAY_MS
        if ended is None:
            assert finding.closed_ms is None
        else:
            _near(finding.closed_ms, arrived[values[ended]], "alert closed on the next arrival")
            assert 0 <= finding.closed_ms - ended <= WAY_MS

    # Judging the whole record again raises nothing new (the same data never twice).
    before = len(found)
    engine.evaluate(day0 + DAY_END_S * 1000 + MINUTE_MS)
    assert len(findings_of(engine)) == before
    engine.close()
