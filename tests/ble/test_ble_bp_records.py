"""An enhanced cuff's Blood Pressure Records (BLS 1.1.1, 0x2B36) downloaded through the RACP by
sequence number, with the commit-gated cursor the glucose meter uses: every record once, no
overlap and no gap across a hub restart or a link lost in the middle of the download; the
segments of a record (the emulated cuff splits each at the default ATT MTU) joined into one
value that maps to the blood pressure observations. On both backends (``sim`` and ``bluez``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ble_rig import Collector, Rig

from drivers.ble.sim.enhanced_cuff import EmulatedEnhancedCuff
from drivers.ble.sim.radio import SimRadio
from gateway.record_cursor_store import SqliteRecordCursorStore
from protocols import gatt as g
from protocols.gatt import RacpOperator
from protocols.gatt import observation as mdc

pytestmark = pytest.mark.parametrize("backend", ["sim", "bluez"])


def _cuff(radio: SimRadio, address: str, records: int) -> EmulatedEnhancedCuff:
    cuff = EmulatedEnhancedCuff(
        radio, address, seed=24, stored_records=records, sleep_s=0.2, linger_s=5.0
    )
    cuff.pairing_mode = True  # advertise after each sleep: the records stay on the cuff
    return cuff


async def _downloaded(
    rig: Rig, cuff: EmulatedEnhancedCuff, cursors: SqliteRecordCursorStore, last: int
) -> Collector:
    """A hub runs near the cuff until it committed the records up to sequence number ``last``;
    what it collected."""
    async with rig.running(("enhanced_blood_pressure", cuff), cursors=cursors) as (central, got):
        await got.wait_for(lambda: central.cursors_committed(cuff.address) == last)
    return got


def _whole(events: list[g.Measurement | None]) -> list[int]:
    return [
        m.sequence_number
        for m in events
        if isinstance(m, g.BloodPressureRecordSegment) and m.complete
    ]


async def test_records_once_across_a_hub_restart(rig: Rig, tmp_path: Path) -> None:
    cuff = _cuff(rig.radio, "C0:00:00:00:0E:01", 30)
    cursors = SqliteRecordCursorStore(tmp_path / "cursors.sqlite3")
    try:
        got = await _downloaded(rig, cuff, cursors, 29)
        first = got.of(g.BLOOD_PRESSURE_RECORD)
        assert _whole([e.measurement for e in first]) == list(range(30))
        assert [e.sequence_number for e in first if e.sequence_number is not None] == list(
            range(30)
        )
        # Every record is two values at the default MTU: the first carries no sequence number
        # for the cursor (a record is committed only once whole).
        assert len(first) == 60
        record = next(e.measurement for e in first if e.sequence_number == 7)
        observations = g.to_observations(record)
        assert {o.mdc_code for o in observations} >= {
            mdc.MDC_PRESS_BLD_NONINV_SYS,
            mdc.MDC_PRESS_BLD_NONINV_DIA,
        }
        assert {o.sequence_number for o in observations} == {7}
        assert await cursors.load(cuff.address) == 29
        for _ in range(5):
            cuff.add_record()
        # The hub restarts: a new central, the same cursor store.
        got = await _downloaded(rig, cuff, cursors, 34)
        assert _whole([e.measurement for e in got.of(g.BLOOD_PRESSURE_RECORD)]) == [
            30, 31, 32, 33, 34,
        ]  # fmt: skip
        resumed = cuff.racp.requests[-1]
        assert resumed.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO
        assert resumed.minimum == 30
    finally:
        cursors.close()


async def test_a_link_lost_mid_download_resumes_without_gap_or_overlap(
    rig: Rig, tmp_path: Path
) -> None:
    cuff = _cuff(rig.radio, "C0:00:00:00:0E:02", 40)
    cuff.faults.drop_after_records = 17
    cursors = SqliteRecordCursorStore(tmp_path / "cursors.sqlite3")
    try:
        got = await _downloaded(rig, cuff, cursors, 39)
        assert cuff.stats.drops == 1
        whole = _whole([e.measurement for e in got.of(g.BLOOD_PRESSURE_RECORD)])
        assert sorted(whole) == list(range(40))
        assert len(whole) == len(set(whole)) == 40  # every record exactly once
        resumed = cuff.racp.requests[1]
        assert resumed.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO
        assert isinstance(resumed.minimum, int)
        assert 1 <= resumed.minimum <= 17
    finally:
        cursors.close()
