"""``narhub sensors``: list the sensor boards plugged in, and flash the firmware onto one.

Flashing copies ``firmware/`` (the application, the ``sensorfw`` package and the board folder's
``board.py``) to the board with mpremote, one file per step so the CLI can draw a progress
bar, then resets the board. The board must already run MicroPython (flash the MicroPython UF2
or ESP32 image first; see firmware/README.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from drivers.serial import BoardPort, find_boards

#: Where the firmware sources live (a source checkout or an editable install).
FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
BOARDS = ("rp2040", "esp32")


class FlashError(RuntimeError):
    """Deploying the firmware failed; ``step`` names the file or command, ``advice`` what to do."""

    def __init__(self, step: str, reason: str, advice: str) -> None:
        self.step = step
        self.reason = reason
        self.advice = advice
        super().__init__(f"{step}: {reason}. {advice}")


@dataclass(frozen=True, slots=True)
class BoardSummary:
    """One row of ``narhub sensors list`` (``--json``: :meth:`to_json`)."""

    port: str
    board: str
    vid: str
    pid: str
    serial_number: str | None
    description: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def list_boards() -> list[BoardSummary]:
    """The sensor boards plugged in now, found by USB VID/PID (blocking, fast)."""
    return [_summary(b) for b in find_boards()]


def _summary(b: BoardPort) -> BoardSummary:
    return BoardSummary(
        b.device, b.board, f"{b.vid:04x}", f"{b.pid:04x}", b.serial_number, b.description
    )


@dataclass(frozen=True, slots=True)
class FlashStep:
    """One mpremote invocation of a flash plan."""

    label: str
    args: tuple[str, ...]


def flash_plan(port: str, board: str, *, firmware_dir: Path = FIRMWARE_DIR) -> list[FlashStep]:
    """The mpremote steps that deploy the firmware for ``board`` to ``port``.

    Raises:
        FlashError: unknown board name or missing firmware sources.
    """
    if board not in BOARDS:
        raise FlashError("board", f"unknown board {board!r}", f"use one of {', '.join(BOARDS)}")
    board_py = firmware_dir / "boards" / board / "board.py"
    if not board_py.exists():
        raise FlashError("firmware", f"{board_py} not found", "run from a narhub source checkout")
    connect = ("connect", port)
    steps = [FlashStep("mkdir sensorfw", (*connect, "fs", "mkdir", ":sensorfw"))]
    steps.extend(
        FlashStep(f"sensorfw/{s.name}", (*connect, "fs", "cp", str(s), f":sensorfw/{s.name}"))
        for s in sorted((firmware_dir / "sensorfw").glob("*.py"))
    )
    steps.append(FlashStep("board.py", (*connect, "fs", "cp", str(board_py), ":board.py")))
    steps.append(
        FlashStep("main.py", (*connect, "fs", "cp", str(firmware_dir / "main.py"), ":main.py"))
    )
    steps.append(FlashStep("reset", (*connect, "reset")))
    return steps


def _mpremote() -> list[str]:
    exe = shutil.which("mpremote")
    if exe:
        return [exe]
    return [sys.executable, "-m", "mpremote"]


def flash_board(
    port: str,
    *,
    board: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    firmware_dir: Path = FIRMWARE_DIR,
    timeout_s: float = 60.0,
) -> list[str]:
    """Deploy the firmware to the board on ``port``; return the step labels done.

    Args:
        port: the device path (``/dev/ttyACM0``).
        board: ``rp2040`` or ``esp32``; detected from the USB VID/PID when omitted.
        progress: called as ``progress(done, total, label)`` before each step and at the end.

    Raises:
        FlashError: the board type is unknown, mpremote is missing, or a step failed.
    """
    if board is None:
        found = {b.device: b.board for b in find_boards()}
        if port not in found:
            raise FlashError(
                "detect",
                f"{port} is not a known sensor board",
                "check `narhub sensors list`, or pass the board type explicitly",
            )
        board = found[port]
    steps = flash_plan(port, board, firmware_dir=firmware_dir)
    done: list[str] = []
    for i, step in enumerate(steps):
        if progress is not None:
            progress(i, len(steps), step.label)
        try:
            result = subprocess.run(  # noqa: S603 - argv built from our own plan, no shell
                [*_mpremote(), *step.args],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FlashError(
                step.label, type(exc).__name__, "install mpremote (pip install mpremote)"
            ) from exc
        if result.returncode != 0 and not (
            step.label == "mkdir sensorfw" and "exists" in result.stderr.lower()
        ):
            if "No module named mpremote" in result.stderr:
                raise FlashError(step.label, "mpremote is not installed", "pip install mpremote")
            raise FlashError(
                step.label,
                result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed",
                "check the cable and that no other program has the port open",
            )
        done.append(step.label)
    if progress is not None:
        progress(len(steps), len(steps), "done")
    return done
