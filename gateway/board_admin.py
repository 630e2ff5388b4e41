"""``narhub sensors``: list the sensor boards plugged in, and flash the firmware onto one.

Flashing copies ``firmware/`` (the application, the ``sensorfw`` package and the board folder's
``board.py``) to the board with mpremote, one file per step so the CLI can draw a progress
bar, then resets the board. The board must already run MicroPython (flash the MicroPython UF2
or ESP32 image first; see firmware/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.firmware_bundle import FIRMWARE_DIR
from drivers.errors import DeviceUnavailableError
from drivers.serial import BoardPort, find_boards, resolve_port
from drivers.serial._pyserial import SerialException, open_serial
from protocols.sensorlink import (
    SENSOR_KINDS,
    Capability,
    Config,
    Hello,
    HubHello,
    Ping,
    Pong,
    SelfTest,
    SensorLinkConnection,
)

#: Where the firmware sources live (a source checkout or an editable install).
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


# -- narhub sensors info ---------------------------------------------------------------------


class SensorInfoError(RuntimeError):
    """A board could not be asked: ``what`` is ``port`` (missing, busy) or ``board`` (no
    narhub firmware answered); ``hint`` says what to do."""

    def __init__(self, port: str, what: str, reason: str, hint: str) -> None:
        self.port = port
        self.what = what
        self.reason = reason
        self.hint = hint
        super().__init__(f"{port}: {reason}. {hint}")


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What a board says about itself (sensor link HELLO, CONFIG and PONG, spec §3.2/3.6/3.8).

    READINGS that arrive while asking are *not* acknowledged: the board keeps them for the hub.
    ``last_frame_age_s`` is how long ago the board's last frame arrived. Sensor link v1 carries
    no uptime; ``boot_id`` changes at every boot, and ``pending_readings`` (PONG) counts what the
    board holds for the hub.
    """

    port: str
    device: str
    board_id: str
    board_type: str | None
    firmware: str
    protocol_version: int
    boot_id: int
    sensors: tuple[str, ...]
    capabilities: tuple[str, ...]
    selftest_failed: tuple[str, ...]
    sampling_intervals_ms: dict[str, int]
    frames_received: int
    last_frame_age_s: float
    pending_readings: int | None
    dropped_readings: int | None
    bad_frames: int | None

    def to_json(self) -> dict[str, object]:
        """The ``narhub sensors info --json`` shape (one object per board)."""
        return asdict(self)


def _kind_name(code: int) -> str:
    kind = SENSOR_KINDS.get(code)
    return kind.name if kind is not None else f"kind-{code}"


def _usb_board_type(device: str) -> str | None:
    real = Path(device).resolve()
    for b in find_boards():
        if Path(b.device).resolve() == real:
            return b.board
    return None


@dataclass
class _Answers:
    """What came back while asking one board."""

    hello: Hello | None = None
    config: Config | None = None
    pong: Pong | None = None
    frames: int = 0
    last_frame: float = field(default_factory=time.monotonic)

    @property
    def complete(self) -> bool:
        return self.hello is not None and self.config is not None and self.pong is not None


_PROBE_NONCE = 0x5E5E


async def _ask(
    transport: asyncio.Transport, received: asyncio.Queue[bytes], timeout_s: float
) -> _Answers:
    """HELLO, then (once linked) an empty CONFIG (spec §3.6: "report") and a PING."""
    conn = SensorLinkConnection()
    answers = _Answers()
    transport.write(conn.send(HubHello()))
    deadline = time.monotonic() + timeout_s
    while not answers.complete:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            data = await asyncio.wait_for(received.get(), left)
        except TimeoutError:
            break
        for event in conn.receive_data(data):
            answers.frames += 1
            answers.last_frame = time.monotonic()
            if isinstance(event, Hello):
                if answers.hello is None:
                    transport.write(conn.send(Config()))
                    transport.write(conn.send(Ping(_PROBE_NONCE)))
                answers.hello = event
            elif isinstance(event, Config):
                answers.config = event
            elif isinstance(event, Pong) and event.nonce == _PROBE_NONCE:
                answers.pong = event
            # READINGS: counted as frames, never acknowledged (the hub stores them later).
    return answers


class _Collect(asyncio.Protocol):
    def __init__(self, received: asyncio.Queue[bytes]) -> None:
        self.received = received
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.received.put_nowait(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def stable_port(device: str, given: str) -> str:
    """The configuration's port for a board: ``serial:usb:SERIAL`` for a known USB board with a
    serial number (found again wherever it enumerates), else ``serial:`` + what was given."""
    if given.startswith("serial:usb:"):
        return given
    real = Path(device).resolve()
    for b in find_boards():
        if Path(b.device).resolve() == real and b.serial_number:
            return f"serial:usb:{b.serial_number}"
    return given if given.startswith("serial:") else f"serial:{given}"


async def probe_board(port: str, *, timeout_s: float = 5.0) -> BoardInfo:
    """Ask the board on ``port`` for HELLO, its CONFIG and a PONG; acknowledge nothing.

    ``port`` is a device path, ``serial:PATH`` or ``serial:usb:SERIAL`` (as in the
    configuration). The port is opened exclusively: a running hub holding it makes this fail
    with advice, rather than steal its frames.

    Raises:
        SensorInfoError: the port is missing or busy, or no narhub firmware answered.
    """
    try:
        device = await resolve_port(port)
    except DeviceUnavailableError as exc:
        raise SensorInfoError(port, "port", exc.reason, "check `narhub sensors list`") from None
    if not await asyncio.to_thread(Path(device).exists):
        raise SensorInfoError(
            port, "port", f"{device} does not exist", "check the cable and `narhub sensors list`"
        )
    received: asyncio.Queue[bytes] = asyncio.Queue()
    try:
        transport, protocol = await open_serial(device, lambda: _Collect(received))
    except (OSError, SerialException) as exc:
        busy = "lock" in str(exc).lower()
        raise SensorInfoError(
            port,
            "port",
            f"cannot open {device}: {exc}",
            "another program holds the port (is narhub running? `systemctl stop narhub`)"
            if busy
            else "not a serial port: check `narhub sensors list`",
        ) from None
    try:
        answers = await _ask(transport, received, timeout_s)
    finally:
        transport.close()
        # The port (and its exclusive lock) is released only when the transport has closed
        # it: wait, so a command right after this one can open it again.
        if isinstance(protocol, _Collect):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.shield(protocol.closed)
    hello, config, pong = answers.hello, answers.config, answers.pong
    if hello is None:
        raise SensorInfoError(
            port,
            "board",
            f"no sensor-link HELLO from {device} within {timeout_s:g} s"
            + ("" if answers.frames else " (nothing readable received)"),
            f"not a narhub sensor board, or its firmware is missing: `narhub sensors flash {port}`",
        )
    return BoardInfo(
        port=port,
        device=device,
        board_id=hello.board_id,
        board_type=await asyncio.to_thread(_usb_board_type, device),
        firmware=hello.firmware,
        protocol_version=hello.version,
        boot_id=hello.boot_id,
        sensors=tuple(f"{_kind_name(s.kind)}[{s.index}]" for s in hello.sensors),
        capabilities=tuple(c.name.lower() for c in Capability if c.name and hello.capabilities & c),
        selftest_failed=tuple(c.name.lower() for c in SelfTest if c.name and hello.selftest & c),
        sampling_intervals_ms={}
        if config is None
        else {_kind_name(k): ms for k, ms in config.intervals_ms},
        frames_received=answers.frames,
        last_frame_age_s=round(time.monotonic() - answers.last_frame, 2),
        pending_readings=None if pong is None else pong.pending,
        dropped_readings=None if pong is None else pong.dropped,
        bad_frames=None if pong is None else pong.bad_frames,
    )
