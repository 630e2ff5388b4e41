"""An alert reading's finding opens within a rig minute of the time the rig's ledger says the
reading was taken, and closes within a rig minute of the next reading that is not an alert
(the issue's bound, held against the ledger).

The findings day (test_findings_rig_day.py) runs at 240 rig seconds per real second, where a
rig minute is 250 ms: less than the hub's own way from a device to the region (a BLE
connection, the clinical batching window, a commit), so there the opening is held to the
arrival within a minute and the way itself to a few rig minutes. This short day runs a
thermometer at 20 rig seconds per real second, where a rig minute is 3 real seconds: the
whole way from the measurement to the finding fits in it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from findings_helpers import alert_runs

from region.findings.model import Kind
from rig.findings_day import Replay, findings_of
from rig.home import RIG_PATIENT
from rig.worklist_day import ORAL, record_day

pytestmark = [pytest.mark.broker, pytest.mark.slow]
MINUTE_MS = 60_000
SCALE = 20.0
ABOVE = Decimal("37.2")
DAY = f"""\
name = "alert-timing"
seed = 5
time_scale = {SCALE}

[[devices]]
kind = "thermometer"
address = "C0:FF:EE:00:2F:01"
first_s = 30
every_s = 90
count = 5
"""


async def test_an_alert_opens_and_closes_within_a_rig_minute_of_the_ledger(tmp_path: Path):
    day = await record_day(
        tmp_path, DAY, time_scale=SCALE, day_end_s=420, unplug=None, alert_above=ABOVE
    )
    clock = day.clock
    engine = Replay(
        day.log, clock, tmp_path / "judged.db", hub="hub-rig-0001", patient=RIG_PATIENT
    ).until(clock.day0_ms + 420_000)
    alerts = [f for f in findings_of(engine) if f.kind is Kind.ALERT]
    engine.close()
    temps = sorted((clock.rig(e.taken_ms), Decimal(e.value)) for e in day.ledger if e.mdc == ORAL)
    assert len(temps) == 5, temps
    runs = alert_runs(temps, ABOVE)
    assert runs, f"seed 5 gives a reading above {ABOVE}: {temps}"
    assert len(alerts) == len(runs), (alerts, runs)
    for finding, (taken, ended) in zip(alerts, runs, strict=True):
        assert 0 <= finding.opened_ms - taken <= MINUTE_MS, (
            f"alert opened {(finding.opened_ms - taken) / 1000:+.0f} rig s after it was taken"
        )
        assert finding.closed_ms != finding.opened_ms, "raised, not recorded quiet"
        if ended is None:
            assert finding.closed_ms is None
        else:
            assert finding.closed_ms is not None
            assert 0 <= finding.closed_ms - ended <= MINUTE_MS, (
                f"alert closed {(finding.closed_ms - ended) / 1000:+.0f} rig s after the "
                "reading that ended it was taken"
            )
