"""Pairing a device through the real central on the emulated radio, and the allowlist."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from ble_rig import FAST
from hub_configs import provisioned
from typer.testing import CliRunner

from drivers.ble import CentralSettings, resolve_backend
from drivers.ble.discovery import discover
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.peripheral import DeviceClock
from drivers.ble.sim.quirky import EmulatedBeurerBM85
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer
from gateway.config import load_config, render_config
from rig.broker import RigPki
from technician.cli import app
from technician.pairing import PairingError, PairingResult, pair_device, with_device

#: The BLE rig's quick settings, scanning actively as pair_device does by default.
QUICK = dataclasses.replace(FAST, scanning_mode="active")
CUFF = "C0:00:00:00:0A:01"


def _cuff_an_hour_ahead() -> EmulatedBloodPressureCuff:
    return EmulatedBloodPressureCuff(
        SimRadio(), CUFF, seed=7, sleep_s=5.0, linger_s=0.5, clock=DeviceClock(offset_s=3600.0)
    )


async def _pair_after_a_reading(
    device: EmulatedBloodPressureCuff | EmulatedThermometer,
    kind: str,
    *,
    address: str | None = None,
    test_reading_s: float = 10,
    settings: CentralSettings = QUICK,
) -> PairingResult:
    """The device takes a reading (it wakes and advertises), then the technician pairs it by
    ``address`` as typed (the device's own when not given); the device stops after."""
    await device.start()
    await device.measure()
    try:
        # A test-reading window far longer than the guard: reaching the guard means it was
        # waited out.
        async with asyncio.timeout(30):
            return await pair_device(
                resolve_backend("sim", sim_radio=device.radio),
                address or device.address,
                kind,
                timeout_s=15,
                test_reading_s=test_reading_s,
                settings=settings,
            )
    finally:
        await device.stop()


def _hub_with_a_cuff(
    tmp_path: Path, rig_pki: RigPki, hub_id: str, address: str, result: PairingResult | None = None
) -> Path:
    """A hub's configuration (its path) whose allowlist holds the cuff at ``address``."""
    path = tmp_path / "narhub.toml"
    config = provisioned(path, rig_pki, hub_id, tmp_path / "d")
    path.write_text(render_config(with_device(config, address, "blood_pressure", result)))
    return path


def _listed(runner: CliRunner, path: Path) -> list[dict[str, object]]:
    """The devices `narhub devices list --json` shows."""
    listed = json.loads(runner.invoke(app, ["devices", "list", "-c", str(path), "--json"]).stdout)
    devices: list[dict[str, object]] = listed["devices"]
    return devices


async def test_pairing_bonds_reads_information_sets_clock_and_takes_a_test_reading() -> None:
    cuff = _cuff_an_hour_ahead()
    result = await _pair_after_a_reading(cuff, "blood_pressure", address=CUFF.lower())
    assert result.bonded
    assert result.address == CUFF
    assert result.information["manufacturer"]
    assert result.clock_offset_s is not None
    assert abs(result.clock_offset_s - 3600) < 5
    assert result.clock_set
    codes = {r["mdc_code"] for r in result.test_reading}
    assert {"150021", "150022"} <= codes  # systolic and diastolic
    assert (result.profile, result.profile_reason) == (
        "strict",
        "no known quirky model: strict decoding",
    )


async def test_pairing_a_cuff_without_dis_shows_the_profile_its_name_chose(
    tmp_path: Path, rig_pki: RigPki
) -> None:
    cuff = EmulatedBeurerBM85(SimRadio(), CUFF, seed=8, sleep_s=5.0, linger_s=0.5)
    result = await _pair_after_a_reading(cuff, "blood_pressure")
    assert result.information == {}
    assert result.profile == "beurer-bpm"
    assert result.profile_reason == "advertised name 'BM85' (no DIS model)"
    assert {r["mdc_code"] for r in result.test_reading} >= {"150021", "150022"}
    # `narhub devices list` shows the profile chosen and why.
    path = _hub_with_a_cuff(tmp_path, rig_pki, "hub-pair-2", CUFF, result)
    (device,) = _listed(CliRunner(), path)
    assert (device["profile"], device["profile_reason"]) == ("beurer-bpm", result.profile_reason)


async def test_a_device_that_never_shows_up_fails_with_advice() -> None:
    radio = SimRadio()
    with pytest.raises(PairingError) as info:
        await pair_device(
            resolve_backend("sim", sim_radio=radio),
            CUFF,
            "blood_pressure",
            timeout_s=1.0,
            settings=QUICK,
        )
    assert "wake the device" in info.value.hint


async def test_scan_lists_health_services() -> None:
    radio = SimRadio()
    thermometer = EmulatedThermometer(radio, "C0:00:00:00:0A:02")
    await thermometer.start()
    try:
        found = await discover(resolve_backend("sim", sim_radio=radio), duration_s=0.5)
    finally:
        await thermometer.stop()
    (device,) = [d for d in found if d.address == "C0:00:00:00:0A:02"]
    assert device.kinds == ("thermometer",)


def test_devices_list_and_remove_edit_the_allowlist(tmp_path: Path, rig_pki: RigPki) -> None:
    path = _hub_with_a_cuff(tmp_path, rig_pki, "hub-pair-1", CUFF.lower())
    runner = CliRunner()
    assert _listed(runner, path) == [
        {
            "address": CUFF,
            "kind": "blood_pressure",
            "bond": True,
            "profile": None,
            "profile_reason": None,
            "user_index": None,
        }
    ]
    result = runner.invoke(app, ["devices", "remove", CUFF, "-c", str(path), "--json"])
    assert result.exit_code == 0
    assert load_config(path).ble.devices == []
    result = runner.invoke(app, ["devices", "remove", CUFF, "-c", str(path), "--json"])
    assert result.exit_code == 1
    assert "not paired" in json.loads(result.stdout)["error"]


async def test_a_device_without_a_clock_pairs_without_waiting_for_one() -> None:
    """A thermometer has no Current Time (CTS 1.1): pairing takes its test reading and ends,
    instead of waiting out the test-reading window for a clock that never comes."""
    thermometer = EmulatedThermometer(SimRadio(), "C0:00:00:00:0A:03")
    result = await _pair_after_a_reading(thermometer, "thermometer", test_reading_s=600)
    assert result.clock_offset_s is None
    assert result.test_reading


async def test_a_hub_whose_clock_is_not_trusted_leaves_the_device_clock_alone() -> None:
    """A hub that booted without NTP (its clock at the last shutdown, or 1970) must not copy
    its wrong time into the cuff: the offset is still observed and reported."""
    cuff = _cuff_an_hour_ahead()
    untrusted = dataclasses.replace(QUICK, hub_clock_trusted=lambda: False)
    result = await _pair_after_a_reading(
        cuff, "blood_pressure", test_reading_s=600, settings=untrusted
    )
    assert result.clock_offset_s is not None
    assert abs(result.clock_offset_s - 3600) < 5
    assert not result.clock_set
    assert result.clock_not_set == "the hub's clock is not trusted yet"
