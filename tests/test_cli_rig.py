"""The technician's commands against the virtual rig (``narhub rig`` as its own process) and a
TLS broker: ``ble scan``, ``ble pair``, ``devices list``, ``sensors info``, and ``status``
while ``narhub run`` collects; with their ``--json`` output and their errors for an unknown
device, an unknown board and a missing port."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_configs import provisioned
from typer.testing import CliRunner

from gateway.config import BatchingConfig, load_config, render_config
from rig.broker import MosquittoBroker, RigPki
from rig.processes import poll, read_json, stop_process
from technician.cli import app
from technician.provision import create_key, install_certificate, make_csr

runner = CliRunner()
NARHUB = str(Path(sys.executable).parent / "narhub")
CUFF = "C0:FF:EE:00:0C:01"
ABSENT = "C0:FF:EE:00:0C:99"
SCENARIO = f"""
name = "cli-rig"
seed = 5
time_scale = 60.0
[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
first_s = 30
every_s = 180
count = 1000
[[boards]]
board_id = "sim-cli-01"
interval_ms = 500
"""


def _wait_for(what: str, probe: Callable[[], Any], timeout_s: float) -> Any:
    """Poll another process's files (no other way to wait on them) until ``probe`` answers."""
    value = poll(probe, timeout_s=timeout_s, poll_s=0.1)
    if value is None:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
    return value


def _rig_json(directory: Path) -> dict[str, Any] | None:
    data = read_json(directory / "rig.json")
    return data if data and data.get("hci") else None


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``narhub rig`` with a cuff measured every 3 s and one sensor board.

    Every 3 s, not faster: a BLE session then idles out between measurements, which bounds
    the known hang of a cancelled session in ``drivers/ble/session.py`` ``_collect`` (its
    ``asyncio.timeout`` can swallow the cancel while the device keeps sending)."""
    workdir = tmp_path_factory.mktemp("rig")
    scenario = workdir / "scenario.toml"
    scenario.write_text(SCENARIO)
    log = (workdir / "rig.log").open("wb")
    process = subprocess.Popen(
        [NARHUB, "rig", "--scenario", str(scenario), "--dir", str(workdir / "home")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        facts = _wait_for("rig.json", lambda: _rig_json(workdir / "home"), 30)
        yield facts
    finally:
        stop_process(process, timeout_s=20)
        log.close()


def _invoke(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--json"])
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (exit {result.exit_code}): {result.output}") from None


def _config(tmp_path: Path, rig: dict[str, Any], rig_pki: RigPki, broker: str) -> Path:
    path = tmp_path / "etc" / "narhub.toml"
    provisioned(
        path,
        rig_pki,
        "hub-cli-rig",
        tmp_path / "data",
        broker_url=broker,
        patient_pseudonym="P-0042",
        ble_backend="sim",
        sim_transport=rig["hci"],
    )
    return path


def test_scan_pair_and_list_on_the_rig_then_status_while_the_hub_runs(
    tmp_path: Path, rig: dict[str, Any], rig_pki: RigPki, broker: MosquittoBroker
) -> None:
    config = _config(tmp_path, rig, rig_pki, f"mqtts://{broker.host}:{broker.port}")
    code, out = _invoke("ble", "scan", "--duration", "2", "--config", str(config))
    assert code == 0, out
    found = {d["address"]: d for d in out["devices"]}
    assert found[CUFF]["kinds"] == ["blood_pressure"]
    assert found[CUFF]["paired"] is False

    code, out = _invoke(
        "ble", "pair", CUFF, "--kind", "blood_pressure", "--patient", "P-0042",
        "--config", str(config),
    )  # fmt: skip
    assert (code, out["ok"]) == (0, True), out
    assert out["bonded"] is True
    assert out["test_reading"], "the cuff offers a reading: pairing takes one"
    code, out = _invoke("devices", "list", "--config", str(config))
    # The profile chosen and why, and the patient's user slot (issue 20: shared cuffs).
    assert out["devices"] == [
        {
            "address": CUFF,
            "kind": "blood_pressure",
            "bond": True,
            "profile": "strict",
            "profile_reason": "no known quirky model: strict decoding",
            "user_index": None,
        }
    ]

    # Enrol (library calls: the CLI path is in test_cli_visit.py), batch at once, and run.
    hub = load_config(config)
    create_key(hub)
    (tmp_path / "hub.crt").write_bytes(rig_pki.ca.sign_csr(make_csr(hub)))
    install_certificate(hub, tmp_path / "hub.crt", now=dt.datetime.now(dt.UTC))
    hub = hub.model_copy(update={"batching": BatchingConfig(clinical_s=0, telemetry_s=0)})
    config.write_text(render_config(hub))
    log = (tmp_path / "hub.log").open("wb")
    process = subprocess.Popen(
        [NARHUB, "run", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:

        def collected() -> dict[str, Any] | None:
            code, snap = _invoke("status", "--config", str(config))
            assert code == 0, snap
            sources = {s["source"]: s for s in snap["readings"]["sources"]}
            counted = sources.get(CUFF, {}).get("count_today", 0) > 0
            return snap if counted and snap["uplink"]["last_puback"] else None

        snap = _wait_for("readings and a PUBACK in narhub status", collected, 25)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, (tmp_path / "hub.log").read_text()
        log.close()
    assert snap["hub_running"] is True
    device = snap["devices"][0]
    assert device["address"] == CUFF
    assert device["last_seen_age_s"] is not None
    assert device["last_seen_age_s"] < 30
    assert snap["uplink"]["last_reason_code"] in {0x00, 0x10}
    assert set(snap["queue"]["readings_by_priority"]) == {
        "alert", "clinical", "environmental", "telemetry",
    }  # fmt: skip
    code, after = _invoke("status", "--config", str(config))
    assert (code, after["hub_running"]) == (0, False)
    assert after["uplink"]["connected"] is None  # not running: unknown, not "connected"


def test_pairing_an_absent_device_or_an_unknown_kind_fails_with_advice(
    tmp_path: Path, rig: dict[str, Any], rig_pki: RigPki
) -> None:
    config = _config(tmp_path, rig, rig_pki, "mqtts://broker.example")
    code, out = _invoke(
        "ble", "pair", ABSENT, "--kind", "thermometer", "--timeout", "1.5", "--config", str(config)
    )
    assert code == 1
    assert "no session with the thermometer" in out["error"]
    assert "wake the device" in out["hint"]
    code, out = _invoke("ble", "pair", CUFF, "--kind", "toaster", "--config", str(config))
    assert code == 2
    assert "blood_pressure" in str(out["hint"])
    code, out = _invoke("devices", "remove", ABSENT, "--config", str(config))
    assert code == 1
    assert "narhub devices list" in out["hint"]
    assert load_config(config).ble.devices == []


def test_sensors_info_and_add_on_the_rig_board_and_their_errors(
    tmp_path: Path, rig: dict[str, Any], rig_pki: RigPki
) -> None:
    port = rig["boards"]["sim-cli-01"]
    code, out = _invoke("sensors", "info", f"serial:{port}")
    assert code == 0, out
    (board,) = out["boards"]
    assert board["board_id"] == "sim-cli-01"
    assert board["firmware"]
    assert board["protocol_version"] == 1
    assert board["board_type"] is None  # a pty, not a USB board
    assert board["sampling_intervals_ms"]["air-temperature"] == 500
    assert board["selftest_failed"] == []
    assert board["pending_readings"] is not None
    table = runner.invoke(app, ["sensors", "info", port])
    assert table.exit_code == 0
    assert "sim-cli-01" in table.stdout
    assert "air-temperature every 0.5 s" in table.stdout
    assert "\x1b[" not in table.stdout

    config = _config(tmp_path, rig, rig_pki, "mqtts://broker.example")
    code, out = _invoke("sensors", "add", port, "--config", str(config))
    assert (code, out["board_id"], out["port"]) == (0, "sim-cli-01", f"serial:{port}"), out
    assert [b.port for b in load_config(config).sensors.boards] == [f"serial:{port}"]
    code, out = _invoke("sensors", "info", "--config", str(config))  # the configured boards
    assert (code, [b["board_id"] for b in out["boards"]]) == (0, ["sim-cli-01"])

    held = os.open(port, os.O_RDWR | os.O_NOCTTY)  # as a running hub holds it
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, out = _invoke("sensors", "info", port)
    finally:
        os.close(held)
    assert code == 1
    assert out["errors"][0]["what"] == "port"
    assert "is narhub running?" in out["errors"][0]["hint"]

    code, out = _invoke("sensors", "info", str(tmp_path / "ttyGONE"))
    assert code == 1
    assert out["errors"][0]["what"] == "port"
    assert "does not exist" in out["errors"][0]["error"]

    master, slave = os.openpty()  # a serial port with nothing narhub behind it
    try:
        code, out = _invoke("sensors", "info", os.ttyname(slave), "--timeout", "0.5")
        code_add, out_add = _invoke(
            "sensors", "add", os.ttyname(slave), "--timeout", "0.3", "--config", str(config)
        )
    finally:
        os.close(master)
        os.close(slave)
    assert code == 1
    (error,) = out["errors"]
    assert error["what"] == "board"
    assert "no sensor-link HELLO" in error["error"]
    assert "narhub sensors flash" in error["hint"]
    assert (code_add, out_add["what"]) == (1, "board")
    assert len(load_config(config).sensors.boards) == 1  # nothing added for a silent port
