"""The ``firmware`` command: a signed bundle for one board type, deployed board by board.

Bundle (docs/remote-management.md "firmware"): a manifest, CBOR (RFC 8949)
``{"format": 1, "board_type": str, "version": str, "files": {path: SHA-256}}`` signed as
COSE_Sign1 ES256 (RFC 9052 4.2) by a region command key the hub pinned, plus the files
themselves. The command body is ``{"manifest": bytes, "files": {path: bytes}}``.

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
import hashlib
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cbor2

from drivers.errors import DeviceUnavailableError
from drivers.serial import resolve_port
from drivers.serial._pyserial import SerialException, open_serial
from gateway.remote.atomic import write_atomic
from gateway.remote.handler import CommandFailedError, CommandRefusedError
from gateway.sensors import BoardInfo, FlashError, SensorInfoError, flash_board, probe_board
from protocols.commands import Command
from protocols.cose import CoseError, verify_sign1
from protocols.sensorlink import Reboot, SensorLinkConnection
from protocols.uplink.es256 import Es256Error, Es256PublicKey, load_verifying_key

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
#: The files a board takes (the ``narhub sensors flash`` layout); nothing else is deployed.
_PATH = re.compile(r"^(main\.py|board\.py|sensorfw/[A-Za-z0-9_]{1,64}\.py)$")
_VERSION = re.compile(r"^[A-Za-z0-9.+_-]{1,32}$")


class BundleError(ValueError):
    """A bundle is not acceptable; ``reason`` is the short code reported."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Manifest:
    """What a signed manifest says."""

    board_type: str
    version: str
    files: Mapping[str, bytes]


def _encode(manifest: Manifest) -> bytes:
    return cbor2.dumps(
        {
            "format": BUNDLE_FORMAT,
            "board_type": manifest.board_type,
            "version": manifest.version,
            "files": dict(manifest.files),
        },
        canonical=True,
    )


def sign_manifest(manifest: Manifest, kid: str, private_key_pem: bytes) -> bytes:
    """The COSE_Sign1 manifest (region side: ``cwt``, kept out of the hub, issue #11)."""
    from cwt import COSE, COSEKey  # noqa: PLC0415 - region side only

    key = COSEKey.from_pem(private_key_pem, alg="ES256", kid=kid)
    message = COSE.new().encode_and_sign(
        _encode(manifest), key, protected={"alg": "ES256"}, unprotected={"kid": kid}
    )
    assert isinstance(message, bytes)
    return message


def firmware_files(firmware_dir: Path, board_type: str) -> dict[str, bytes]:
    """A board's files from a firmware tree (the layout ``narhub sensors flash`` deploys):
    ``main.py``, ``sensorfw/*.py`` and ``board.py`` from ``boards/{board_type}/``."""
    board_py = firmware_dir / "boards" / board_type / "board.py"
    if not board_py.exists():
        raise BundleError("bad-bundle", f"{board_py} not found")
    files = {"main.py": (firmware_dir / "main.py").read_bytes(), "board.py": board_py.read_bytes()}
    for source in sorted((firmware_dir / "sensorfw").glob("*.py")):
        files[f"sensorfw/{source.name}"] = source.read_bytes()
    return files


def firmware_version(files: Mapping[str, bytes]) -> str:
    """The version the firmware reports in its HELLO (``VERSION`` in sensorfw/__init__.py)."""
    init = files.get("sensorfw/__init__.py", b"").decode(errors="replace")
    found = re.search(r'^VERSION = "([^"]+)"', init, re.MULTILINE)
    if found is None:
        raise BundleError("bad-bundle", "no VERSION in sensorfw/__init__.py: give the version")
    return found.group(1)


def build_bundle(
    files: Mapping[str, bytes], board_type: str, version: str, kid: str, private_key_pem: bytes
) -> dict[str, Any]:
    """The ``firmware`` command body for ``files`` (region side)."""
    manifest = Manifest(
        board_type, version, {path: hashlib.sha256(data).digest() for path, data in files.items()}
    )
    return {"manifest": sign_manifest(manifest, kid, private_key_pem), "files": dict(files)}


def verify_bundle(body: Mapping[str, Any], public_keys_pem: Mapping[str, bytes]) -> Manifest:
    """The verified manifest; raises :class:`BundleError` naming what is wrong."""
    message, files = body.get("manifest"), body.get("files")
    if set(body) != {"manifest", "files"} or not isinstance(message, bytes):
        raise BundleError("bad-bundle", "body must be {'manifest': bytes, 'files': {...}}")
    if not isinstance(files, dict) or not all(
        isinstance(p, str) and isinstance(d, bytes) for p, d in files.items()
    ):
        raise BundleError("bad-bundle", "files must map paths to bytes")
    keys: dict[str, Es256PublicKey] = {}
    for kid, pem in public_keys_pem.items():
        try:
            keys[kid] = load_verifying_key(pem)
        except Es256Error as exc:
            raise BundleError("unsigned-bundle", f"command key {kid!r}: {exc.reason}") from None
    try:
        _kid, payload = verify_sign1(message, keys)
    except CoseError as exc:
        raise BundleError(
            "unsigned-bundle", f"manifest not signed by a pinned key: {exc.reason}"
        ) from None
    try:
        doc = cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
        raise BundleError("bad-bundle", f"manifest is not CBOR: {exc}") from None
    if not (
        isinstance(doc, dict)
        and doc.get("format") == BUNDLE_FORMAT
        and isinstance(doc.get("board_type"), str)
        and isinstance(doc.get("version"), str)
        and _VERSION.match(doc["version"])
        and isinstance(doc.get("files"), dict)
    ):
        raise BundleError("bad-bundle", "manifest fields missing or of the wrong type")
    listed: dict[str, bytes] = doc["files"]
    if set(listed) != set(files):
        raise BundleError("bad-bundle", "the files are not exactly those the manifest lists")
    for path, data in files.items():
        if not _PATH.match(path):
            raise BundleError(
                "bad-bundle", f"{path!r} is not a board file (main.py, board.py, sensorfw/*.py)"
            )
        if hashlib.sha256(data).digest() != listed[path]:
            raise BundleError("bad-bundle", f"{path}: SHA-256 differs from the manifest")
    return Manifest(doc["board_type"], doc["version"], listed)


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
