"""The findings engine on an injected clock: each finding opens at the moment its condition
became true (region clock), once, stays open while it lasts and closes when it ends; an
acknowledgement is kept; nothing is raised twice from the same data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from findings_helpers import BOARD, CUFF, HUB, PKEY, at, engine, ingest, reading, status

from protocols.uplink.wire_reading import WireReading
from region.enrolment_store import HeldReading
from region.findings.engine import FindingsEngine
from region.findings.model import Kind

SYS, DIA, WEIGHT, SPO2, BOARD_T = 150021, 150022, 188736, 150456, 2 * 65536 + 0xF001


@pytest.fixture(params=["sqlite", "postgresql"])
def findings_db(request: pytest.FixtureRequest) -> str | None:
    """The findings store: in the SQLite state file, or in the tests' private PostgreSQL
    (rig/postgres.py), shared the way several region instances share it."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


MakeEngine = Callable[..., FindingsEngine]


@pytest.fixture
def make_engine(findings_db: str | None) -> Iterator[MakeEngine]:
    """:func:`findings_helpers.engine` on the store chosen, each engine closed afterwards."""
    made: list[FindingsEngine] = []

    def make(state: Path, **kwargs: Any) -> FindingsEngine:
        made.append(engine(state, findings_db=findings_db, **kwargs))
        return made[-1]

    yield make
    for eng in made:
        eng.close()


def _open(eng, kind=None):
    return [f for f in eng.findings.open_findings() if kind is None or f.kind == kind]


def _all(eng, kind):
    return [f for f in eng.findings.findings(limit=1000) if f.kind == kind]


def test_missed_blood_pressure_opens_at_the_deadline_and_closes_when_it_comes(
    tmp_path: Path, make_engine: MakeEngine
):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    # Board and hub keep in touch all morning; the night's oximetry came.
    for minute in range(0, 10 * 60, 10):
        now = at(2, 0) + minute * 60_000
        ingest(eng, now, reading(BOARD_T, now, "21.5", device=BOARD, unit="Cel"))
        if now == at(2, 7):
            ingest(eng, now, reading(SPO2, at(2, 3), "96", device="C0:FF:EE:00:00:04", unit="%"))
    eng.evaluate(at(2, 9, 59))
    assert _open(eng, Kind.MISSED) == []
    eng.evaluate(at(2, 10, 0, 30))
    missed = _open(eng, Kind.MISSED)
    assert len(missed) == 1
    assert missed[0].opened_ms == at(2, 10)
    assert missed[0].detail["measure"] == "blood-pressure"
    assert missed[0].patient == PKEY
    first_id = missed[0].id
    eng.evaluate(at(2, 11))
    assert [f.id for f in _open(eng, Kind.MISSED)] == [first_id]
    eng.acknowledge(first_id, "nurse@example.org", at(2, 11, 5))
    # Taken at 08:00, it reaches the region at 12:00 (the hub was offline): the data came.
    ingest(eng, at(2, 12), reading(SYS, at(2, 8), "128"), reading(DIA, at(2, 8), "82"))
    closed = eng.findings.finding(first_id)
    assert closed.closed_ms == at(2, 12)
    assert (closed.ack_by, closed.ack_ms) == ("nurse@example.org", at(2, 11, 5))
    eng.evaluate(at(2, 12, 30))
    assert len(_all(eng, Kind.MISSED)) == 1
    events = [e.event for e in eng.findings.history([first_id])]
    assert events == ["opened", "acknowledged", "closed"]


def test_missed_windows_in_a_row_are_one_finding_and_overnight_windows_span_midnight(
    tmp_path: Path, make_engine: MakeEngine
):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 12))
    ingest(eng, at(2, 12, 1), reading(BOARD_T, at(2, 12), "21", device=BOARD, unit="Cel"))
    eng.evaluate(at(3, 7, 1))
    spo2 = [f for f in _open(eng, Kind.MISSED) if f.detail["measure"] == "spo2"]
    assert [f.opened_ms for f in spo2] == [at(3, 7)]
    weight = [f for f in _open(eng, Kind.MISSED) if f.detail["measure"] == "body-weight"]
    # The weight window of day 2 started before the enrolment at 12:00: judged from day 3.
    assert weight == []
    eng.evaluate(at(5, 10, 1))
    bp = [f for f in _open(eng, Kind.MISSED) if f.detail["measure"] == "blood-pressure"]
    assert len(bp) == 1
    assert bp[0].opened_ms == at(3, 10)
    assert bp[0].detail["windows"] == 3


def test_hub_silent_opens_after_the_limit_on_ingestion_time_and_closes_on_contact(
    tmp_path: Path, make_engine: MakeEngine
):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    status(eng, at(2, 12, 50), 1)
    ingest(eng, at(2, 13), reading(BOARD_T, at(2, 13), "21", device=BOARD, unit="Cel"))
    # The hub's clock says nothing here: a reading stamped 14:59 arriving at 13:00 is contact
    # at 13:00.
    eng.evaluate(at(2, 13, 29, 59))
    assert _open(eng, Kind.HUB_SILENT) == []
    eng.evaluate(at(2, 13, 31))
    silent = _open(eng, Kind.HUB_SILENT)
    assert [f.opened_ms for f in silent] == [at(2, 13, 30)]
    # The broker's last will (offline) is no contact; a retained copy of an old status is not
    # either.
    status(eng, at(2, 13, 40), 0, state="offline")
    status(eng, at(2, 14), 1, retained=True)
    assert [f.id for f in _open(eng, Kind.HUB_SILENT)] == [silent[0].id]
    status(eng, at(2, 15, 2), 2)
    assert _open(eng, Kind.HUB_SILENT) == []
    assert eng.findings.finding(silent[0].id).closed_ms == at(2, 15, 2)


def test_battery_low_once_per_low_spell(tmp_path: Path, make_engine: MakeEngine):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    status(eng, at(2, 9), 1, battery=60)
    status(eng, at(2, 11), 2, battery=15)
    status(eng, at(2, 11, 30), 3, battery=8)
    low = _open(eng, Kind.BATTERY_LOW)
    assert [(f.opened_ms, f.detail["percent"]) for f in low] == [(at(2, 11), 8)]
    status(eng, at(2, 11, 30), 3, battery=8, retained=True)  # the same document again
    status(eng, at(2, 16), 4, battery=100)
    assert _open(eng, Kind.BATTERY_LOW) == []
    assert eng.findings.finding(low[0].id).closed_ms == at(2, 16)
    assert len(_all(eng, Kind.BATTERY_LOW)) == 1


def test_an_alert_opens_once_and_replayed_or_stale_data_raise_nothing_new(
    tmp_path: Path, make_engine: MakeEngine
):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    high = frozenset({"threshold-above"})
    alert = reading(SYS, at(3, 2, 10), "182", flags=high)
    ingest(eng, at(3, 2, 10, 5), alert)
    opened = _open(eng, Kind.ALERT)
    assert [f.opened_ms for f in opened] == [at(3, 2, 10, 5)]
    ingest(eng, at(3, 2, 20), alert)  # the same reading again
    assert [f.id for f in _open(eng, Kind.ALERT)] == [opened[0].id]
    ingest(eng, at(3, 8), reading(SYS, at(3, 7, 55), "131"))
    assert _open(eng, Kind.ALERT) == []
    ingest(eng, at(3, 9), alert)  # replayed after it ended: not new
    eng.evaluate(at(3, 9, 1))
    assert len(_all(eng, Kind.ALERT)) == 1
    # Taken 20 hours before it arrived: recorded, closed at once, never on the worklist.
    stale = reading(WEIGHT, at(3, 10), "101.5", flags=high, unit="kg")
    ingest(eng, at(4, 6), stale)
    quiet = [f for f in _all(eng, Kind.ALERT) if f.detail["mdc_code"] == WEIGHT]
    assert len(quiet) == 1
    assert quiet[0].closed_ms == quiet[0].opened_ms
    assert not any(f.detail.get("mdc_code") == WEIGHT for f in _open(eng, Kind.ALERT))


def test_device_not_seen_board_gap_and_clock_off(tmp_path: Path, make_engine: MakeEngine):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    ingest(eng, at(2, 8), reading(BOARD_T, at(2, 8), "21", device=BOARD, unit="Cel"))
    clock = frozenset({"device-clock-offset-s:31536000", "device-clock-read-ms:1772400000000"})
    ingest(eng, at(2, 8, 1), reading(SYS, at(2, 8), "120", flags=clock))
    eng.evaluate(at(2, 8, 16))
    unseen = _open(eng, Kind.DEVICE_UNSEEN)
    assert [(f.device, f.opened_ms) for f in unseen] == [(BOARD, at(2, 8, 15))]
    clock_off = _open(eng, Kind.CLOCK_OFF)
    assert [(f.device, f.opened_ms) for f in clock_off] == [(CUFF, at(2, 8, 1))]
    set_right = frozenset({"device-clock-offset-s:0", "device-clock-read-ms:1772500000000"})
    ingest(eng, at(2, 9), reading(SYS, at(2, 9), "121", flags=set_right))
    assert _open(eng, Kind.CLOCK_OFF) == []
    ingest(eng, at(2, 9, 5), reading(BOARD_T, at(2, 9, 5), "21", device=BOARD, unit="Cel"))
    assert _open(eng, Kind.DEVICE_UNSEEN) == []
    assert eng.findings.finding(unseen[0].id).closed_ms == at(2, 9, 5)


def test_readings_held_unattributed_open_until_released(tmp_path: Path, make_engine: MakeEngine):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    other = "hub-0002"
    r = WireReading("s", SYS, "mm[Hg]", at(2, 7), None, "nan", frozenset(), CUFF)
    eng.enrolments.hold([HeldReading("k1", other, r, at(2, 7, 1))])
    eng.evaluate(at(2, 7, 2))
    held = _open(eng, Kind.HELD)
    assert [(f.hub, f.opened_ms, f.detail["count"]) for f in held] == [(other, at(2, 7, 1), 1)]
    eng.enrolments.release(["k1"])
    eng.evaluate(at(2, 7, 30))
    assert _open(eng, Kind.HELD) == []


def test_judging_again_changes_nothing(tmp_path: Path, make_engine: MakeEngine):
    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    eng.evaluate(at(3, 12))
    first = sorted(f.id for f in eng.findings.open_findings())
    assert first, "a day without anything opens findings"
    for minute in range(1, 30):
        eng.evaluate(at(3, 12, minute))
    assert sorted(f.id for f in eng.findings.open_findings()) == first
    assert {f.hub for f in eng.findings.open_findings()} == {HUB}


def test_changed_findings_are_written_as_fhir_ndjson(tmp_path: Path, make_engine: MakeEngine):
    import json

    from region.findings.service import FindingsNdjson

    eng = make_engine(tmp_path / "s.db", enrolled_ms=at(2, 0))
    out = tmp_path / "findings.ndjson"
    eng._on_change = FindingsNdjson(out)
    ingest(eng, at(2, 8), reading(BOARD_T, at(2, 8), "21", device=BOARD, unit="Cel"))
    eng.evaluate(at(2, 10, 1))
    missed = _open(eng, Kind.MISSED)[0]
    eng.acknowledge(missed.id, "nurse@example.org", at(2, 10, 5))
    ingest(eng, at(2, 10, 30), reading(SYS, at(2, 10, 20), "120"))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    versions = [r for r in lines if r["id"] == f"finding-{missed.id}"]
    assert [r["status"] for r in versions] == ["requested", "accepted", "completed"]
    assert versions[-1]["owner"]["identifier"]["value"] == "nurse@example.org"
    assert {r["resourceType"] for r in lines} == {"Task"}
