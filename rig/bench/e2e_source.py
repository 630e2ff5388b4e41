"""The paced source of ``narhub bench e2e``: boards and straps on the bench's own clock.

A step offers ``rate`` readings per second for ``duration_s``: reading ``k`` of a board is due
at ``start + offset + k / rate_per_board`` (boards staggered by a fraction of a period), and
is taken into the board's ring when due, whatever the hub does: the clock never waits for the
hub, only the board's sender does (its window, its ACKs). When the bench's event loop wakes
late, the readings due meanwhile are taken at once, and how late each was is recorded
(``behind_schedule``). Straps notify on a clock of their own each, sequentially, as a device
does; a notification that waits for the previous one is recorded as late in the same way.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rig.bench.e2e_board import EmulatedBoard

_NS = 1_000_000_000
#: The source clock's tick: readings due within it are taken together (a board's sampler
#: timer has this order of resolution too).
TICK_S = 0.002


@dataclass
class StepWindow:
    """Which readings a step offered, by source: ``[first, end)`` ledger indices."""

    boards: dict[str, tuple[int, int]] = field(default_factory=dict)
    straps: dict[str, tuple[int, int]] = field(default_factory=dict)
    started_ns: int = 0
    ended_ns: int = 0
    #: How late each reading was taken after it was due, ns.
    behind_ns: array[int] = field(default_factory=lambda: array("q"))

    @property
    def offered(self) -> int:
        """Readings offered by every source."""
        spans = [*self.boards.values(), *self.straps.values()]
        return sum(end - first for first, end in spans)


class Strap(Protocol):
    """What the source needs of a strap (:class:`rig.bench.e2e_ble.CountingStrap`)."""

    address: str
    taken_ns: array[int]

    async def notify(self) -> None:
        """Notify the next number."""


class PacedSource:
    """Boards and straps driven at a fixed offered rate."""

    def __init__(self, boards: Sequence[EmulatedBoard], straps: Sequence[Strap] = ()) -> None:
        self.boards = list(boards)
        self.straps = list(straps)

    async def step(self, board_rate: float, strap_rate: float, duration_s: float) -> StepWindow:
        """Offer ``board_rate`` readings/s over all boards and ``strap_rate`` notifications/s
        per strap for ``duration_s``; returns once the last reading was taken."""
        window = StepWindow()
        for board in self.boards:
            window.boards[board.board_id] = (board.head, board.head)
        for strap in self.straps:
            window.straps[strap.address] = (len(strap.taken_ns), len(strap.taken_ns))
        start = time.monotonic_ns()
        window.started_ns = start
        async with asyncio.TaskGroup() as group:
            if self.boards and board_rate > 0:
                group.create_task(
                    self._boards(board_rate / len(self.boards), duration_s, start, window),
                    name="e2e-source-boards",
                )
            if strap_rate > 0:
                for strap in self.straps:
                    group.create_task(
                        self._strap(strap, strap_rate, duration_s, start, window),
                        name="e2e-source-strap",
                    )
        window.ended_ns = time.monotonic_ns()
        for board in self.boards:
            window.boards[board.board_id] = (window.boards[board.board_id][0], board.head)
        for strap in self.straps:
            window.straps[strap.address] = (window.straps[strap.address][0], len(strap.taken_ns))
        return window

    async def _boards(
        self, per_board: float, duration_s: float, start: int, window: StepWindow
    ) -> None:
        boards = self.boards
        total = round(per_board * duration_s)
        period = _NS / per_board
        offsets = [start + i * period / len(boards) for i in range(len(boards))]
        taken = [0] * len(boards)
        behind = window.behind_ns
        while True:
            now = time.monotonic_ns()
            next_due = math.inf
            for i, board in enumerate(boards):
                done = taken[i]
                due = 0
                if now >= offsets[i]:
                    due = min(total, math.floor((now - offsets[i]) / period) + 1)
                if due > done:
                    behind.extend(now - round(offsets[i] + k * period) for k in range(done, due))
                    board.take(due - done, now)
                    taken[i] = done = due
                if done < total:
                    next_due = min(next_due, offsets[i] + done * period)
            if next_due == math.inf:
                return
            delay_s = max(TICK_S, (next_due - time.monotonic_ns()) / _NS)
            await asyncio.sleep(delay_s)  # the source's clock: the schedule, not a sync

    async def _strap(
        self, strap: Strap, rate: float, duration_s: float, start: int, window: StepWindow
    ) -> None:
        total = round(rate * duration_s)
        period = _NS / rate
        for k in range(total):
            due = start + round(k * period)
            delay_ns = due - time.monotonic_ns()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / _NS)  # the strap's own clock
            window.behind_ns.append(max(0, time.monotonic_ns() - due))
            await strap.notify()
