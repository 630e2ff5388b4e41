"""Board sampling intervals: configured per board, sent as CONFIG (sensor-link spec §3.6) to
the real firmware on the MicroPython unix port, changed live by a remote config update."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sensorlink_rig import SCENARIO, SimBoard, eventually

from gateway.board_source import BoardSampling, run_board
from gateway.config import ConfigError, HubConfig, parse_config, render_config
from gateway.outbox import AsyncOutbox, Outbox
from gateway.remote.config_update import ConfigUpdater
from region.command_sender import RegionCommandKey


@pytest.mark.micropython
async def test_the_board_samples_at_the_configured_intervals_and_takes_a_change_live(
    tmp_path: Path,
) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3"))
    sampling = BoardSampling.from_seconds([("air-temperature", 0.2), ("door-open", 0.5)])
    async with SimBoard(tmp_path, SCENARIO) as board:
        task = asyncio.create_task(run_board(f"serial:{board.port}", outbox.add, sampling=sampling))
        try:
            await eventually(lambda: sampling.confirmed is not None, 15, "the board's CONFIG")
            assert sampling.confirmed is not None
            assert (sampling.confirmed[1], sampling.confirmed[4]) == (200, 500)
            assert sampling.confirmed[3] == 50  # unset kinds keep the firmware's default
            sampling.set({1: 300, 4: 500})
            await eventually(
                lambda: sampling.confirmed is not None and sampling.confirmed[1] == 300,
                15,
                "the changed interval confirmed",
            )
            # A kind the firmware does not pace on its own (humidity rides on temperature):
            # the board refuses with an ERROR and keeps what it had.
            sampling.set({2: 1000})
            await eventually(lambda: sampling.refused == 1, 15, "the refusal")
            assert sampling.confirmed[1] == 300
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    outbox.close()


def _config(tmp_path: Path, boards: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "hub_id": "hub-sampling",
        "data_dir": str(tmp_path / "data"),
        "uplink": {
            "host": "localhost",
            "ca_file": "ca.crt",
            "cert_file": "hub.crt",
            "key_file": "hub.key",
        },
        "sensors": {"boards": boards},
    }


def test_intervals_are_validated_naming_the_key(tmp_path: Path) -> None:
    for bad, problem in (
        ({"humidity": 60}, "humidity"),
        ({"air-temperature": 0.001}, "greater than or equal to 0.01"),
    ):
        raw = _config(tmp_path, [{"port": "serial:/dev/ttyACM0", "intervals_s": bad}])
        with pytest.raises(ConfigError) as caught:
            parse_config(raw, path=tmp_path / "narhub.toml")
        text = "; ".join(caught.value.problems)
        assert "sensors.boards[0].intervals_s" in text
        assert problem in text


async def test_a_remote_change_of_intervals_only_applies_live(tmp_path: Path) -> None:
    path = tmp_path / "narhub.toml"
    port = "serial:/dev/ttyACM0"
    boards = [{"port": port, "intervals_s": {"air-temperature": 60}}]
    path.write_text(render_config(parse_config(_config(tmp_path, boards), path=path)))
    applied: list[HubConfig] = []
    updater = ConfigUpdater(path, apply_live=lambda _old, new: applied.append(new))
    key = RegionCommandKey.init(tmp_path / "key")

    def command(new_boards: list[dict[str, Any]]) -> Any:
        body = {"set": {"sensors": {"boards": new_boards}}}
        return key.build("hub-sampling", "config", body, expires_in_s=60)[0]

    result = await updater(command([{"port": port, "intervals_s": {"air-temperature": 30}}]))
    assert result["applied_live"] == ["sensors.boards"]
    assert result["restart_required"] == []
    assert applied[-1].sensors.boards[0].intervals_s == {"air-temperature": 30}
    # Another port is a new board: that needs a restart.
    result = await updater(command([{"port": "serial:/dev/ttyACM1"}]))
    assert result["restart_required"] == ["sensors.boards"]


@pytest.mark.micropython
async def test_a_board_without_wanted_intervals_is_served_as_before(tmp_path: Path) -> None:
    """The hub gives every board a BoardSampling, most with nothing to set: readings flow."""
    outbox = AsyncOutbox(Outbox(tmp_path / "outbox.sqlite3"))
    sampling = BoardSampling()
    async with SimBoard(tmp_path, SCENARIO) as board:
        task = asyncio.create_task(run_board(f"serial:{board.port}", outbox.add, sampling=sampling))
        try:
            await eventually(lambda: outbox.outbox.unbatched_count() >= 20, 15, "20 readings")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert sampling.confirmed is None  # nothing was sent
    outbox.close()
