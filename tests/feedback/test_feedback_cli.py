"""``[feedback]`` in the configuration, ``narhub feedback test`` and ``narhub doctor``'s
feedback lines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.config import (
    ConfigError,
    FeedbackConfig,
    HubConfig,
    UplinkConfig,
    load_config,
    parse_config,
    render_config,
)
from gateway.feedback.patterns import Pattern
from gateway.feedback.report import report_path, write_report
from gateway.feedback.sentences import every_sentence
from technician.cli import app
from technician.feedbackcheck import feedback_checks
from tests.feedback.conftest import PINS, measure

runner = CliRunner()


def _hub(tmp_path: Path, feedback: dict[str, Any] | None) -> HubConfig:
    data = {
        "hub_id": "hub-fb-1",
        "data_dir": str(tmp_path / "data"),
        "uplink": {
            "host": "broker.example",
            "ca_file": "ca.pem",
            "cert_file": "c.pem",
            "key_file": "k.pem",
        },
    }
    if feedback is not None:
        data["feedback"] = feedback
    return parse_config(data, path=tmp_path / "narhub.toml")


@pytest.mark.parametrize(
    ("feedback", "key"),
    [
        ({"language": "fi"}, "feedback.language"),
        ({"quiet_from": "24:00"}, "feedback.quiet_from"),
        ({"quiet_until": "7:00"}, "feedback.quiet_until"),
        ({"light": {"red_pin": 60}}, "feedback.light.red_pin"),
        ({"light": {"trace_file": "/tmp/x"}}, "feedback.light: Value error, trace_file"),
        ({"display": {"driver": "png"}}, "feedback.display: Value error, png_file"),
        ({"display": {"driver": "vga"}}, "feedback.display.driver"),
        ({"voice": {"volume_percent": 150}}, "feedback.voice.volume_percent"),
        ({"button_pin": 17, "light": {}}, "feedback: Value error, button_pin 17"),
        ({"lights": {}}, "feedback.lights"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, feedback: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _hub(tmp_path, feedback)
    assert any(p.startswith(key) for p in caught.value.problems), caught.value.problems


def test_feedback_round_trips_through_toml(tmp_path: Path) -> None:
    hub = _hub(
        tmp_path,
        {
            "language": "en",
            "button_pin": 26,
            "light": {"pin_factory": "mock", "trace_file": str(tmp_path / "t.jsonl")},
            "display": {"driver": "png", "png_file": str(tmp_path / "f.png")},
            "voice": {"player": ["aplay", "-q", "-D", "default"], "volume_percent": 40},
        },
    )
    path = tmp_path / "narhub.toml"
    path.write_text(render_config(hub))
    assert load_config(path) == hub
    assert isinstance(hub.feedback, FeedbackConfig)


def _config_file(tmp_path: Path, feedback: dict[str, Any]) -> Path:
    hub = _hub(tmp_path, feedback)
    path = tmp_path / "narhub.toml"
    path.write_text(render_config(hub))
    return path


def test_feedback_test_plays_shows_and_says_everything(
    tmp_path: Path, font_file: Path, espeak: str, pins: dict[str, Any]
) -> None:
    said = tmp_path / "said"
    said.mkdir()
    path = _config_file(
        tmp_path,
        {
            "light": {
                "pin_factory": "mock",
                "red_pin": PINS[0],
                "green_pin": PINS[1],
                "blue_pin": PINS[2],
            },
            "display": {"driver": "png", "png_file": str(tmp_path / "frame.png")},
            "voice": {"player": ["sh", "-c", 'cat > "$0/$(date +%s%N).wav"', str(said)]},
        },
    )
    frames = tmp_path / "frames"
    result = runner.invoke(
        app,
        [
            "feedback",
            "test",
            "--config",
            str(path),
            "--json",
            "--hold",
            "0.1",
            "--frames",
            str(frames),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    outputs = report["outputs"]
    assert outputs["light"]["shown"] == [p.name.lower() for p in Pattern]
    assert outputs["display"]["shown"] == [
        "all-well",
        "waiting",
        "no-connection",
        "battery-low",
        "device-silent",
        "no-readings",
    ]
    assert outputs["voice"]["shown"] == [name for name, _ in every_sentence("sv")]
    assert len(report["frames"]) == 12
    wavs = sorted(said.iterdir())
    assert len(wavs) == len(every_sentence("sv"))
    assert all(measure(w).rms_amplitude > 0.01 for w in wavs)
    # The blue pin went on for the "stored" pattern, and everything is off at the end.
    assert any(s.state == 1.0 for s in pins["blue"].states)
    assert (pins["red"].state, pins["green"].state, pins["blue"].state) == (0, 0, 0)


def test_feedback_test_reports_a_missing_output_and_exits_1(tmp_path: Path) -> None:
    path = _config_file(tmp_path, {"voice": {"player": ["no-such-player-x"]}})
    result = runner.invoke(app, ["feedback", "test", "--config", str(path), "--json"])
    assert result.exit_code == 1, result.output
    voice = json.loads(result.output)["outputs"]["voice"]
    assert voice["ok"] is False
    assert "no-such-player-x" in voice["error"]
    assert voice["hint"]


def test_doctor_lines_say_what_the_running_hub_says(
    tmp_path: Path, font_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    hub = _hub(
        tmp_path,
        {
            "button_pin": 26,
            "light": {"pin_factory": "mock"},
            "display": {"driver": "png", "png_file": str(tmp_path / "f.png")},
        },
    )
    lines = {c.name: c for c in feedback_checks(hub)}
    assert set(lines) == {"feedback light", "feedback button", "feedback display"}
    assert all(c.ok for c in lines.values())
    assert "hub not running" in lines["feedback light"].detail
    hub.data_dir.mkdir(parents=True)
    write_report(
        report_path(hub.data_dir, {}),
        opened={"light", "button"},
        failures={"display": 3},
        last={"display": "FileNotFoundError: no such directory"},
    )
    assert os.getpid() > 0  # the report names this (running) process
    lines = {c.name: c for c in feedback_checks(hub)}
    assert lines["feedback light"].ok
    assert "working" in lines["feedback light"].detail
    assert not lines["feedback display"].ok
    assert "FileNotFoundError" in lines["feedback display"].detail


def test_no_feedback_section_no_lines(tmp_path: Path) -> None:
    assert feedback_checks(_hub(tmp_path, None)) == []
    assert UplinkConfig  # imported for the shape of a hub
