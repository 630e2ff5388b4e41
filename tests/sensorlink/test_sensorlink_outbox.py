"""A board on the virtual rig feeding the real outbox: the ACK waits for the SQLite commit."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from sensorlink_rig import SCENARIO, SimBoard, eventually

from gateway.board_source import (
    NARHUB_PRIVATE_BASE,
    BoardOffsets,
    BoardTimes,
    board_readings,
    run_board,
)
from gateway.outbox import AsyncOutbox, Outbox
from protocols.sensorlink import SequencedReading


def test_resent_board_readings_are_stored_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    first = [SequencedReading("b1", 7, seq, 1, 0, seq * 1000, 2150 + seq, None) for seq in range(5)]
    assert outbox.add(board_readings(first, hub_wall_ms=1)) == 5
    # After a hub restart the board resends what it never saw acknowledged.
    assert outbox.add(board_readings(first[2:], hub_wall_ms=2)) == 0
    # The same sequence number under a new boot id is a new reading.
    rebooted = [SequencedReading("b1", 8, 0, 1, 0, 0, 2100, None)]
    assert outbox.add(board_readings(rebooted, hub_wall_ms=3)) == 1
    assert outbox.unbatched_count() == 6
    outbox.close()


def test_board_values_are_exact_in_the_kind_unit() -> None:
    (reading,) = board_readings(
        [SequencedReading("b1", 7, 0, 1, 0, 0, 2150, 1_700_000_000_123)], hub_wall_ms=5
    )
    assert (reading.value, reading.unit) == (Decimal("21.50"), "Cel")
    assert str(reading.value) == "21.50"
    assert reading.mdc_code == NARHUB_PRIVATE_BASE + 1
    assert reading.effective_ms() == 1_700_000_000_123  # the board's synced wall clock


def _frame(times: BoardTimes, seqs: range, at: int) -> list[int]:
    rows = [SequencedReading("b1", 7, s, 4, 0, 10_000 + s * 500, 0, None) for s in seqs]
    # The hub's monotonic clock runs 5e6 ms behind its wall clock here; only ages count.
    mono_ns = (at - 5_000_000) * 1_000_000
    dated = board_readings(rows, hub_wall_ms=at, times=times, hub_mono_ns=mono_ns)
    return [r.effective_ms() for r in dated]


def test_a_backlog_without_wall_time_is_dated_by_the_board_monotonic_clock() -> None:
    """A board that sampled while no hub listened: its backlog arrives in frames read at once,
    each reading dated by its ``mono_ms`` and the boot's one offset (fixed by the first
    frame), never all at the arrival time: two readings of one sensor never share a time
    (they would share a region identifier)."""
    arrival = 1_800_000_000_000
    times = BoardTimes()
    first = _frame(times, range(4), arrival)
    assert first == [arrival - 1500, arrival - 1000, arrival - 500, arrival]
    # The backlog's next frame, read 10 ms later: never after its arrival, a millisecond apart.
    second = _frame(times, range(4, 8), arrival + 10)
    assert second == [arrival + 10, arrival + 11, arrival + 12, arrival + 13]
    # Live, 6 s later on both clocks: the boot's offset again.
    (live,) = _frame(times, range(15, 16), arrival + 6000)
    assert live == arrival + 6000
    # A reading with the board's own wall time keeps it.
    stamped = [SequencedReading("b1", 7, 9, 4, 0, 15_000, 0, 1_799_999_999_999)]
    (kept,) = board_readings(stamped, hub_wall_ms=arrival + 5000, times=times)
    assert kept.effective_ms() == 1_799_999_999_999


def test_a_restarted_hub_dates_the_rest_of_a_boot_as_the_one_before(tmp_path: Path) -> None:
    """The boot's offset is kept in a file (with the host's boot id): a second hub process
    dates the boot's later readings on the same scale, so none meets the time of one the
    first process dated; after a host reboot (another boot id) the offsets are dropped."""
    path = tmp_path / "board-offsets.json"
    arrival = 1_800_000_000_000
    first = _frame(BoardTimes(BoardOffsets(path, host_boot="host-a")), range(4), arrival)
    again = _frame(BoardTimes(BoardOffsets(path, host_boot="host-a")), range(4, 6), arrival + 9000)
    assert again == [arrival + 500, arrival + 1000]  # the first process's scale, not arrival
    assert not set(first) & set(again)
    fresh = _frame(BoardTimes(BoardOffsets(path, host_boot="host-b")), range(6, 7), arrival)
    assert fresh == [arrival]  # a new estimate: the offset of another host boot is gone


def test_a_step_of_the_hub_wall_clock_does_not_move_the_board_offset() -> None:
    """The offset lives on the monotonic clocks: a hub whose wall clock steps back a year
    between two frames dates the second frame by its own (wrong) wall clock at arrival, as
    every other source's readings (gateway/outbox/held.py fixes those), not by the first's."""
    times = BoardTimes()
    year_ms = 365 * 86_400_000
    first = [SequencedReading("b1", 7, 0, 4, 0, 10_000, 0, None)]
    board_readings(first, hub_wall_ms=1_800_000_000_000, times=times, hub_mono_ns=10**12)
    second = [SequencedReading("b1", 7, 1, 4, 0, 11_000, 0, None)]
    (r,) = board_readings(
        second,
        hub_wall_ms=1_800_000_001_000 - year_ms,
        times=times,
        hub_mono_ns=10**12 + 1_000_000_000,
    )
    assert r.effective_ms() == 1_800_000_001_000 - year_ms


@pytest.mark.micropython
async def test_firmware_readings_reach_the_outbox(tmp_path: Path) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3"))
    async with SimBoard(tmp_path, SCENARIO) as board:
        task = asyncio.create_task(run_board(f"serial:{board.port}", outbox.add), name="board")
        try:
            await eventually(lambda: outbox.outbox.unbatched_count() >= 40, 15, "40 readings")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    keys = outbox.outbox.known_keys()
    assert keys == outbox.outbox.unbatched_count()  # one stored reading per board reading
    outbox.close()
