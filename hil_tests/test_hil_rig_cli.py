"""``narhub rig``: a bad scenario is refused naming the key, before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rig.scenario import load_scenario

SCENARIOS = Path(__file__).parent / "scenarios"


def _narhub_rig(scenario: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``narhub rig --scenario SCENARIO --dir TMP/rig [OPTIONS] --json`` as its own process."""
    narhub = str(Path(sys.executable).parent / "narhub")
    rig = [narhub, "rig", "--scenario", str(scenario), "--dir", str(tmp_path / "rig")]
    return subprocess.run(
        [*rig, *options, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_scenario_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[devices]]\nkind = "toaster"\naddress = "C0:FF:EE:00:00:01"\n')
    done = _narhub_rig(bad, tmp_path)
    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert any(p.startswith("devices[0].kind:") for p in result["problems"])
    assert not (tmp_path / "rig" / "rig.json").exists()


def test_every_shipped_scenario_is_valid() -> None:
    scenarios = sorted(SCENARIOS.glob("*.toml"))
    assert scenarios
    for path in scenarios:
        scenario = load_scenario(path)
        assert scenario.devices, path
        assert scenario.span_s / scenario.time_scale < 30, f"{path} runs too long for CI"


def test_an_unknown_ble_backend_is_refused_naming_the_choices(tmp_path: Path) -> None:
    done = _narhub_rig(SCENARIOS / "compressed_day.toml", tmp_path, "--ble-backend", "usb")
    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    assert result == {"ok": False, "error": "--ble-backend: one of sim, bluez"}
    assert not (tmp_path / "rig" / "rig.json").exists()
