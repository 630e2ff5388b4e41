"""``narhub bench e2e``: the bench's structure, its counting, and that it sees loss.

The bench runs for real here (the hub as a process, Mosquitto with TLS, the receiver), with
tiny steps; no figure is asserted, only what the bench reports and that a rate no board can
carry shows as loss, counted by identity at the far end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

import pytest

from rig.bench.e2e import run
from rig.bench.e2e_board import BoardLimits, EmulatedBoard, firmware_limits
from rig.bench.e2e_count import FhirTally, SourceLedger, figures, percentiles_ms
from rig.bench.e2e_machine import parse_rates

NARHUB = str(Path(sys.executable).parent / "narhub")

STEP_KEYS = {
    "rate_per_s",
    "duration_s",
    "offered",
    "delivered",
    "lost",
    "lost_by_cause",
    "doubled",
    "latency_ms",
    "latency_from_first_send_ms",
    "zero_loss",
    "drained",
    "drain_s",
    "hub",
    "source",
    "loadavg",
}
HUB_KEYS = {
    "cpu_s_per_1000_readings",
    "rss_peak_mib",
    "rss_hwm_mib",
    "disk_bytes_per_reading",
    "outbox_at_end_of_step",
    "outbox_after_drain",
}


def _check_step(step: dict[str, Any]) -> None:
    assert step.keys() >= STEP_KEYS, STEP_KEYS - step.keys()
    assert step["hub"].keys() >= HUB_KEYS, HUB_KEYS - step["hub"].keys()
    assert set(step["latency_ms"]) == {"p50", "p99", "max"}
    assert step["lost"] == step["offered"] - step["delivered"]
    assert len(step["loadavg"]["before"]) == 3
    assert len(step["loadavg"]["after"]) == 3


@pytest.mark.broker
def test_tiny_steps_report_every_figure_and_lose_nothing() -> None:
    out = subprocess.run(
        [
            NARHUB,
            "bench",
            "e2e",
            "--json",
            "--rates",
            "20,40",
            "--step-s",
            "3",
            "--confirm-s",
            "3",
            "--outage-s",
            "1.5",
            "--ble",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    machine = result["machine"]
    assert {"cpu_model", "cores", "python", "kernel"} <= machine.keys()
    assert len(result["loadavg"]["before"]) == 3
    assert [s["rate_per_s"] for s in result["steps"]] == [20.0, 40.0]
    for step in [*result["steps"], *result["confirm"], result["outage"]]:
        _check_step(step)
    # 20 and 40 readings/s over four boards and two straps are far below every limit.
    assert all(s["zero_loss"] for s in result["steps"]), result["steps"]
    assert {"e2e-board-0", "C0:FF:EE:00:E2:00"} <= result["steps"][0]["by_source"].keys()
    assert result["best_sustained_zero_loss_rate_per_s"] == 40.0
    outage = result["outage"]
    assert outage["rate_per_s"] == 4.0
    assert outage["broker_down_s"] >= 1.5
    assert outage["lost"] == 0
    assert outage["first_delivery_after_return_s"] is not None
    assert outage["backlog_delivered_after_return_s"] is not None
    assert result["region"]["unexpected_readings"] == 0


@pytest.mark.broker
def test_a_rate_no_board_can_carry_shows_as_loss() -> None:
    """One board at 5,000 readings/s: its UART carries a few hundred, its ring holds 512."""
    result = run(rates=(5000.0,), step_s=3.0, confirm_s=3.0, outage=False, boards=1)
    (step,) = result["steps"]
    _check_step(step)
    assert step["offered"] == 15_000
    assert not step["zero_loss"]
    assert step["lost"] > 10_000
    assert step["lost_by_cause"]["board_ring_full"] > 0
    assert step["source"]["boards"]["ring_peak"] == 512
    assert result["best_sustained_zero_loss_rate_per_s"] is None
    assert result["confirm"] == []
    assert result["outage"] is None


def test_board_limits_are_the_firmware_s() -> None:
    esp32, rp2040 = firmware_limits("esp32"), firmware_limits("rp2040", baud=9600)
    assert (esp32.ring_capacity, rp2040.ring_capacity) == (512, 256)
    assert esp32.window_readings == 64
    assert esp32.max_readings_per_frame == 16
    assert esp32.ack_timeout_ms == 1000
    assert esp32.max_retries == 5
    assert rp2040.line_bytes_per_s == 960


def test_a_full_ring_overwrites_its_oldest_reading_and_counts_it() -> None:
    """``sensorfw/store.py`` ``Store.append``: the oldest unacknowledged reading goes."""
    limits = BoardLimits("esp32", 4, 64, 16, 1000, 5, 1000, 115_200)
    master, slave = os.openpty()
    try:
        board = EmulatedBoard("b-0", 1, limits, master)
        board.take(10, now_ns=123)
        assert (board.tail, board.head, board.pending) == (6, 10, 4)
        assert list(board.overwritten) == [1] * 6 + [0] * 4
        assert (board.counters.dropped, board.counters.ring_peak) == (6, 4)
        assert list(board.taken_ns) == [123] * 10
        assert board._ack(7) == 2  # frees 6 and 7; 8 and 9 wait
        assert board.pending == 2
    finally:
        os.close(master)
        os.close(slave)


def test_rates_must_be_positive_and_increasing() -> None:
    assert parse_rates("100, 200,400") == (100.0, 200.0, 400.0)
    for bad in ("", "200,100", "0,10", "ten", "10,10"):
        with pytest.raises(ValueError, match="rates"):
            parse_rates(bad)


def _observation(device: str, code: int, value: int) -> str:
    return json.dumps(
        {
            "resourceType": "Observation",
            "code": {"coding": [{"code": str(code)}]},
            "device": {"identifier": {"value": device}},
            "valueQuantity": {"value": value},
        }
    )


def test_loss_is_counted_by_identity_not_by_count(tmp_path: Path) -> None:
    """Reading 1 twice does not make up for reading 2, which never came; reading 3 was
    overwritten in the ring (lost at the source); reading 9 was never offered."""
    output = tmp_path / "observations.ndjson"
    lines = [
        _observation("b-0", 7, 0),
        _observation("b-0", 7, 1),
        _observation("B-0", 7, 1),
        _observation("hub", 7, 2),  # another device: not the source's
        _observation("b-0", 8, 2),  # another code: not the source's
        _observation("b-0", 7, 9),
    ]
    output.write_text("".join(line + "\n" for line in lines))
    ledger = SourceLedger(
        "b-0",
        7,
        array("q", [0, 1_000_000, 2_000_000, 3_000_000]),
        bytearray([0, 0, 0, 1]),
        "board_ring_full",
        sent_ns=array("q", [500_000, 1_500_000, 0, 0]),
    )
    tally = FhirTally(output, {"b-0": ledger})
    tally.read(len(lines), lambda line: 10_000_000 + line * 1_000_000)
    count = figures({"b-0": (0, 4)}, {"b-0": ledger}, tally)
    assert (count.offered, count.delivered, count.lost, count.doubled) == (4, 2, 2, 1)
    assert count.lost_by_cause == {"after_source": 1, "board_ring_full": 1}
    assert tally.unexpected == 1
    assert sorted(count.latencies_ns) == [10_000_000, 10_000_000]
    assert sorted(count.sent_latencies_ns) == [9_500_000, 9_500_000]


def test_the_tally_reads_only_the_lines_the_receiver_reported(tmp_path: Path) -> None:
    output = tmp_path / "observations.ndjson"
    output.write_text(_observation("b-0", 7, 0) + "\n" + _observation("b-0", 7, 1)[:20])
    ledger = SourceLedger("b-0", 7, array("q", [0, 0]), bytearray(2), "board_ring_full")
    tally = FhirTally(output, {"b-0": ledger})
    tally.read(5, lambda _line: 1)  # one complete line only: a torn tail waits
    assert tally.lines == 1
    assert figures({"b-0": (0, 2)}, {"b-0": ledger}, tally).delivered == 1


def test_percentiles_are_nearest_rank() -> None:
    values = [n * 1_000_000 for n in range(1, 101)]
    assert percentiles_ms(values) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms([]) == {"p50": None, "p99": None, "max": None}
