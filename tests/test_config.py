"""Configuration errors name the TOML key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import BleConfig, ConfigError, load_config, read_toml, validated

GOOD = """
hub_id = "hub-0001"
data_dir = "/var/lib/narhub"
[ble]
backend = "sim"
[[ble.devices]]
address = "C0:FF:EE:00:00:01"
kind = "thermometer"
[uplink]
host = "broker.region.example"
ca_file = "/etc/narhub/ca.crt"
cert_file = "/etc/narhub/hub.crt"
key_file = "/etc/narhub/hub.key"
"""


def test_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.ble.devices[0].kind == "thermometer"
    assert config.uplink.port == 8883


def test_error_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(GOOD.replace("C0:FF:EE:00:00:01", "not-a-mac").replace("8883", "x"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any(p.startswith("ble.devices[0].address:") for p in info.value.problems)


def test_unknown_key_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("surprise = 1\n" + GOOD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].startswith("surprise:")
    path.write_text("hub_id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


class OtherFileError(ConfigError):
    """Another program's file (the rig's scenarios) read by the same helpers."""


def test_another_file_s_errors_are_its_own_error_class(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    with pytest.raises(OtherFileError, match="cannot read"):
        read_toml(path, error=OtherFileError)
    path.write_text("hub_id = ")
    with pytest.raises(OtherFileError, match="not valid TOML"):
        read_toml(path, error=OtherFileError)
    path.write_text("backend = 3\n")
    with pytest.raises(OtherFileError) as info:
        validated(BleConfig, read_toml(path), path=path, error=OtherFileError)
    assert info.value.problems[0].startswith("backend:")
