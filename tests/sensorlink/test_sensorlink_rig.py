"""End-to-end on the virtual rig: MicroPython firmware, pty, drivers.serial, commit and ACK."""

from __future__ import annotations

from pathlib import Path

import pytest
from sensorlink_rig import SCENARIO, Collector, CorruptingBridge, SimBoard, eventually

from drivers.serial import SensorBoardLink
from protocols.sensorlink import BadFrameReason, Pong

pytestmark = pytest.mark.micropython

WALL_MS = 1_700_000_000_000


async def ping_through_noise(link: SensorBoardLink) -> Pong:
    """PING until a PONG with our nonce gets through (either may be corrupted)."""
    for _ in range(20):
        nonce = link.ping()

        def answered(n: int = nonce) -> bool:
            return link.last_pong is not None and link.last_pong.nonce == n

        try:
            await link.wait_until(answered, 1.0)
        except TimeoutError:
            continue
        assert link.last_pong is not None
        return link.last_pong
    raise AssertionError("no PONG in 20 tries")


def assert_exactly_once(col: Collector, expected: dict[int, int]) -> None:
    """Every boot's readings 0..n-1 arrived once, in order (at least ``expected[boot]``)."""
    assert col.duplicates == 0
    seen = col.by_boot()
    for boot, n in expected.items():
        assert seen.get(boot, [])[:n] == list(range(n)), f"boot {boot:#x}"
    for seqs in seen.values():
        assert seqs == list(range(len(seqs)))


async def test_readings_flow_with_values_units_and_wall_time(tmp_path: Path) -> None:
    col = Collector()
    async with (
        SimBoard(tmp_path, SCENARIO) as board,
        SensorBoardLink(str(board.port), col, wall_clock_ms=lambda: WALL_MS) as link,
    ):
        await link.wait_until(lambda: len(col.readings) >= 120, timeout_s=10)
        assert link.hello is not None
        assert link.hello.board_id == "sim-0001"
        assert link.hello.selftest == 0
        boot = link.hello.boot_id
    assert_exactly_once(col, {boot: 120})
    temps = [r.value for r in col.readings if r.kind == 1]
    cycle = SCENARIO["temperature_cC"]
    assert temps == [cycle[i % len(cycle)] for i in range(len(temps))]
    assert any(r.wall_ms is not None and r.wall_ms >= WALL_MS for r in col.readings)


async def test_unplug_and_replug_delivers_everything_logged_before_the_power_cut(
    tmp_path: Path,
) -> None:
    col = Collector()
    board = SimBoard(tmp_path, SCENARIO)
    await board.plug()
    try:
        async with SensorBoardLink(str(board.port), col, reconnect_initial_s=0.05) as link:
            await link.wait_until(lambda: len(col.readings) >= 60, timeout_s=10)
            assert link.hello is not None
            first_boot = link.hello.boot_id
            col.gate.clear()  # the store stalls: the board now holds unacknowledged readings
            held = len(col.readings)
            await eventually(lambda: len(board.flash_log()) >= held + 150, 10, "backlog")
            await board.unplug()  # power cut: kill -9 and the pty disappears
            col.gate.set()  # power cut: kill -9 and the pty disappears
            await link.wait_until(lambda: not link.connected, timeout_s=5)
            logged = [r for r in board.flash_log() if r.boot_id == first_boot]
            assert logged
            await board.plug()
            await link.wait_until(
                lambda: link.hello is not None and link.hello.boot_id != first_boot, timeout_s=10
            )
            second_boot = link.hello.boot_id
            await link.wait_until(
                lambda: (
                    len(col.by_boot().get(first_boot, [])) >= len(logged)
                    and len(col.by_boot().get(second_boot, [])) >= 30
                ),
                timeout_s=15,
            )
            assert link.connects >= 2
    finally:
        await board.unplug()
    assert_exactly_once(col, {first_boot: len(logged), second_boot: 30})
    assert len(col.by_boot()[first_boot]) == len(logged)


async def test_hub_absent_for_a_long_stretch_then_catch_up(tmp_path: Path) -> None:
    col = Collector()
    async with SimBoard(tmp_path, SCENARIO) as board:
        await eventually(lambda: len(board.flash_log()) >= 500, 20, "board logs while hub away")
        backlog = len(board.flash_log())
        async with SensorBoardLink(str(board.port), col) as link:
            await link.wait_until(lambda: len(col.readings) >= backlog + 20, timeout_s=20)
            assert link.hello is not None
            boot = link.hello.boot_id
    assert_exactly_once(col, {boot: backlog + 20})


async def test_corrupt_bytes_and_oversized_frames_are_survived(tmp_path: Path) -> None:
    col = Collector()
    seed = 20240501
    async with SimBoard(tmp_path, SCENARIO) as board:
        with CorruptingBridge(board.port, tmp_path, p=0.15, seed=seed) as bridge:
            async with SensorBoardLink(str(bridge.port), col, keepalive_s=0.5) as link:
                await link.wait_until(lambda: len(col.readings) >= 50, timeout_s=15)
                bridge.inject_oversized()
                await link.wait_until(lambda: len(col.readings) >= 400, timeout_s=30)
                assert link.hello is not None
                boot = link.hello.boot_id
                reasons = dict(link.bad_frame_reasons)
                pong = await ping_through_noise(link)
    assert bridge.corrupted > 5, f"seed {seed}"
    assert reasons.get(BadFrameReason.OVERSIZED, 0) >= 1, f"seed {seed}: {reasons}"
    assert sum(reasons.values()) >= 5, f"seed {seed}: {reasons}"
    assert pong.bad_frames >= 1, f"seed {seed}: the board saw no bad frame"
    assert_exactly_once(col, {boot: 400})


async def test_board_reboot_mid_stream_restarts_the_sequence_under_a_new_boot_id(
    tmp_path: Path,
) -> None:
    col = Collector()
    async with (
        SimBoard(tmp_path, SCENARIO) as board,
        SensorBoardLink(str(board.port), col) as link,
    ):
        await link.wait_until(lambda: len(col.readings) >= 60, timeout_s=10)
        assert link.hello is not None
        first_boot = link.hello.boot_id
        col.gate.clear()  # unacknowledged readings pile up on the board, then it reboots
        held = len(col.readings)
        await eventually(lambda: len(board.flash_log()) >= held + 150, 10, "backlog")
        link.reboot()
        await eventually(lambda: board.starts == 2, 10, "board reset")
        col.gate.set()
        await link.wait_until(
            lambda: link.hello is not None and link.hello.boot_id != first_boot, timeout_s=10
        )
        second_boot = link.hello.boot_id
        await link.wait_until(lambda: len(col.by_boot().get(second_boot, [])) >= 60, 10)
        logged_first = len([r for r in board.flash_log() if r.boot_id == first_boot])
        await link.wait_until(lambda: len(col.by_boot()[first_boot]) >= logged_first, 10)
        assert board.starts == 2
    assert_exactly_once(col, {first_boot: logged_first, second_boot: 60})
