"""Remote management, hub side, against a real Mosquitto with mutual TLS and the region ACL.

Each command is sent by the region's sender (operator certificate) and answered by the hub's
:class:`CommandHandler`: applied, refused as unsigned, replayed (also after a restart) and
expired; configuration updates are validated, atomic, kept for rollback and applied live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.command_keys import PemCommandSigner, PemCommandVerifier
from common.pki import new_private_key_pem
from drivers.mqtt import MqttLink, TlsFiles
from gateway.ble_backend import make_ble_backend
from gateway.config import HubConfig, load_config, parse_config, render_config
from gateway.hub import Hub
from gateway.remote.config_update import ConfigUpdater, previous_path
from gateway.remote.handler import CommandHandler
from gateway.remote.hubside import command_connect, load_verifier, state_path
from gateway.remote.state import RemoteState
from protocols.command_results import CommandResult, Status
from protocols.command_topics import cmd_topic, result_topic
from protocols.commands import Command, encode_command
from region.broker_config import OPERATOR_USER
from region.command_sender import RegionCommandKey, SendError, operator_client_id, send_and_wait
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-remote-1"
TIMEOUT_S = 10.0


@dataclass
class Rig:
    """A hub configuration on disk, the region's command key and an operator connection."""

    config_path: Path
    config: HubConfig
    key: RegionCommandKey
    operator: Callable[[], AbstractAsyncContextManager[MqttLink]]
    live_updates: list[tuple[HubConfig, HubConfig]]

    def handler(self) -> CommandHandler:
        """A fresh handler over the persisted state (a hub start)."""
        updater = ConfigUpdater(
            self.config_path, apply_live=lambda old, new: self.live_updates.append((old, new))
        )
        return CommandHandler(
            HUB,
            load_verifier(self.config),
            RemoteState(state_path(self.config)),
            {"config": updater},
            command_connect(self.config),
        )

    async def send(self, kind: str, message: bytes) -> CommandResult:
        return await send_and_wait(self.operator, HUB, kind, message, timeout_s=TIMEOUT_S)

    def command(self, body: dict[str, object], **changes: int) -> tuple[Command, bytes]:
        command, message = self.key.build(HUB, "config", body, expires_in_s=600)
        if not changes:
            return command, message
        fields = {**command.__dict__, **changes}
        changed = Command(**fields)  # type: ignore[arg-type]
        return changed, self.key.signer().sign(changed)


def make_rig(rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path) -> Rig:
    hub_identity = rig_pki.client(HUB)
    operator = rig_pki.client(OPERATOR_USER)
    key = RegionCommandKey.init(tmp_path / "region-command")
    config = parse_config(
        {
            "hub_id": HUB,
            "data_dir": str(tmp_path / "data"),
            # The virtual rig (no BlueZ; the container's clock counts as synced).
            "ble": {"backend": "sim"},
            "uplink": {
                "host": broker.host,
                "port": broker.port,
                "ca_file": str(rig_pki.ca_file),
                "cert_file": str(hub_identity.cert_file),
                "key_file": str(hub_identity.key_file),
            },
            "pipeline": {"thresholds": [{"mdc_code": 19320, "unit": "Cel", "above": "38.0"}]},
            "remote": {"command_keys": {key.kid: str(key.public_file)}},
        },
        path=tmp_path / "narhub.toml",
    )
    config_path = tmp_path / "narhub.toml"
    config_path.write_text(render_config(config))
    tls = TlsFiles(rig_pki.ca_file, operator.cert_file, operator.key_file)

    def connect_operator() -> MqttLink:
        return MqttLink(broker.host, broker.port, client_id=operator_client_id(), tls=tls)

    return Rig(config_path, config, key, connect_operator, [])


@pytest.fixture
def rig(rig_pki: RigPki, broker: MosquittoBroker, tmp_path: Path) -> Rig:
    return make_rig(rig_pki, broker, tmp_path)


@asynccontextmanager
async def running(handler: CommandHandler) -> AsyncIterator[CommandHandler]:
    task = asyncio.create_task(handler.run(), name="remote")
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await handler.subscribed.wait()
        yield handler
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


THRESHOLDS = {"pipeline": {"thresholds": [{"mdc_code": 19320, "unit": "Cel", "above": "37.5"}]}}


async def test_config_update_is_applied_written_atomically_and_kept_for_rollback(rig: Rig) -> None:
    before = rig.config_path.read_text()
    async with running(rig.handler()):
        _, message = rig.command({"set": {**THRESHOLDS, "batching": {"clinical_s": 2.5}}})
        result = await rig.send("config", message)
        assert result.status is Status.APPLIED, result
        assert result.data["changed"] == ["batching.clinical_s", "pipeline.thresholds"]
        assert result.data["applied_live"] == ["batching.clinical_s", "pipeline.thresholds"]
        new = load_config(rig.config_path)
        assert str(new.pipeline.thresholds[0].above) == "37.5"
        assert new.batching.clinical_s == 2.5
        assert new.uplink == rig.config.uplink
        assert previous_path(rig.config_path).read_text() == before
        assert not list(rig.config_path.parent.glob(".*.tmp"))
        # The running hub got the new values once, after the file was written.
        ((old, live),) = rig.live_updates
        assert str(old.pipeline.thresholds[0].above) == "38.0"
        assert live == new

        devices = {"ble": {"devices": [{"address": "C0:FF:EE:00:00:09", "kind": "scale"}]}}
        result = await rig.send("config", rig.command({"set": devices})[1])
        assert result.status is Status.APPLIED
        assert result.data["restart_required"] == ["ble.devices"]
        assert load_config(rig.config_path).ble.devices[0].kind == "scale"

        result = await rig.send("config", rig.command({"rollback": True})[1])
        assert result.status is Status.APPLIED
        assert result.data["changed"] == ["ble.devices"]
        assert load_config(rig.config_path).ble.devices == []


@pytest.mark.parametrize(
    ("body", "reason", "names"),
    [
        ({"set": {"uplink": {"host": "evil.example"}}}, "not-allowed", "uplink"),
        ({"set": {"pipeline": {"patient": "x"}}}, "not-allowed", "pipeline.patient"),
        ({"set": {"remote": {"command_keys": {}}}}, "not-allowed", "remote"),
        (
            {"set": {"ble": {"devices": [{"address": "nope", "kind": "scale"}]}}},
            "invalid-config",
            "ble.devices[0].address",
        ),
        ({"set": {"batching": {"clinical_s": -1}}}, "invalid-config", "batching.clinical_s"),
        ({"set": {"batching": {"clinikal_s": 1}}}, "invalid-config", "batching.clinikal_s"),
        ({"rollback": True}, "no-previous", "earlier"),
        ({"replace": {}}, "invalid-config", "body must be"),
    ],
    ids=[
        "uplink",
        "unlisted-key",
        "pinned-keys",
        "bad-address",
        "bad-value",
        "typo",
        "no-prev",
        "shape",
    ],
)
async def test_config_refusals_name_the_key_and_change_nothing(
    rig: Rig, body: dict[str, object], reason: str, names: str
) -> None:
    before = rig.config_path.read_bytes()
    async with running(rig.handler()):
        result = await rig.send("config", rig.command(body)[1])
    assert (result.status, result.reason) == (Status.REJECTED, reason)
    assert names in result.detail
    assert rig.config_path.read_bytes() == before
    assert rig.live_updates == []


async def test_unsigned_forged_expired_and_replayed_commands_are_refused_and_reported(
    rig: Rig,
) -> None:
    before = rig.config_path.read_bytes()
    handler = rig.handler()
    async with running(handler):
        applied, message = rig.command({"set": THRESHOLDS})
        assert (await rig.send("config", message)).status is Status.APPLIED
        after_first = rig.config_path.read_bytes()
        assert after_first != before

        unsigned = encode_command(rig.command({"set": THRESHOLDS})[0])
        forged = PemCommandSigner(rig.key.kid, new_private_key_pem()).sign(
            rig.command({"set": THRESHOLDS})[0]
        )
        expired = rig.command({"set": THRESHOLDS}, expires_ms=applied.issued_ms - 1)[1]
        replayed = rig.command({"set": {"batching": {"clinical_s": 1}}}, seq=applied.seq)[1]
        outcomes = {
            name: await rig.send("config", msg)
            for name, msg in [
                ("unsigned", unsigned),
                ("forged", forged),
                ("expired", expired),
                ("replayed", replayed),
            ]
        }
        # The exact message again (a redelivery) gets its original result, not a second run.
        again = await rig.send("config", message)
    assert {name: (r.status, r.reason) for name, r in outcomes.items()} == {
        "unsigned": (Status.REJECTED, "unsigned"),
        "forged": (Status.REJECTED, "unsigned"),
        "expired": (Status.REJECTED, "expired"),
        "replayed": (Status.REJECTED, "replayed"),
    }
    assert outcomes["replayed"].seq is None  # nothing from a refused message is trusted
    assert (again.status, again.seq) == (Status.APPLIED, applied.seq)
    assert again == handler.results[0]
    assert rig.config_path.read_bytes() == after_first
    assert len(rig.live_updates) == 1

    # A restarted hub still knows the last sequence: the replay is refused across restarts.
    async with running(rig.handler()):
        replay_after_restart = rig.command({"set": THRESHOLDS}, seq=applied.seq)[1]
        result = await rig.send("config", replay_after_restart)
    assert (result.status, result.reason) == (Status.REJECTED, "replayed")


async def test_a_hub_never_executes_a_command_for_another_hub_or_kind_it_lacks(rig: Rig) -> None:
    async with running(rig.handler()):
        other = rig.key.build("hub-remote-2", "config", {"set": THRESHOLDS}, expires_in_s=60)[1]
        # The hub's topic, but signed for another hub: refused by the signed hub id.
        result = await rig.send("config", other)
        assert (result.status, result.reason) == (Status.REJECTED, "wrong-hub")
        firmware = rig.key.build(HUB, "firmware", {}, expires_in_s=60)[1]
        result = await rig.send("firmware", firmware)
        assert (result.status, result.reason) == (Status.REJECTED, "unsupported")


async def test_sender_reports_a_hub_without_a_command_session(rig: Rig) -> None:
    _, message = rig.command({"set": THRESHOLDS})
    with pytest.raises(SendError, match="no command session"):
        await rig.send("config", message)


def test_region_sequence_numbers_increase_and_survive_a_lost_state_file(tmp_path: Path) -> None:
    key = RegionCommandKey.init(tmp_path / "k")
    first = key.next_seq(HUB, now_ms=1_000)
    assert key.next_seq(HUB, now_ms=1_000) == first + 1
    (tmp_path / "k" / "command-seq.json").unlink()
    assert key.next_seq(HUB, now_ms=5_000) == 5_000


async def test_acl_lets_only_the_operator_command_and_hubs_only_answer_for_themselves(
    rig: Rig, rig_pki: RigPki, broker: MosquittoBroker
) -> None:
    other = rig_pki.client("hub-remote-2")
    tls = TlsFiles(rig_pki.ca_file, other.cert_file, other.key_file)
    _, message = rig.command({"set": THRESHOLDS})
    async with MqttLink(broker.host, broker.port, client_id="hub-remote-2", tls=tls) as link:
        # MQTT 5.0 3.4.2.1: 0x87 Not authorized.
        assert await link.publish(cmd_topic(HUB, "config"), message) == 0x87
        assert await link.publish(result_topic(HUB), b"{}") == 0x87
        assert await link.publish(result_topic("hub-remote-2"), b"{}") == 0x10
    async with rig.operator() as link:
        assert await link.publish(f"narhub/v1/{HUB}/up/clinical", b"x") == 0x87


async def test_hub_runs_the_handler_and_applies_thresholds_and_batching_live(rig: Rig) -> None:
    hub = Hub(rig.config, make_ble_backend(rig.config.ble), config_path=rig.config_path)
    assert hub.remote is not None
    async with hub:
        async with asyncio.timeout(TIMEOUT_S):
            await hub.remote.subscribed.wait()
        body = {"set": {**THRESHOLDS, "batching": {"environmental_s": 7.0}}}
        result = await rig.send("config", rig.command(body)[1])
        assert result.status is Status.APPLIED
        (threshold,) = hub.pipeline.settings.thresholds
        assert str(threshold.above) == "37.5"
        assert hub.outbox.outbox.batching.environmental_s == 7.0
        # The outcome is on the hub's retained status too (kind, seq, outcome; no body).
        async with asyncio.timeout(TIMEOUT_S):
            while (
                hub.uplink.last_status is None or hub.uplink.last_status.get("last_command") is None
            ):
                hub.uplink.status_published.clear()
                await hub.uplink.status_published.wait()
        last = hub.uplink.last_status["last_command"]
        assert (last["kind"], last["status"], last["seq"]) == ("config", "applied", result.seq)


async def test_a_fault_in_an_applier_is_reported_and_the_handler_goes_on(tmp_path: Path) -> None:
    key = RegionCommandKey.init(tmp_path / "k")
    calls: list[int] = []

    async def faulty(command: Command) -> dict[str, object]:
        calls.append(command.seq)
        if len(calls) == 1:
            raise ZeroDivisionError
        return {"ok": True}

    def no_broker() -> MqttLink:
        raise AssertionError("handle() needs no connection")

    verifier = PemCommandVerifier(HUB, {key.kid: key.public_file.read_bytes()})
    handler = CommandHandler(
        HUB, verifier, RemoteState(tmp_path / "state.json"), {"config": faulty}, no_broker
    )
    first = await handler.handle(key.build(HUB, "config", {}, expires_in_s=60)[1])
    second = await handler.handle(key.build(HUB, "config", {}, expires_in_s=60)[1])
    assert (first.status, first.reason, first.detail) == (
        Status.FAILED,
        "internal-error",
        "ZeroDivisionError",
    )
    assert (second.status, second.data) == (Status.APPLIED, {"ok": True})
    assert RemoteState(tmp_path / "state.json").last_seq == second.seq
