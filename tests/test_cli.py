"""The technician CLI: JSON output, exit codes, actionable errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from common.pki import CertificateAuthority
from gateway.config import load_config
from gateway.remote.hubside import load_verifier
from region.command_sender import RegionCommandKey
from technician.cli import app

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


#: Every command that reads the hub configuration, with the arguments it needs besides it.
CONFIG_COMMANDS = [
    ["keys", "create"],
    ["keys", "csr"],
    ["keys", "install-cert", "hub.crt"],
    ["ble", "scan", "--duration", "0.1"],
    ["ble", "pair", "C0:FF:EE:00:00:01", "--kind", "thermometer"],
    ["devices", "list"],
    ["devices", "remove", "C0:FF:EE:00:00:01"],
    ["doctor"],
    ["uplink", "test"],
    ["queue", "stats"],
    ["queue", "export", "--out", "x.jsonl"],
    ["status"],
]


def test_every_command_with_a_missing_config_exits_3_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "etc" / "narhub.toml"
    for args in CONFIG_COMMANDS:
        result = runner.invoke(app, [*args, "--config", str(missing), "--json"])
        assert result.exit_code == 3, (args, result.output)
        out = json.loads(result.stdout)
        text = json.dumps(out)
        assert str(missing) in text, args
        assert "narhub init" in text, args


def test_an_invalid_config_names_the_key_the_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "narhub.toml"
    path.write_text(
        'hub_id = "hub-0001"\ndata_dir = "/tmp/d"\n[ble]\nbackend = "bluetooth"\n'
        '[uplink]\nhost = "b.example"\nport = 88830\n'
        'ca_file = "ca"\ncert_file = "c"\nkey_file = "k"\n'
    )
    result = runner.invoke(app, ["status", "--config", str(path), "--json"])
    assert result.exit_code == 3
    problems = json.loads(result.stdout)["problems"]
    assert any(
        p.startswith("ble.backend:") and "'bluetooth'" in p and "'bluez' or 'sim'" in p
        for p in problems
    ), problems
    assert any(p.startswith("uplink.port:") and "88830" in p and "65535" in p for p in problems)
    result = runner.invoke(app, ["doctor", "--config", str(path)])
    assert result.exit_code == 3
    assert "ble.backend" in result.stdout


def test_no_colour_or_progress_without_a_tty(tmp_path: Path) -> None:
    narhub = str(Path(sys.executable).parent / "narhub")
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE"}}
    done = subprocess.run(
        [narhub, "doctor", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 3
    assert "FAIL" in done.stdout
    assert "\x1b[" not in done.stdout + done.stderr
    result = runner.invoke(app, ["sensors", "flash", "/dev/ttyNOPE", "--board", "rp2040"])
    assert "\x1b[" not in result.output
    assert "━" not in result.output  # no progress bar drawn into a pipe


def test_init_pins_the_region_command_key_and_refuses_a_private_one(tmp_path: Path) -> None:
    ca = tmp_path / "region-ca.pem"
    ca.write_bytes(CertificateAuthority.create("region").cert_pem)
    key = RegionCommandKey.init(tmp_path / "region-command", kid="vgr-cmd-2")
    config = tmp_path / "hub" / "narhub.toml"
    base = ["init", "--hub-id", "hub-cmd", "--broker", "mqtts://region.example", "--ca-file"]
    base += [str(ca), "--data-dir", str(tmp_path / "data"), "--config", str(config), "--json"]
    refused = runner.invoke(app, [*base, "--command-key", str(key.key_file)])
    assert refused.exit_code == 1
    assert "not a P-256 public key" in json.loads(refused.stdout)["error"]
    assert not config.exists()
    done = runner.invoke(
        app, [*base, "--command-key", str(key.public_file), "--command-kid", key.kid]
    )
    assert done.exit_code == 0, done.stdout
    hub = load_config(config)
    assert hub.remote is not None
    pinned = hub.remote.command_keys["vgr-cmd-2"]
    assert pinned.parent == config.parent
    assert pinned.read_bytes() == key.public_file.read_bytes()
    load_verifier(hub)  # the hub takes commands signed with it
