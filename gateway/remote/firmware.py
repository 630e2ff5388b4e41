"""The ``firmware`` command: a signed bundle for one board type, deployed board by board.

The bundle's format and its check are in :mod:`common.firmware_bundle`.

The hub verifies the manifest signature, that the files are exactly those listed with those
hashes, and that every path is a plain relative firmware path. Then, for each configured board
of that type, one at a time: stop serving it (its unacknowledged readings wait on the board),
ask its version (sensor-link HELLO), keep its current files, deploy, and wait for it to boot
again (a new boot id) reporting the manifest's version. A board that does not is rolled back to
the files it had, checked again, and the update stops there (reported ``failed``,
``rolled-back``). Serving the board resumes in every case, so no reading is lost.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from common.atomic import write_atomic
from common.firmware_bundle import BundleError, firmware_files, verify_bundle
from drivers.errors import DeviceUnavailableError
from drivers.serial import resolve_port
from drivers.serial._pyserial import SerialException, open_serial
from gateway.board_admin import BoardInfo, FlashError, SensorInfoError, flash_board, probe_board
from gateway.remote.handler import CommandFailedError, CommandRefusedError
from protocols.commands import Command
from protocols.sensorlink import Reboot, SensorLinkConnection

logger = logging.getLogger(__name__)

# -- deploying to one board --------------------------------------------------------------------


class Deployer(Protocol):
    """Writes firmware files onto one board and resets it."""

    async def read(self, port: str) -> dict[str, bytes]:
        """The board's current files (what a rollback restores)."""

    async def write(self, port: str, files: Mapping[str, bytes]) -> None:
        """Replace the board's files with ``files`` and reset it."""


def _device(port: str) -> str:
    return port.removeprefix("serial:")


async def send_reboot(port: str, *, timeout_s: float = 3.0) -> None:
    """Ask the board to flush and reset (sensor link REBOOT, spec §3).

    The port is opened exclusively; a previous user's close completes a loop turn later, so a
    busy port is tried again until ``timeout_s``."""
    try:
        device = await resolve_port(port)
    except DeviceUnavailableError as exc:
        raise CommandFailedError("board-unavailable", str(exc)) from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            transport, _ = await open_serial(device, asyncio.Protocol)
            break
        except (OSError, SerialException) as exc:
            if time.monotonic() >= deadline:
                detail = f"cannot open the board port: {exc}"
                raise CommandFailedError("board-unavailable", detail) from None
            await asyncio.sleep(0.05)  # an external holder: poll, bounded by the deadline
    try:
        transport.write(SensorLinkConnection().send(Reboot()))
    finally:
        transport.close()


class FlashDirDeployer:
    """The virtual rig's board: its flash is the directory ``flash`` next to its port (the
    unix-port firmware runs from there); a reset is the sensor-link REBOOT."""

    def _flash(self, port: str) -> Path:
        return Path(_device(port)).parent / "flash"

    async def read(self, port: str) -> dict[str, bytes]:
        """Every file in the flash directory."""
        flash = self._flash(port)
        return {
            str(p.relative_to(flash)): p.read_bytes()
            for p in sorted(flash.rglob("*"))
            if p.is_file()
        }

    async def write(self, port: str, files: Mapping[str, bytes]) -> None:
        """Write each file atomically, drop files not in the set, then reset the board."""
        flash = self._flash(port)
        for path in [p for p in flash.rglob("*") if p.is_file()]:
            if str(path.relative_to(flash)) not in files:
                path.unlink()
        for name, data in files.items():
            write_atomic(flash / name, data)
        await send_reboot(port)


class MpremoteDeployer:
    """A USB board (RP2040, ESP32): the files go on with mpremote (``narhub sensors flash``),
    which ends with a reset. The hub keeps the files it last deployed per board type
    (``{data_dir}/firmware/{type}/``); before the first update, the firmware shipped with narhub
    is what a rollback restores."""

    def __init__(self, board_type: str, state_dir: Path, baseline: Path) -> None:
        self._board_type = board_type
        self._dir = state_dir / board_type
        self._baseline = baseline

    async def read(self, port: str) -> dict[str, bytes]:
        """The last deployed files (or the shipped firmware)."""
        if self._dir.exists():
            return {
                str(p.relative_to(self._dir)): p.read_bytes()
                for p in sorted(self._dir.rglob("*"))
                if p.is_file()
            }
        return firmware_files(self._baseline, self._board_type)

    async def write(self, port: str, files: Mapping[str, bytes]) -> None:
        """Lay the files out as a firmware tree and run the flash plan."""
        with tempfile.TemporaryDirectory(prefix="narhub-fw-") as tmp:
            tree = Path(tmp)
            for name, data in files.items():
                target = (
                    tree / "boards" / self._board_type / name if name == "board.py" else tree / name
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            try:
                device = await resolve_port(port)
                await asyncio.to_thread(
                    flash_board, device, board=self._board_type, firmware_dir=tree
                )
            except DeviceUnavailableError as exc:
                raise CommandFailedError("board-unavailable", str(exc)) from None
            except FlashError as exc:
                raise CommandFailedError("flash-failed", str(exc)) from None
        shutil.rmtree(self._dir, ignore_errors=True)
        for name, data in files.items():
            write_atomic(self._dir / name, data)


# -- the command -------------------------------------------------------------------------------

Probe = Callable[[str, float], Awaitable[BoardInfo]]


async def _probe(port: str, timeout_s: float) -> BoardInfo:
    return await probe_board(port, timeout_s=timeout_s)


@dataclass(frozen=True)
class TargetBoard:
    """A configured board of the bundle's type."""

    port: str
    board_type: str


class FirmwareUpdater:
    """Carries out ``firmware`` commands for the boards of one hub."""

    def __init__(
        self,
        boards: Callable[[], list[TargetBoard]],
        public_keys_pem: Mapping[str, bytes],
        deployer: Callable[[str], Deployer],
        release: Callable[[str], AbstractAsyncContextManager[None]],
        *,
        probe: Probe = _probe,
        boot_timeout_s: float = 10.0,
    ) -> None:
        """``release(port)``: the hub stops serving that board while the update runs."""
        self._boards = boards
        self._keys = dict(public_keys_pem)
        self._deployer = deployer
        self._release = release
        self._probe = probe
        self._boot_timeout_s = boot_timeout_s

    async def __call__(self, command: Command) -> dict[str, Any]:
        """Verify the bundle, then update each board of its type in turn."""
        try:
            manifest = verify_bundle(command.body, self._keys)
        except BundleError as exc:
            raise CommandRefusedError(exc.reason, exc.detail) from None
        files: dict[str, bytes] = dict(command.body["files"])
        targets = [b for b in self._boards() if b.board_type == manifest.board_type]
        if not targets:
            raise CommandRefusedError(
                "no-boards", f"no configured board of type {manifest.board_type!r}"
            )
        report: list[dict[str, Any]] = []
        for board in targets:
            outcome = await self._update(board, manifest.version, files)
            report.append(outcome)
            if outcome["status"] != "updated":
                raise CommandFailedError(
                    outcome["status"],
                    f"board {len(report)} of {len(targets)} did not come back with "
                    f"{manifest.version}; the update stopped there",
                    {"version": manifest.version, "boards": report},
                )
        return {"version": manifest.version, "boards": report}

    async def _update(
        self, board: TargetBoard, version: str, files: dict[str, bytes]
    ) -> dict[str, Any]:
        deployer = self._deployer(board.board_type)
        async with self._release(board.port):
            # The port closes as the hub lets go of it: ask until the board answers.
            before = await self._wait_boot(board.port, None)
            if before is None:
                return {"port": board.port, "status": "board-unavailable"}
            outcome: dict[str, Any] = {"port": board.port, "from": before.firmware}
            if before.firmware == version:
                return {**outcome, "to": version, "status": "updated"}
            previous = await deployer.read(board.port)
            await deployer.write(board.port, files)
            after = await self._wait_boot(board.port, before.boot_id)
            if after is not None and after.firmware == version:
                logger.info("firmware: a board now runs %s", version)
                return {**outcome, "to": version, "status": "updated"}
            logger.warning("firmware: a board did not come back with %s; rolling back", version)
            await deployer.write(board.port, previous)
            last_boot = before.boot_id if after is None else after.boot_id
            back = await self._wait_boot(board.port, last_boot)
            return {
                **outcome,
                "reported": None if after is None else after.firmware,
                "to": None if back is None else back.firmware,
                "status": "rolled-back" if back is not None else "rollback-failed",
            }

    async def _wait_boot(self, port: str, old_boot_id: int | None) -> BoardInfo | None:
        """The board's HELLO from a boot other than ``old_boot_id`` (None: any), or None when
        none comes within the timeout."""
        deadline = time.monotonic() + self._boot_timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                info = await self._probe(port, min(left, 2.0))
            except SensorInfoError:
                info = None
            if info is not None and info.boot_id != old_boot_id:
                return info
            # The port is still held or the old firmware still answers (the reset is under
            # way): ask again shortly (polling an external process, bounded by the deadline).
            await asyncio.sleep(0.05)
        return None
