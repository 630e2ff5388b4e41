"""``[[recipients]]`` (docs/consent.md): backward compatible with the single ``[uplink]``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hub_configs import REGION_RECIPIENT, municipality_recipient

from gateway.config import ConfigError, load_config, parse_config, render_config

BASE = """
hub_id = "hub-0001"
data_dir = "/var/lib/narhub"
"""
UPLINK = """
[uplink]
host = "broker.region.example"
ca_file = "/etc/narhub/ca.crt"
cert_file = "/etc/narhub/hub.crt"
key_file = "/etc/narhub/hub.key"
"""
TWO = municipality_recipient(port=8884) + REGION_RECIPIENT


def test_uplink_alone_is_the_recipient_region(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE + UPLINK))
    [region] = config.all_recipients()
    assert region.name == "region"
    assert region.host == "broker.region.example"
    assert region.topics_root() == "narhub/v1"


def test_recipients_without_uplink_take_region_as_home(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE + TWO))
    assert [r.name for r in config.all_recipients()] == ["municipality", "region"]
    assert config.uplink.host == "broker.region.example"
    municipality = config.all_recipients()[0]
    assert (municipality.port, municipality.topics_root()) == (8884, "narhub/v1/r/municipality")


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    text = BASE + TWO.replace('name = "region"', 'name = "municipality"')
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert any("twice: municipality" in p for p in info.value.problems)


def test_bad_recipient_name_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, BASE + TWO.replace('"municipality"', '"Kommun!"')))
    assert any(p.startswith("recipients[0].name:") for p in info.value.problems)


def test_no_uplink_no_recipients_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, BASE))
    assert any(p.startswith("uplink:") for p in info.value.problems)


def test_render_round_trips_recipients(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE + TWO))
    again = parse_config(tomllib.loads(render_config(config)), path=tmp_path / "x.toml")
    assert again == config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def test_home_recipient(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, BASE + UPLINK)).home_recipient() == "region"
    assert load_config(_write(tmp_path, BASE + TWO)).home_recipient() == "region"
    only = TWO.split("[[recipients]]")[1]
    assert load_config(_write(tmp_path, BASE + "[[recipients]]" + only)).home_recipient() == (
        "municipality"
    )


def test_the_uplink_publishes_in_the_home_recipients_tree(tmp_path: Path) -> None:
    from gateway.outbox import PendingBatch
    from gateway.uplink import status_topic, up_topic
    from protocols.uplink import Priority

    only = "[[recipients]]" + TWO.split("[[recipients]]")[1]
    root = load_config(_write(tmp_path, BASE + only)).home().topics_root()
    batch = PendingBatch(1, 0, Priority.ALERT, b"")
    assert up_topic("hub-0001", batch, root) == "narhub/v1/r/municipality/hub-0001/up/alert"
    assert status_topic("hub-0001", root) == "narhub/v1/r/municipality/hub-0001/status"
    region = load_config(_write(tmp_path, BASE + UPLINK)).home().topics_root()
    assert up_topic("hub-0001", batch, region) == "narhub/v1/hub-0001/up/alert"
