"""Sensor firmware updates by signed command on the virtual rig: MicroPython boards on ptys.

The board runs its firmware from a flash directory (the unix port's stand-in for the board's
file system). The hub verifies the signed bundle, stops serving the board, deploys, checks
the board boots again reporting the bundle's version, and rolls back a board that does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_remote_cli import invoke, region_ca_dir
from test_remote_commands import HUB, TIMEOUT_S, Rig, make_rig

from common.firmware_bundle import BundleError, firmware_files, verify_bundle
from common.pki import new_private_key_pem, public_key_pem
from gateway.ble_backend import make_ble_backend
from gateway.config import parse_config, render_config
from gateway.hub import Hub
from protocols.command_results import Status
from protocols.commands import encode_command
from region.firmware_bundle import build_bundle
from rig.broker import MosquittoBroker, RigPki
from rig.sim_boards import SimBoard, firmware_dir, micropython_env

pytestmark = pytest.mark.micropython

SCENARIO: dict[str, Any] = {"board_id": "sim-fw-1", "temperature_cC": [2150, 2151, 2149]}
SHIPPED = firmware_files(firmware_dir(), "sim")
SHIPPED_VERSION = "0.1.0"


class FlashSimBoard(SimBoard):
    """A rig board whose firmware runs from ``{workdir}/flash`` (its file system)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, SCENARIO)
        self.flash = workdir / "flash"
        for name, data in SHIPPED.items():
            (self.flash / name).parent.mkdir(parents=True, exist_ok=True)
            (self.flash / name).write_bytes(data)

    async def _start(self) -> None:
        assert self._master is not None
        env = micropython_env(
            NARHUB_SIM_SCENARIO=str(self.scenario_path),
            NARHUB_SIM_LOG=str(self.log_path),
            NARHUB_SIM_INTERVAL_MS=str(self.interval_ms),
        )
        # The flash first, then the fake hardware (machine.py) of the sim board folder.
        env["MICROPYPATH"] = f".frozen:{self.flash}:{firmware_dir() / 'boards' / 'sim'}"
        with self.stderr_path.open("ab") as err:
            self._proc = await asyncio.create_subprocess_exec(
                self._exe,
                str(self.flash / "main.py"),
                stdin=self._master,
                stdout=self._master,
                stderr=err,
                cwd=str(self.dir),
                env=env,
            )
        self.starts += 1

    def files(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.flash)): p.read_bytes()
            for p in self.flash.rglob("*")
            if p.is_file()
        }


def with_version(reported: str) -> dict[str, bytes]:
    """The shipped firmware, reporting ``reported`` in its HELLO."""
    init = SHIPPED["sensorfw/__init__.py"].decode()
    assert f'VERSION = "{SHIPPED_VERSION}"' in init
    changed = init.replace(f'VERSION = "{SHIPPED_VERSION}"', f'VERSION = "{reported}"')
    return {**SHIPPED, "sensorfw/__init__.py": changed.encode()}


@asynccontextmanager
async def running_hub_with_board(
    rig: Rig, directory: Path
) -> AsyncIterator[tuple[Hub, FlashSimBoard]]:
    """A virtual-rig board and a running hub serving it, its command session subscribed."""
    async with FlashSimBoard(directory) as board:
        data = rig.config.model_dump(mode="json", exclude_none=True)
        data["sensors"] = {"boards": [{"port": f"serial:{board.port}", "board": "sim"}]}
        rig.config = parse_config(data, path=rig.config_path)
        rig.config_path.write_text(render_config(rig.config))
        hub = Hub(rig.config, make_ble_backend(rig.config.ble), config_path=rig.config_path)
        assert hub.remote is not None
        async with hub:
            async with asyncio.timeout(TIMEOUT_S):
                await hub.remote.subscribed.wait()
            yield hub, board


def firmware_body(rig: Rig, files: dict[str, bytes], version: str) -> dict[str, Any]:
    return build_bundle(files, "sim", version, rig.key.kid, rig.key.key_file.read_bytes())


def firmware_message(rig: Rig, files: dict[str, bytes], version: str) -> bytes:
    """A signed firmware command to the hub with a bundle of ``files`` as ``version``."""
    return rig.key.build(HUB, "firmware", firmware_body(rig, files, version), expires_in_s=120)[1]


async def test_update_succeeds_then_one_that_does_not_report_its_version_rolls_back(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    async with running_hub_with_board(rig, tmp_path / "board") as (hub, board):
        good = with_version("0.2.0")
        message = firmware_message(rig, good, "0.2.0")
        result = await rig.send("firmware", message)
        assert result.status is Status.APPLIED, result
        ((outcome),) = result.data["boards"]
        assert (outcome["from"], outcome["to"], outcome["status"]) == (
            SHIPPED_VERSION,
            "0.2.0",
            "updated",
        )
        assert board.files() == good
        starts_after_update = board.starts

        # Files that report another version than their manifest says: rolled back.
        broken = with_version("0.3.0-broken")
        message = firmware_message(rig, broken, "0.3.0")
        result = await rig.send("firmware", message)
        assert (result.status, result.reason) == (Status.FAILED, "rolled-back"), result
        ((outcome),) = result.data["boards"]
        assert outcome["reported"] == "0.3.0-broken"
        assert outcome["to"] == "0.2.0"  # checked: the board is back on what it had
        assert board.files() == good
        assert board.starts == starts_after_update + 2  # the broken boot and the rollback
        # The hub serves the board again after each update.
        board_tasks = [t for t in hub.boards.tasks() if t.get_name() == "board-0" and not t.done()]
        assert len(board_tasks) == 1


async def test_firmware_bundles_unsigned_tampered_expired_or_replayed_are_refused(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    async with running_hub_with_board(rig, tmp_path / "board") as (_hub, board):
        files = with_version("0.2.0")
        body = firmware_body(rig, files, "0.2.0")
        foreign = build_bundle(files, "sim", "0.2.0", rig.key.kid, new_private_key_pem())
        tampered = {**body, "files": {**files, "main.py": b"import evil\n"}}
        command = rig.key.build(HUB, "firmware", body, expires_in_s=120)[0]
        cases = {
            "unsigned": encode_command(command),
            "expired": rig.key.signer().sign(replace(command, expires_ms=command.issued_ms)),
            "unsigned-bundle": rig.key.build(HUB, "firmware", foreign, expires_in_s=120)[1],
            "bad-bundle": rig.key.build(HUB, "firmware", tampered, expires_in_s=120)[1],
        }
        outcomes = {name: await rig.send("firmware", msg) for name, msg in cases.items()}
        assert board.files() == SHIPPED
        # ``command`` was never sent, but later sequence numbers were accepted since.
        replayed = await rig.send("firmware", rig.key.signer().sign(command))
    assert {name: (r.status, r.reason) for name, r in outcomes.items()} == {
        name: (Status.REJECTED, name) for name in cases
    }
    assert (replayed.status, replayed.reason) == (Status.REJECTED, "replayed")


async def test_send_firmware_builds_signs_and_deploys_a_firmware_tree(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    tree = tmp_path / "release"
    for name, data in with_version("0.4.0").items():
        target = tree / ("boards/sim/board.py" if name == "board.py" else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    operator = rig_pki.directory / "region-operator"
    async with running_hub_with_board(rig, tmp_path / "board") as (_hub, board):
        code, out = await invoke(
            "region", "send", "firmware", HUB, "--board", "sim",
            "--firmware-dir", str(tree),
            "--key-dir", str(rig.key.directory),
            "--ca-dir", str(region_ca_dir(rig_pki, tmp_path)),
            "--host", broker.host, "--port", str(broker.port),
            "--cert", str(operator.with_suffix(".crt")),
            "--key", str(operator.with_suffix(".key")),
            "--timeout", "30",
        )  # fmt: skip
    assert code == 0, out["results"]
    (result,) = out["results"]  # type: ignore[misc]
    assert result["data"]["version"] == "0.4.0"
    assert board.files() == with_version("0.4.0")


@pytest.mark.parametrize("path", ["../main.py", "/main.py", "lib/x.py", "sensorfw/../../x.py"])
def test_a_bundle_with_a_file_a_board_does_not_take_is_refused(path: str) -> None:
    key = new_private_key_pem()
    body = build_bundle({**SHIPPED, path: b"x = 1\n"}, "sim", "0.2.0", "k", key)
    with pytest.raises(BundleError, match="not a board file") as refused:
        verify_bundle(body, {"k": public_key_pem(key)})
    assert refused.value.reason == "bad-bundle"
