"""A hub owns its sessions: against the broker configuration the region writes
(region/broker_config.py with the identity plugin, region/mosquitto/narhub_identity.c), hub A's
valid certificate can neither take hub B's client ids (disconnecting hub B, publishing its
Will, discarding its command session with a clean start: MQTT 5.0 section 3.1.4) nor write
hub B's status. The same attacks against the broker without the plugin succeed: the test
shows what the plugin prevents."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from drivers.mqtt import InboundMessage, MqttError, MqttLink, TlsFiles
from protocols.command_topics import COMMAND_CLIENT_SUFFIX, cmd_filter, cmd_topic
from region.broker_config import OPERATOR_USER, RECEIVER_USER
from rig.broker import MosquittoBroker, RigPki

pytestmark = pytest.mark.broker

STATUS_B = "narhub/v1/hub-b/status"
#: What a hub's Will says on its retained status topic (gateway/uplink.py publishes JSON; the
#: payload does not matter here, only who can put it there).
OFFLINE = b'{"online": false}'


def _link(
    broker: MosquittoBroker,
    pki: RigPki,
    cert_name: str,
    client_id: str,
    *,
    will: tuple[str, bytes] | None = None,
    session_expiry_s: int | None = None,
) -> MqttLink:
    identity = pki.client(cert_name)
    tls = TlsFiles(pki.ca_file, identity.cert_file, identity.key_file)
    return MqttLink(
        broker.host,
        broker.port,
        client_id=client_id,
        tls=tls,
        timeout_s=5,
        will=will,
        manual_ack=session_expiry_s is not None,
        session_expiry_s=session_expiry_s,
    )


@pytest.fixture
def weak_broker(rig_pki: RigPki, tmp_path: Path) -> Iterator[MosquittoBroker]:
    """The broker with `use_identity_as_username` alone (before the identity plugin)."""
    instance = MosquittoBroker(rig_pki, tmp_path / "weak", identity_plugin=False)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


class Watcher:
    """A receiver-certificate client that records what hub B's status topic says."""

    def __init__(self) -> None:
        self.statuses: list[bytes] = []
        self.changed = asyncio.Event()

    async def run(self, link: MqttLink) -> None:
        await link.subscribe(STATUS_B)
        async for message in link.messages():
            self.statuses.append(message.payload)
            self.changed.set()


@pytest.fixture
async def hub_b_online(
    request: pytest.FixtureRequest, rig_pki: RigPki
) -> AsyncIterator[tuple[MqttLink, Watcher]]:
    """Hub B connected with its Will, its retained status online, and a watcher; first a
    command queued for hub B's command session while that session is offline."""
    broker: MosquittoBroker = request.getfixturevalue(request.param)
    cmd_id = f"hub-b{COMMAND_CLIENT_SUFFIX}"
    async with _link(broker, rig_pki, "hub-b", cmd_id, session_expiry_s=3600) as cmd:
        await cmd.subscribe(cmd_filter("hub-b"))
    async with _link(broker, rig_pki, OPERATOR_USER, f"{OPERATOR_USER}-1") as operator:
        assert await operator.publish(cmd_topic("hub-b", "config"), b"queued command") < 0x80
    hub_b = _link(broker, rig_pki, "hub-b", "hub-b", will=(STATUS_B, OFFLINE))
    watcher = Watcher()
    async with hub_b, _link(broker, rig_pki, RECEIVER_USER, f"{RECEIVER_USER}-w") as watch:
        assert await hub_b.publish(STATUS_B, b'{"online": true}', retain=True) < 0x80
        task = asyncio.create_task(watcher.run(watch), name="watcher")
        await watcher.changed.wait()
        try:
            yield hub_b, watcher
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def _attack(broker: MosquittoBroker, pki: RigPki, client_id: str) -> bool:
    """Hub A's certificate under ``client_id`` with a clean start; whether it got in."""
    try:
        async with _link(broker, pki, "hub-a", client_id):
            return True
    except MqttError:
        return False


async def _queued_commands(broker: MosquittoBroker, pki: RigPki) -> list[InboundMessage]:
    """What hub B's command session holds when hub B comes back for it."""
    received: list[InboundMessage] = []
    link = _link(broker, pki, "hub-b", f"hub-b{COMMAND_CLIENT_SUFFIX}", session_expiry_s=3600)
    async with link:
        try:
            async with asyncio.timeout(3):
                async for message in link.messages():
                    received.append(message)
                    link.ack(message)
                    break
        except TimeoutError:
            pass  # nothing queued: the session was discarded
    return received


@pytest.mark.parametrize("hub_b_online", ["broker"], indirect=True)
async def test_hub_a_cannot_take_hub_bs_sessions_or_status(
    broker: MosquittoBroker, rig_pki: RigPki, hub_b_online: tuple[MqttLink, Watcher]
) -> None:
    hub_b, watcher = hub_b_online
    assert not await _attack(broker, rig_pki, "hub-b")
    assert not await _attack(broker, rig_pki, f"hub-b{COMMAND_CLIENT_SUFFIX}")
    # Hub A cannot write hub B's status either (the ACL; 0x87 Not authorized).
    async with _link(broker, rig_pki, "hub-a", "hub-a") as hub_a:
        assert await hub_a.publish(STATUS_B, OFFLINE, retain=True) >= 0x80
        assert await hub_a.publish("narhub/v1/hub-a/status", b"{}", retain=True) < 0x80
    # Hub B is still connected (a publish gets its PUBACK) and never looked offline.
    assert await hub_b.publish(STATUS_B, b'{"online": true, "n": 2}', retain=True) < 0x80
    await watcher.changed.wait()
    assert OFFLINE not in watcher.statuses
    assert "refused client id hub-b for certificate hub-a" in broker.log_tail(50)
    # The command queued while hub B's command session was offline is still delivered.
    commands = await _queued_commands(broker, rig_pki)
    assert [m.payload for m in commands] == [b"queued command"]


async def test_a_hub_keeps_its_own_three_client_ids_and_services_their_numbered_ones(
    broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    for cert, client_id in (
        ("hub-a", "hub-a"),
        ("hub-a", "hub-a-cmd"),
        ("hub-a", "hub-a-renew"),
        (RECEIVER_USER, RECEIVER_USER),
        (RECEIVER_USER, f"{RECEIVER_USER}-3"),
        (OPERATOR_USER, f"{OPERATOR_USER}-42-7"),
    ):
        async with _link(broker, rig_pki, cert, client_id) as link:
            assert await link.publish("narhub/v1/nobody/status", b"") >= 0x80  # still ACL'd
    for cert, client_id in (
        ("hub-a", "hub-a-other"),  # only the hub's own suffixes
        ("hub-a", "hub-"),  # a prefix of another hub's id is not ours
        ("hub-a", f"{RECEIVER_USER}-9"),  # a hub is not a receiver
        (RECEIVER_USER, "hub-a"),  # nor a receiver a hub
        (RECEIVER_USER, f"{RECEIVER_USER}-"),
    ):
        with pytest.raises(MqttError):
            async with _link(broker, rig_pki, cert, client_id):
                pass


def _hub_a_with_hub_bs_will(broker: MosquittoBroker, pki: RigPki, client_id: str) -> None:
    """Hub A connects as ``client_id`` with a Will on hub B's status, then dies (SIGKILL):
    an unexpected end publishes the Will (MQTT 5.0 section 3.1.2.5)."""
    identity = pki.client("hub-a")
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from drivers.mqtt import MqttLink, TlsFiles
        async def main():
            tls = TlsFiles(Path({str(pki.ca_file)!r}), Path({str(identity.cert_file)!r}),
                           Path({str(identity.key_file)!r}))
            async with MqttLink({broker.host!r}, {broker.port}, client_id={client_id!r},
                                tls=tls, will=({STATUS_B!r}, {OFFLINE!r})):
                print("connected", flush=True)
                await asyncio.Event().wait()
        asyncio.run(main())
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        process.kill()
        process.wait(timeout=10)
    if line != b"connected\n":
        raise MqttError("refused")


@pytest.mark.parametrize("hub_b_online", ["broker"], indirect=True)
async def test_hub_a_cannot_publish_hub_bs_will(
    broker: MosquittoBroker, rig_pki: RigPki, hub_b_online: tuple[MqttLink, Watcher]
) -> None:
    hub_b, watcher = hub_b_online
    # Under its own id the Will's topic is another hub's: the ACL keeps it off that topic.
    await asyncio.to_thread(_hub_a_with_hub_bs_will, broker, rig_pki, "hub-a")
    with pytest.raises(MqttError):
        await asyncio.to_thread(_hub_a_with_hub_bs_will, broker, rig_pki, "hub-b")
    assert await hub_b.publish(STATUS_B, b'{"online": true, "n": 3}', retain=True) < 0x80
    await watcher.changed.wait()
    assert OFFLINE not in watcher.statuses


@pytest.mark.parametrize("hub_b_online", ["weak_broker"], indirect=True)
async def test_without_the_plugin_hub_a_takes_hub_bs_sessions(
    weak_broker: MosquittoBroker, rig_pki: RigPki, hub_b_online: tuple[MqttLink, Watcher]
) -> None:
    hub_b, watcher = hub_b_online
    # The clean start under hub B's command id discards the queued command.
    assert await _attack(weak_broker, rig_pki, f"hub-b{COMMAND_CLIENT_SUFFIX}")
    assert await _attack(weak_broker, rig_pki, "hub-b")
    with pytest.raises(MqttError):
        for _ in range(50):
            await hub_b.publish(STATUS_B, b'{"online": true}', retain=True)
    async with asyncio.timeout(10):
        while OFFLINE not in watcher.statuses:
            watcher.changed.clear()
            await watcher.changed.wait()
    assert await _queued_commands(weak_broker, rig_pki) == []
