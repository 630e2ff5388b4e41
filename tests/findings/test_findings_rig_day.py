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

from decimal import Decimal
from pathlib import Path

import pytest
from findings_helpers import alert_runs

from region.findings.model import Kind
from rig.findings_day import (
    ALERT_ABOVE,
    DAY_END_S,
    FINDINGS_DAY,
    HOUR_S,
    TIME_SCALE,
    UNPLUG_AT_S,
    UNPLUG_FOR_S,
    findings_of,
    replay,
)
from rig.home import RIG_PATIENT
from rig.worklist_day import ORAL, record_day

pytestmark = [pytest.mark.broker, pytest.mark.slow]
MINUTE_MS = 60_000
#: How far the region's arrival may trail the ledger's time of measurement at this scale: a
#: BLE connection, a commit and a batching window take about a real second on a quiet machine
#: (3-4 rig minutes); two real seconds leave room for a loaded CI machine.
WAY_MS = 8 * MINUTE_MS


def _near(actual: int | None, expected: int, what: str) -> None:
    assert actual is not None, f"{what}: never"
    assert abs(actual - expected) <= MINUTE_MS, (
        f"{what}: {(actual - expected) / 1000:+.0f} rig s off"
    )


async def test_a_rig_day_opens_and_closes_each_finding_once_at_the_right_time(tmp_path: Path):
    day = await record_day(
        tmp_path,
        FINDINGS_DAY,
        time_scale=TIME_SCALE,
        day_end_s=DAY_END_S,
        unplug=(UNPLUG_AT_S, UNPLUG_FOR_S),
        alert_above=ALERT_ABOVE,
    )
    log, clock, ledger = day.log, day.clock, day.ledger
    assert day.unplugged_ms is not None
    assert day.replugged_ms is not None
    unplugged, replugged = day.unplugged_ms, day.replugged_ms
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
    runs = alert_runs(temps, ALERT_ABOVE)
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
