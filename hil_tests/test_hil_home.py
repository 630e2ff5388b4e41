"""Scenarios in the home: the region's FHIR output must hold every ledger reading exactly once.

Each test plays a scenario (hil_tests/scenarios/) on the rig chosen with ``--rig`` and holds
the region's output against the rig's ledger (:func:`rig.ledger.reconcile`).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Literal

import pytest
from hil_rig import Home, Rig

from rig.home import HubOptions

pytestmark = [pytest.mark.broker, pytest.mark.micropython, pytest.mark.slow]


async def _wait_ledger(home: Home, at_least: int, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while len([e for e in home.ledger() if e.source == "ble"]) < at_least:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # another process's file: poll it


@pytest.mark.parametrize("ble_backend", ["sim", "bluez"])
async def test_a_compressed_day_arrives_exactly_once(
    rig: Rig, workdir: Path, ble_backend: Literal["sim", "bluez"]
) -> None:
    """On ``sim`` the hub drives the rig's radio over HCI; on ``bluez`` it runs bleak's BlueZ
    backend and its own pairing agent against the virtual BlueZ (the glucose meter bonds)."""
    rig.require(
        "ble:thermometer",
        "ble:blood_pressure",
        "ble:scale",
        "ble:pulse_oximeter",
        "ble:glucose",
        "board",
    )
    options = HubOptions(ble_backend=ble_backend)
    async with rig.home("compressed_day", workdir, hub_options=options) as home:
        await home.wait_rig_done(timeout_s=60)
        result = await home.wait_delivered(timeout_s=60)
    assert result.exact, result.explain()
    # The day really happened: every kind produced what the schedule says.
    assert result.produced["thermometer"] == 6
    assert result.produced["blood_pressure"] == 4 * 4  # systolic, diastolic, mean, pulse
    assert result.produced["scale"] == 2
    assert result.produced["pulse_oximeter"] == 8 * 2  # SpO2 and pulse rate
    assert result.produced["glucose"] >= 3
    assert result.produced["air-temperature"] > 10


async def test_broker_down_for_the_night_loses_nothing(rig: Rig, workdir: Path) -> None:
    rig.require("ble:thermometer", "ble:scale", "board", "broker-control")
    async with rig.home("broker_night", workdir) as home:
        await _wait_ledger(home, 2, timeout_s=30)
        await home.broker_down()
        produced_before = len(home.ledger())
        await _wait_ledger(home, 8, timeout_s=30)
        assert len(home.fhir()) <= produced_before  # nothing can arrive while it is down
        await home.broker_up()
        await home.wait_rig_done(timeout_s=60)
        result = await home.wait_delivered(timeout_s=60)
    assert result.exact, result.explain()
    assert result.produced["thermometer"] == 12


async def test_hub_killed_at_random_moments_loses_and_doubles_nothing(
    rig: Rig, workdir: Path
) -> None:
    rig.require("ble:thermometer", "ble:glucose", "ble:pulse_oximeter", "board", "hub-power")
    seed = int(os.environ.get("HIL_SEED", random.randrange(2**32)))
    rnd = random.Random(seed)
    print(f"power cuts seed: HIL_SEED={seed}")  # noqa: T201 - reproduce a failure
    cuts_ms: list[int] = []
    async with rig.home("power_cuts", workdir) as home:
        for _ in range(3):
            # A power cut at a random moment: a schedule, not a synchronisation.
            await asyncio.sleep(rnd.uniform(0.5, 3.0))
            cuts_ms.append(time.time_ns() // 1_000_000)
            home.kill_hub()
            await home.start_hub()
        await home.wait_rig_done(timeout_s=60)
        result = await home.wait_delivered(timeout_s=30, check=False)
    where = f"(HIL_SEED={seed}; {result.explain()})"
    # Nothing arrives twice (the region writes each Observation id once) or from nowhere.
    assert not result.duplicated, f"doubled after power cuts {where}"
    assert not result.unexpected, f"unknown readings {where}"
    # Sources that keep a reading until the hub's commit (glucose records behind RACP
    # cursors, sensor boards' ACK after the commit) lose nothing.
    lost = [e for e in result.missing if e.kind == "glucose" or e.source == "board"]
    assert not lost, f"lost after power cuts: {lost[:5]} {where}"
    assert result.produced["thermometer"] == 14
    # A live indication is confirmed by the host stack as it arrives (ATT, Core Vol 3 Part F
    # 3.4.7); one that arrived in the moment before a cut, before its commit, is gone with
    # the power (docs/rig.md). Only such a reading may be missing: taken shortly before a cut
    # (it reaches the hub within a connection's setup after it is taken).
    unexplained = [
        e
        for e in result.missing
        if e.taken_ms is None or not any(0 <= cut - e.taken_ms <= CUT_WINDOW_MS for cut in cuts_ms)
    ]
    assert not unexplained, f"lost, not taken just before a cut: {unexplained[:5]} {where}"


#: How long before a power cut a live indication may have been taken and still be lost with
#: it: the device's connection setup and the delivery, then the hub's commit (at once for a
#: spot reading, gateway/outbox/worker.py).
CUT_WINDOW_MS = 5_000


async def test_sensor_board_unplugged_and_replugged(rig: Rig, workdir: Path) -> None:
    rig.require("ble:thermometer", "board", "board-power")
    async with rig.home("board_unplug", workdir) as home:
        await home.wait_rig_done(timeout_s=60)
        result = await home.wait_delivered(timeout_s=60)
    assert result.exact, result.explain()
    boots = {e.seq.split("/")[0] for e in home.ledger() if e.source == "board"}
    assert len(boots) >= 2, "the board did not boot again after the replug"


async def test_link_lost_in_the_middle_of_a_stored_record_download(rig: Rig, workdir: Path) -> None:
    rig.require("ble:glucose", "ble-range")
    # The meter fills its memory before the hub is up; the link then drops after 7 records
    # of the download, and the hub must resume from its cursor without gaps or repeats.
    async with rig.home("racp_cut", workdir, start_hub=False) as home:
        await home.wait_rig_done(timeout_s=30)
        await home.start_hub()
        result = await home.wait_delivered(timeout_s=60)
    assert result.exact, result.explain()
    assert result.produced["glucose"] >= 30


async def test_corrupt_serial_bytes_lose_and_double_nothing(rig: Rig, workdir: Path) -> None:
    rig.require("ble:thermometer", "board")
    async with rig.home("corrupt_serial", workdir) as home:
        await home.wait_rig_done(timeout_s=60)
        result = await home.wait_delivered(timeout_s=60)
        corrupted = home.rig_facts()["corrupted_chunks"]["sim-noisy-01"]
    assert corrupted > 0, "the cable was not bad: the test proves nothing"
    assert result.exact, result.explain()
    assert result.produced["air-temperature"] > 5


async def test_cuff_out_of_range_in_the_middle_of_its_stored_readings(
    rig: Rig, workdir: Path
) -> None:
    rig.require("ble:blood_pressure", "ble-range")
    # The cuff keeps eight readings until a hub listens; the link then drops (supervision
    # timeout) after three indications, and the cuff delivers the rest on the next link.
    async with rig.home("cuff_cut", workdir, start_hub=False) as home:
        await home.wait_rig_done(timeout_s=30)
        await home.start_hub()
        result = await home.wait_delivered(timeout_s=60)
        await home.stop_rig()
        drops = home.rig_facts()["device_stats"]["C0:FF:EE:00:06:02"]["drops"]
    assert drops >= 1, "the link never dropped: the test proves nothing"
    assert result.exact, result.explain()
    assert result.produced["blood_pressure"] == 8 * 4
