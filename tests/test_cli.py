"""The technician CLI: JSON output, exit codes, actionable errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app

runner = CliRunner()


def test_version_json_names_the_libraries() -> None:
    result = runner.invoke(app, ["version", "--json"])
    assert result.exit_code == 0
    assert {"narhub", "bleak", "aiomqtt"} <= set(json.loads(result.stdout))


def test_config_check_reports_the_key_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('hub_id = "X"\n')
    result = runner.invoke(app, ["config", "check", str(path), "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert any(p.startswith("hub_id:") for p in problems)
    assert any(p.startswith("data_dir:") for p in problems)


def test_sensors_list_json_is_a_list() -> None:
    result = runner.invoke(app, ["sensors", "list", "--json"])
    assert result.exit_code == 0
    assert isinstance(json.loads(result.stdout)["boards"], list)


def test_flashing_an_unknown_port_fails_with_advice() -> None:
    result = runner.invoke(app, ["sensors", "flash", "/dev/ttyNOPE", "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert "/dev/ttyNOPE" in error
    assert "narhub sensors list" in error


def test_flash_dry_run_lists_the_firmware_files() -> None:
    result = runner.invoke(app, ["sensors", "flash", "/dev/ttyACM0", "--dry-run", "--json"])
    assert result.exit_code == 0
    steps = json.loads(result.stdout)["steps"]
    assert any(step.endswith("main.py") for step in steps)
