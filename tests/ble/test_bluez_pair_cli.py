"""``narhub ble pair`` on the bluez backend over the virtual BlueZ: the technician's view."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hub_configs import provisioned
from typer.testing import CliRunner, Result
from vbluez_rig import thermometer_on_bluez

from drivers.ble.sim.security import PairingMode
from gateway.config import load_config
from rig.broker import RigPki
from technician.cli import app

THERMO = "F1:00:00:00:03:01"
LABEL_PASSKEY = 271_828


def hub_config(tmp_path: Path, rig_pki: RigPki) -> Path:
    path = tmp_path / "narhub.toml"
    provisioned(path, rig_pki, "hub-bluez-pair", tmp_path / "d")
    assert load_config(path).ble.backend == "bluez"
    return path


async def narhub(*args: str, stdin: str | None = None) -> Result:
    """The CLI in a worker thread (it runs its own event loop); the virtual BlueZ keeps
    serving on this one."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), input=stdin)


async def pair(config: Path, *args: str, stdin: str | None = None) -> Result:
    """``narhub ble pair`` of the thermometer, as JSON, waiting at most 15 s."""
    return await narhub(
        *("ble", "pair", THERMO, "--kind", "thermometer", "-c", str(config), "--json"),
        *("--timeout", "15", *args),
        stdin=stdin,
    )


async def test_pair_with_the_passkey_the_technician_types(
    tmp_path: Path, rig_pki: RigPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = hub_config(tmp_path, rig_pki)
    async with thermometer_on_bluez(monkeypatch, THERMO, PairingMode.PASSKEY) as bench:
        thermometer = bench.device
        thermometer.security.fixed_passkey = LABEL_PASSKEY
        await thermometer.measure()  # the test reading
        result = await pair(config, "--passkey", stdin=f"{LABEL_PASSKEY}\n")
        assert result.exit_code == 0, result.output
        # CliRunner echoes the typed input to stdout ahead of the JSON.
        shown = json.loads(result.stdout[result.stdout.index("{") :])
        assert shown["ok"] is True
        assert shown["bonded"] is True
        assert shown["test_reading"]
        assert "Passkey shown on the device" in result.stderr
        assert bench.bluez.devices[THERMO].prop("Paired")
    assert [d.address for d in load_config(config).ble.devices] == [THERMO]


async def test_a_wrong_passkey_file_says_which_bluez_error_and_what_to_do(
    tmp_path: Path, rig_pki: RigPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = hub_config(tmp_path, rig_pki)
    passkey_file = tmp_path / "passkey"
    passkey_file.write_text(f"{(LABEL_PASSKEY + 1) % 1_000_000:06d}\n")
    async with thermometer_on_bluez(monkeypatch, THERMO, PairingMode.PASSKEY) as bench:
        bench.device.security.fixed_passkey = LABEL_PASSKEY
        result = await pair(config, "--passkey-file", str(passkey_file))
        assert result.exit_code == 1, result.output
        shown = json.loads(result.stdout)
        assert shown["ok"] is False
        assert "did not accept the passkey" in shown["error"]
        assert "org.bluez.Error.AuthenticationFailed" in shown["error"]
        assert "6-digit number the device shows" in shown["hint"]
        assert not bench.bluez.devices[THERMO].prop("Paired")
    assert load_config(config).ble.devices == []


async def test_a_just_works_device_pairs_with_no_question(
    tmp_path: Path, rig_pki: RigPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = hub_config(tmp_path, rig_pki)
    async with thermometer_on_bluez(monkeypatch, THERMO) as bench:
        await bench.device.measure()
        result = await pair(config)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["bonded"] is True
        assert bench.bluez.devices[THERMO].prop("Paired")
