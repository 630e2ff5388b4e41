"""``narhub status``: the snapshot from the configuration, the read-only store and the hub's
activity file (gateway/activity.py; read by technician/status_view.py), as JSON and as the
technician's tables."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hub_configs import provisioned
from test_runtime_files import exited_pid
from typer.testing import CliRunner

from common.signing import PemBatchSigner
from drivers.ble.central import DeviceStatus
from gateway.activity import ACTIVITY_FILE, RUNTIME_DIRECTORY_ENV, ActivityRecorder
from gateway.config import load_config, render_config
from gateway.outbox import Outbox
from gateway.reading import Reading
from gateway.uplink import UplinkStats
from protocols.gatt import BLOOD_PRESSURE_MEASUREMENT
from protocols.uplink import Priority
from protocols.uplink.undecoded import RAW_RECORD_MDC, raw_fields
from rig.broker import RigPki
from technician import status_view as status_module
from technician.cli import app
from technician.doctor import _store_check
from technician.pairing import with_device
from technician.provision import create_key

runner = CliRunner()
CUFF = "C0:FF:EE:00:0B:01"
SCALE = "C0:FF:EE:00:0B:02"
PATIENT = "P-7731"


def _hub(tmp_path: Path, rig_pki: RigPki) -> Path:
    config = tmp_path / "etc" / "narhub.toml"
    hub = provisioned(
        config,
        rig_pki,
        "hub-status-1",
        tmp_path / "data",
        broker_url="mqtts://broker.example:8883",
        patient_pseudonym=PATIENT,
        ble_backend="sim",
    )
    hub = with_device(with_device(hub, CUFF, "blood_pressure"), SCALE, "scale")
    config.write_text(render_config(hub))
    return config


def _status(config: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["status", "--config", str(config), *extra])
    return result.exit_code, result.stdout


def _reading(device: str, value: str, t_ms: int, priority: Priority) -> Reading:
    return Reading(
        f"{device}/150020",
        device,
        150020,
        "mm[Hg]",
        Decimal(value),
        None,
        t_ms,
        1,
        priority=priority,
    )


def test_before_the_hub_ran_the_devices_are_listed_and_the_rest_is_unknown(
    tmp_path: Path, rig_pki: RigPki
) -> None:
    config = _hub(tmp_path, rig_pki)
    code, out = _status(config, "--json")
    assert code == 0, out
    snap = json.loads(out)
    assert snap["hub_running"] is False
    assert snap["queue"] is None
    assert [(d["address"], d["kind"], d["last_seen"]) for d in snap["devices"]] == [
        (CUFF, "blood_pressure", None),
        (SCALE, "scale", None),
    ]
    assert snap["readings"]["sources"] == []
    assert snap["uplink"]["broker"] == "broker.example:8883"
    assert any("has not run" in note for note in snap["notes"])


def test_activity_and_queue_as_json_and_as_tables(tmp_path: Path, rig_pki: RigPki) -> None:
    config = _hub(tmp_path, rig_pki)
    hub = load_config(config)
    key = create_key(hub)
    now_ms = time.time_ns() // 1_000_000
    cuff = [_reading(CUFF, "181", now_ms - 90_000, Priority.ALERT)]
    board = [
        Reading("sim-9/1/0", "sim-9", 150364, "Cel", Decimal("21.5"), None, now_ms - t, 1)
        for t in (60_000, 30_000)
    ]
    outbox = Outbox(hub.data_dir / "outbox.sqlite3")
    outbox.add(cuff)
    assert outbox.seal(PemBatchSigner(hub.hub_id, key.read_bytes()), now_ms=now_ms) is not None
    outbox.add([r._replace(priority=Priority.ENVIRONMENTAL) for r in board])
    # A value from the cuff no decoder accepted: kept as a raw record, and counted.
    special, flags = raw_fields(BLOOD_PRESSURE_MEASUREMENT, bytes.fromhex("56d200"))
    raw = Reading(
        f"{CUFF}/undecoded/2a35", CUFF, RAW_RECORD_MDC, "", None, special, now_ms - 80_000, 2,
        flags=flags,
    )  # fmt: skip
    outbox.add([raw])

    # What the running hub records (gateway/service.py feeds it the same way).
    recorder = ActivityRecorder(hub.data_dir)
    recorder.readings_stored([*cuff, *board, raw])
    status = DeviceStatus("blood_pressure-x", "blood_pressure", connected=True, battery_percent=64)
    stats = UplinkStats(published=3, connects=1, last_reason_codes=[0, 0, 0])
    recorder.observe({CUFF: status}, stats, uplink_connected=True)
    assert recorder.write()
    assert not recorder.write()  # nothing changed: no write (SD-card wear)

    code, out = _status(config, "--json")
    outbox.close()
    assert code == 0, out
    snap = json.loads(out)
    assert snap["hub_running"] is True
    devices = {d["address"]: d for d in snap["devices"]}
    assert devices[CUFF]["battery_percent"] == 64
    assert devices[CUFF]["connected"] is True
    assert devices[CUFF]["last_seen_age_s"] < 60
    assert devices[SCALE]["last_seen"] is None
    sources = {s["source"]: s for s in snap["readings"]["sources"]}
    assert (sources[CUFF]["kind"], sources[CUFF]["count_today"]) == ("blood_pressure", 2)
    assert (sources[CUFF]["undecoded_today"], sources["sim-9"]["undecoded_today"]) == (1, 0)
    assert queue_clinical(snap) == 1
    assert (sources["sim-9"]["kind"], sources["sim-9"]["count_today"]) == ("sensor_board", 2)
    assert 25 <= sources["sim-9"]["last_reading_age_s"] <= 60
    queue = snap["queue"]
    assert queue["readings_by_priority"]["environmental"] == 2
    assert queue["batches_by_priority"]["alert"] == 1
    assert 85 <= queue["oldest_unsent_age_s"] <= 150
    assert (queue["rejected_batches"], queue["evicted_readings_total"]) == (0, 0)
    assert snap["uplink"]["connected"] is True
    assert snap["uplink"]["published_batches"] == 3
    assert snap["uplink"]["last_puback_age_s"] < 60
    assert "181" not in out  # no values in the status, JSON included
    assert PATIENT not in out

    code, text = _status(config)  # CliRunner is not a TTY: one snapshot, no colour
    assert code == 0
    assert "\x1b[" not in text
    assert "running" in text
    assert CUFF in text  # as `narhub devices list` shows it
    assert "64 %" in text
    assert "undecoded" in text
    assert "56d200" not in text  # the raw bytes are a value too
    assert PATIENT not in text
    assert "181" not in text
    assert "21.5" not in text


def test_the_recorder_keeps_todays_counts_over_a_restart_and_starts_a_new_day(
    tmp_path: Path,
) -> None:
    day1 = int(dt.datetime(2026, 3, 2, 10, 0).astimezone().timestamp() * 1000)
    clock = [day1]
    reading = _reading(CUFF, "120", day1, Priority.CLINICAL)
    first = ActivityRecorder(tmp_path, clock_ms=lambda: clock[0])
    first.readings_stored([reading, reading])
    first.write()
    clock[0] += 3_600_000
    again = ActivityRecorder(tmp_path, clock_ms=lambda: clock[0])
    again.readings_stored([reading])
    again.write()
    saved = json.loads((tmp_path / ACTIVITY_FILE).read_text())
    assert saved["sources"][CUFF]["count_today"] == 3
    clock[0] += 86_400_000
    next_day = ActivityRecorder(tmp_path, clock_ms=lambda: clock[0])
    next_day.write(force=True)
    saved = json.loads((tmp_path / ACTIVITY_FILE).read_text())
    assert saved["sources"] == {}
    assert saved["devices"][CUFF]["last_seen_ms"] == day1 + 3_600_000


def test_the_unit_keeps_its_activity_file_in_ram_and_status_finds_it(
    tmp_path: Path, rig_pki: RigPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under systemd (``RuntimeDirectory=narhub``) the file rewritten every few seconds lives
    in /run, not on the SD card; ``narhub status`` looks there for this data directory's."""
    config = _hub(tmp_path, rig_pki)
    hub = load_config(config)
    runtime = tmp_path / "run-narhub"
    runtime.mkdir()
    monkeypatch.setenv(RUNTIME_DIRECTORY_ENV, str(runtime))
    monkeypatch.setattr(status_module, "SERVICE_RUNTIME_DIR", runtime)  # the seam for /run
    recorder = ActivityRecorder(hub.data_dir)
    now_ms = time.time_ns() // 1_000_000
    recorder.readings_stored([_reading(CUFF, "120", now_ms, Priority.CLINICAL)])
    assert recorder.write()
    assert (runtime / ACTIVITY_FILE).exists()
    assert not (hub.data_dir / ACTIVITY_FILE).exists()
    code, out = _status(config, "--json")
    assert code == 0, out
    assert json.loads(out)["hub_running"] is True
    # Another hub's file in /run (another data directory) is not this hub's activity.
    other = json.loads((runtime / ACTIVITY_FILE).read_text())
    other["data_dir"] = str(tmp_path / "elsewhere")
    (runtime / ACTIVITY_FILE).write_text(json.dumps(other))
    code, out = _status(config, "--json")
    assert code == 0, out
    assert json.loads(out)["hub_running"] is False


def test_a_fresh_activity_file_whose_hub_has_exited_is_not_a_running_hub(
    tmp_path: Path, rig_pki: RigPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub killed a second ago leaves a fresh file: its writer's pid decides."""
    monkeypatch.delenv(RUNTIME_DIRECTORY_ENV, raising=False)
    monkeypatch.setattr(status_module, "SERVICE_RUNTIME_DIR", tmp_path / "no-run")
    config = _hub(tmp_path, rig_pki)
    hub = load_config(config)
    recorder = ActivityRecorder(hub.data_dir)
    recorder.readings_stored(
        [_reading(CUFF, "120", time.time_ns() // 1_000_000, Priority.CLINICAL)]
    )
    assert recorder.write()
    code, out = _status(config, "--json")
    assert code == 0, out
    assert json.loads(out)["hub_running"] is True
    activity = json.loads((hub.data_dir / ACTIVITY_FILE).read_text())
    activity["pid"] = exited_pid()
    (hub.data_dir / ACTIVITY_FILE).write_text(json.dumps(activity))
    code, out = _status(config, "--json")
    assert code == 0, out
    snap = json.loads(out)
    assert snap["hub_running"] is False
    assert any("not running" in note for note in snap["notes"])


def test_a_store_held_by_the_running_hub_is_read_from_its_activity_file(
    tmp_path: Path, rig_pki: RigPki
) -> None:
    """The hub holds its outbox exclusively (no -shm file on the SD card): status takes the
    queue the hub recorded; doctor says so; `narhub queue stats` names the hub and the fix."""
    config = _hub(tmp_path, rig_pki)
    hub = load_config(config)
    now_ms = time.time_ns() // 1_000_000
    outbox = Outbox(hub.data_dir / "outbox.sqlite3", exclusive=True)
    try:
        outbox.add([_reading(CUFF, "120", now_ms - 5_000, Priority.CLINICAL)] * 3)
        assert not Path(f"{hub.data_dir / 'outbox.sqlite3'}-shm").exists()
        code, out = _status(config, "--json")
        assert code == 0, out
        snap = json.loads(out)
        assert snap["queue"] is None
        assert any("holds the outbox" in note for note in snap["notes"])

        recorder = ActivityRecorder(hub.data_dir)  # what the service's recorder does
        recorder.observe_queue(outbox.queue_figures())
        assert recorder.write()
        code, out = _status(config, "--json")
        assert code == 0, out
        snap = json.loads(out)
        assert snap["queue"]["readings_by_priority"]["clinical"] == 3
        assert any("as the running hub last recorded it" in note for note in snap["notes"])

        result = runner.invoke(app, ["queue", "stats", "--config", str(config), "--json"])
        assert result.exit_code == 1
        error = json.loads(result.stdout)
        assert "held by the running hub" in error["error"]
        assert "systemctl stop narhub" in error["hint"]
        check = _store_check(hub.data_dir / "outbox.sqlite3", dt.datetime.now(dt.UTC))
        assert check.ok
        assert "held by the running hub" in check.detail
    finally:
        outbox.close()
    result = runner.invoke(app, ["queue", "stats", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["unbatched_readings"] == 3


def test_missing_config_and_damaged_store_are_typed_errors(tmp_path: Path, rig_pki: RigPki) -> None:
    code, out = _status(tmp_path / "nope.toml", "--json")
    assert code == 3
    assert json.loads(out)["hint"] == "run `narhub init`"
    config = _hub(tmp_path, rig_pki)
    (tmp_path / "data" / "outbox.sqlite3").write_bytes(b"not a database" * 100)
    code, out = _status(config, "--json")
    assert code == 1
    error = json.loads(out)
    assert "outbox.sqlite3" in error["error"]
    assert "narhub doctor" in error["hint"]


#: Starts a command as a technician's shell would: Ctrl-C neither ignored nor blocked, whatever
#: the test process inherited (an ignored or blocked SIGINT survives exec).
_INTERACTIVE = (
    "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def _signal_state() -> str:
    lines = Path("/proc/self/status").read_text().splitlines()
    return " ".join(line for line in lines if line.startswith(("SigBlk", "SigIgn")))


def test_on_a_tty_the_view_refreshes_until_ctrl_c(tmp_path: Path, rig_pki: RigPki) -> None:
    import os
    import pty
    import select
    import subprocess
    import sys

    config = _hub(tmp_path, rig_pki)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _INTERACTIVE,
            str(Path(sys.executable).parent / "narhub"),
            "status",
            "-c",
            str(config),
            "--interval",
            "0.2",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100", "LINES": "60"},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    try:
        # Several frames: the title is drawn once per refresh.
        while seen.count(b"devices") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                seen += os.read(master, 65536)
        process.send_signal(signal.SIGINT)  # the technician's Ctrl-C
        # Keep reading: a full pty would block the view's last frame, and with it the exit.
        stop_by = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < stop_by:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):  # EIO once the child closed its end
                    seen += os.read(master, 65536)
        assert process.poll() == 0, f"still running after Ctrl-C; test process {_signal_state()}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert seen.count(b"devices") >= 3, seen[-500:]
    assert CUFF.encode() in seen
    assert PATIENT.encode() not in seen


def test_doctor_reports_each_paired_device_seen_and_its_battery(
    tmp_path: Path, rig_pki: RigPki
) -> None:
    config = _hub(tmp_path, rig_pki)
    recorder = ActivityRecorder(tmp_path / "data")
    low = DeviceStatus("blood_pressure-x", "blood_pressure", connected=False, battery_percent=9)
    recorder.observe({CUFF: low}, None)
    recorder.readings_stored(
        [_reading(CUFF, "120", time.time_ns() // 1_000_000, Priority.CLINICAL)]
    )
    # The adapter stopped answering twice and the hub power-cycled it (drivers/ble/adapter.py),
    # once because its D-Bus calls timed out (drivers/ble/scanner.py).
    recorder.observe_ble(
        {
            "adapter_resets": 2,
            "adapter_reset_failures": 0,
            "adapter_call_timeouts": 1,
            "other_user_readings": 3,
        }
    )
    recorder.write()
    result = runner.invoke(app, ["doctor", "--config", str(config), "--json"])
    assert result.exit_code == 1
    (adapter,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "adapter"]
    assert adapter["ok"] is True
    assert "power-cycled the Bluetooth adapter 2 time(s)" in adapter["detail"]
    assert "1 D-Bus call(s) to it timed out" in adapter["detail"]
    code, out = _status(config, "--json")
    assert code == 0
    assert json.loads(out)["ble"] == {
        "adapter_resets": 2,
        "adapter_reset_failures": 0,
        "adapter_call_timeouts": 1,
        "other_user_readings": 3,
    }
    code, text = _status(config)
    assert "bluetooth adapter power cycles: 2 (failed: 0; D-Bus calls timed out: 1)" in text
    assert "not forwarded: 3" in " ".join(text.split())
    devices = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "device"]
    assert len(devices) == 2
    cuff, scale = devices
    assert CUFF in cuff["detail"]
    assert "battery 9 %" in cuff["detail"]
    assert (cuff["ok"], cuff["hint"]) == (False, "replace or charge the device's batteries")
    assert not scale["ok"]
    assert "not seen" in scale["detail"]
    assert "take a measurement" in scale["hint"]


def test_the_unit_names_the_runtime_directory_status_looks_in() -> None:
    unit = Path(__file__).parents[1] / "deploy" / "systemd" / "narhub.service"
    lines = unit.read_text(encoding="utf-8").splitlines()
    runtime = [line.split("=", 1)[1] for line in lines if line.startswith("RuntimeDirectory=")]
    assert [Path("/run") / name for name in runtime] == [status_module.SERVICE_RUNTIME_DIR]


def test_uplink_test_with_a_key_that_cannot_sign_es256_names_the_key(
    tmp_path: Path, rig_pki: RigPki
) -> None:
    config = _hub(tmp_path, rig_pki)
    hub = load_config(config)
    p384 = ec.generate_private_key(ec.SECP384R1())
    hub.uplink.key_file.parent.mkdir(parents=True, exist_ok=True)
    hub.uplink.key_file.write_bytes(
        p384.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    result = runner.invoke(app, ["uplink", "test", "--config", str(config), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert str(hub.uplink.key_file) in out["error"]
    assert "P-256" in out["error"]


def queue_clinical(snap: dict[str, Any]) -> int:
    """The clinical readings waiting (the raw record travels as a clinical reading)."""
    return int(snap["queue"]["readings_by_priority"]["clinical"])
