"""The reference day: deterministic, what the issue lists, batched by the default policy."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from protocols.uplink import CODED_FLAG, BatchHeader, Priority, encode_body
from protocols.uplink.body import decode_body
from rig.batch_plan import BatchPolicy, plan_batches
from rig.bench import wire
from rig.dayfile import readings_from_jsonl, to_jsonl
from rig.refday import (
    CONTINUOUS_DELAY_MS,
    DAY_MS,
    NARHUB_PRIVATE_BASE,
    DayReading,
    reference_day,
)

DAY = reference_day()


def test_same_seed_same_day_other_seed_other_home() -> None:
    assert reference_day() == DAY
    other = reference_day(7)
    assert other != DAY
    assert {r.device for r in other}.isdisjoint({r.device for r in DAY} - {"hub"})


def test_the_day_holds_what_the_issue_lists() -> None:
    codes = Counter(r.mdc_code for r in DAY)
    assert codes[150021] == codes[150022] == codes[150023] == codes[149546] == 2  # BP twice
    assert (codes[188736], codes[150364]) == (1, 2)  # weight once, temperature twice
    assert (codes[160188], codes[8417864]) == (4, 4)  # glucose four times with context
    assert all(CODED_FLAG in r.flags for r in DAY if r.mdc_code == 8417864)
    night = [r for r in DAY if r.mdc_code == 150456 and r.priority is Priority.CLINICAL]
    assert len(night) == 8 * 3600 + 2  # 8 h at 1 Hz and the two non-alert spot checks
    assert any(r.special == "nan" for r in night)
    assert codes[147842] == 1800  # 30 min walk
    assert codes[147240] > 2500  # and every RR interval
    assert codes[NARHUB_PRIVATE_BASE + 1] == codes[NARHUB_PRIVATE_BASE + 2] == 2 * 1440
    assert 180 <= codes[NARHUB_PRIVATE_BASE + 3] <= 220  # about 200 motion events
    assert sum(1 for r in DAY if r.priority is Priority.TELEMETRY) == 4 * 288
    assert [r.t_ms for r in DAY] == sorted(r.t_ms for r in DAY)
    assert DAY[-1].t_ms - DAY[0].t_ms < DAY_MS


def test_shared_batches_respect_every_deadline() -> None:
    batches = plan_batches(DAY)
    assert sum(len(b.readings) for b in batches) == len(DAY)
    by_key = {(r.stream, r.t_ms, str(r.value)): r for r in DAY}
    for batch in batches:
        for reading in batch.readings:
            original = by_key[(reading.stream, reading.t_ms, str(reading.value))]
            assert batch.created_ms <= original.t_ms + original.max_delay_ms
            assert batch.priority <= original.priority
    alerts = [b for b in batches if b.priority is Priority.ALERT]
    assert len(alerts) == 1
    assert len(batches) < 2 * DAY_MS // CONTINUOUS_DELAY_MS


def test_per_priority_batches_hold_one_priority() -> None:
    for batch in plan_batches(DAY[:5000], BatchPolicy.PER_PRIORITY):
        by_stream = {r.stream: r for r in DAY[:5000]}
        assert {by_stream[r.stream].priority for r in batch.readings} == {batch.priority}


def test_every_batch_of_the_day_round_trips() -> None:
    for seq, batch in enumerate(plan_batches(DAY)):
        header = BatchHeader(
            "hub-0001", "5f3a9c0e12ab", seq, batch.created_ms, batch.priority, len(batch.readings)
        )
        assert (
            decode_body(encode_body(header, batch.readings), "hub-0001").readings == batch.readings
        )


def test_jsonl_round_trip_and_forms() -> None:
    assert readings_from_jsonl(to_jsonl(DAY[:3000])) == DAY[:3000]
    lines = [
        '{"stream":"d/150364","mdc_code":150364,"unit":"Cel","t":"2025-03-12T06:00:00.250Z","v":37.20}',
        "",
        '{"stream":"d/150456","mdc_code":150456,"unit":"%","t":1741759200000,"v":"nan","priority":"alert"}',
    ]
    a, b = readings_from_jsonl(lines)
    assert (a.t_ms, b.t_ms) == (1741759200000, 1741759200250)
    assert (str(b.value), b.device) == ("37.20", "d")
    assert (a.special, a.priority, a.max_delay_ms) == ("nan", Priority.ALERT, 0)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1]", "not a JSON object"),
        ('{"stream":"s"}', "missing"),
        ('{"stream":"s","mdc_code":1,"unit":"1","t":"yesterday","v":1}', "ISO 8601"),
        ('{"stream":"s","mdc_code":1,"unit":"1","t":"2025-03-12T06:00:00","v":1}', "offset"),
        ('{"stream":"s","mdc_code":1,"unit":"1","t":0,"v":"high"}', "v must"),
        ('{"stream":"s","mdc_code":1,"unit":"1","t":0,"v":1,"priority":"urgent"}', "priority"),
    ],
)
def test_bad_jsonl_names_the_line(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=f"line 1: .*{problem}"):
        readings_from_jsonl([line])


def test_bench_reports_both_days(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    path.write_text("\n".join(to_jsonl(DAY[:4000])) + "\n")
    result = wire.run(duration_s=0.01, input_path=path)
    json.dumps(result)
    ref = result["reference_day"]
    assert isinstance(ref, dict)
    assert ref["uplink"]["readings"] == len(DAY)
    assert (
        ref["uplink"]["bytes_per_reading"] < ref["json_senml"]["same_batches"]["bytes_per_reading"]
    )
    given = result["input"]
    assert isinstance(given, dict)
    assert given["readings"] == 4000
    # The breakdown's exact parts are the sizes' own; the coded parts fit in the bodies' rANS
    # streams; the ablation is a real saving.
    parts = ref["cost_breakdown"]
    assert parts["signatures_bytes"] == ref["uplink"]["signature_bytes"]
    coded = parts["coded_times_bytes"] + parts["coded_values_bytes"]
    assert parts["coded_times_bytes"] > 0
    assert parts["coded_values_bytes"] > 0
    assert 0 < coded + parts["coded_structure_bytes"] < ref["uplink"]["body_bytes"]
    assert 0 < parts["device_identifiers_bytes"] < ref["uplink"]["body_bytes"]


def test_day_readings_are_frozen() -> None:
    reading: DayReading = DAY[0]
    with pytest.raises(AttributeError):
        reading.t_ms = 0  # type: ignore[misc]
