"""``narhub region command-key`` and ``narhub region send config`` end to end: the CLI signs,
publishes over mutual TLS with the operator certificate, and prints the hub's result."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_remote_commands import HUB, TIMEOUT_S, make_rig, running
from typer.testing import CliRunner

from common.pki import certificate_serial
from gateway.ble_backend import make_ble_backend
from gateway.config import load_config
from gateway.hub import Hub
from region.cli import _Channel, _send_command
from rig.broker import MosquittoBroker, RigPki
from technician.cli import app

runner = CliRunner()


def region_ca_dir(rig_pki: RigPki, tmp_path: Path) -> Path:
    """The rig's CA in the layout of `narhub region ca` (ca.crt, ca.key)."""
    directory = tmp_path / "ca"
    directory.mkdir()
    (directory / "ca.crt").write_bytes(rig_pki.ca.cert_pem)
    (directory / "ca.key").write_bytes(rig_pki.ca.key_pem)
    return directory


def broker_options(rig_pki: RigPki, broker: MosquittoBroker, ca_dir: Path) -> list[str]:
    """How `narhub region send` reaches the hub: the region's CA, the broker, and the
    operator's certificate."""
    operator = rig_pki.directory / "region-operator"
    return [
        "--ca-dir",
        str(ca_dir),
        "--host",
        broker.host,
        "--port",
        str(broker.port),
        "--cert",
        str(operator.with_suffix(".crt")),
        "--key",
        str(operator.with_suffix(".key")),
        "--timeout",
        "10",
    ]


async def invoke(*args: str) -> tuple[int, dict[str, object]]:
    result = await asyncio.to_thread(runner.invoke, app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


async def test_send_config_applies_and_a_foreign_key_is_refused(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    common = broker_options(rig_pki, broker, region_ca_dir(rig_pki, tmp_path))

    async def send_config(key_dir: Path, *args: str) -> tuple[int, dict[str, object]]:
        return await invoke(
            "region", "send", "config", HUB, "--key-dir", str(key_dir), *args, *common
        )

    patch = tmp_path / "patch.toml"
    patch.write_text("[batching]\nclinical_s = 4.0\n[pipeline]\nthresholds = []\n")
    foreign = tmp_path / "foreign-key"
    code, out = await invoke("region", "command-key", "init", "--dir", str(foreign))
    assert (code, out["kid"]) == (0, "region-cmd-1")
    async with running(rig.handler()):
        code, out = await send_config(rig.key.directory, "--file", str(patch))
        assert code == 0, out
        (result,) = out["results"]  # type: ignore[misc]
        assert result["status"] == "applied"
        assert result["data"]["changed"] == ["batching.clinical_s", "pipeline.thresholds"]
        assert load_config(rig.config_path).batching.clinical_s == 4.0

        code, out = await send_config(foreign, "--file", str(patch))
        assert code == 1
        (result,) = out["results"]  # type: ignore[misc]
        assert (result["status"], result["reason"]) == ("rejected", "unsigned")

        code, out = await send_config(rig.key.directory, "--rollback")
        assert code == 0, out
        assert load_config(rig.config_path).batching.clinical_s == 10.0


async def test_send_renew_signs_the_csr_and_the_hub_switches(
    rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    rig = make_rig(rig_pki, broker, tmp_path)
    ca_dir = region_ca_dir(rig_pki, tmp_path)
    old_cert = rig.config.uplink.cert_file.read_bytes()
    hub = Hub(rig.config, make_ble_backend(rig.config.ble), config_path=rig.config_path)
    assert hub.remote is not None
    async with hub:
        async with asyncio.timeout(TIMEOUT_S):
            await hub.remote.subscribed.wait()
        code, out = await invoke(
            "region",
            "send",
            "renew",
            HUB,
            "--key-dir",
            str(rig.key.directory),
            *broker_options(rig_pki, broker, ca_dir),
        )
        assert code == 0, out
        csr_step, install_step = out["results"]  # type: ignore[misc]
        assert "BEGIN CERTIFICATE REQUEST" in csr_step["data"]["csr"]
        assert install_step["status"] == "applied"
        # The command session comes back on the new certificate.
        async with asyncio.timeout(TIMEOUT_S):
            await hub.remote.wait_sessions(2)
    new_cert = rig.config.uplink.cert_file.read_bytes()
    assert new_cert != old_cert
    assert (ca_dir / "issued" / f"{certificate_serial(new_cert):x}.crt").read_bytes() == new_cert


def test_a_send_command_without_a_channel_or_json_flag_is_refused_at_registration() -> None:
    """``_send_command`` places the channel's options where ``channel`` and ``as_json``
    stand; a function lacking either would lose options and fail only when run."""

    def no_channel(hub_id: str, as_json: bool = False) -> None:
        del hub_id, as_json

    def no_json(hub_id: str, channel: _Channel) -> None:
        del hub_id, channel

    with pytest.raises(TypeError, match=r"lacks \['channel'\]"):
        _send_command("test-no-channel")(no_channel)
    with pytest.raises(TypeError, match=r"lacks \['as_json'\]"):
        _send_command("test-no-json")(no_json)
