"""Each recipient reads only its own (docs/consent.md): one real Mosquitto, two topic trees.

The region's receiver and the municipality's receiver both subscribe to everything they can
(``narhub/v1/#``); the broker's ACL (region/broker_config.py) delivers to each only its tree.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hub_uplink import connects_as

from drivers.mqtt import InboundMessage, MqttError, MqttLink
from region.broker_config import RECEIVER_USER, acl_text, recipient_receiver, recipient_root
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-two"
REGION_TOPIC = f"narhub/v1/{HUB}/up/clinical"
MUNI_TOPIC = f"{recipient_root('municipality')}/{HUB}/up/clinical"


def test_acl_keeps_the_region_out_of_other_trees() -> None:
    text = acl_text(recipients=("municipality",))
    assert "topic read narhub/v1/#" not in text
    assert "user municipality-receiver\ntopic read narhub/v1/r/municipality/+/up/#" in text
    assert "topic read narhub/v1/#" in acl_text()  # a region alone: unchanged


def _link(broker: MosquittoBroker, pki: RigPki, name: str) -> MqttLink:
    return connects_as(pki, pki.client(name), name, broker)()


async def _first(link: MqttLink) -> InboundMessage:
    async for message in link.messages():
        return message
    raise AssertionError("connection ended")


async def test_each_receiver_gets_only_its_own_tree(rig_pki: RigPki, tmp_path: Path) -> None:
    broker = MosquittoBroker(rig_pki, tmp_path / "broker")
    broker.recipients = ("municipality",)
    with broker:
        region_rx = _link(broker, rig_pki, RECEIVER_USER)
        muni_rx = _link(broker, rig_pki, recipient_receiver("municipality"))
        hub = _link(broker, rig_pki, HUB)
        async with region_rx, muni_rx, hub:
            await region_rx.subscribe("narhub/v1/#")
            await muni_rx.subscribe("narhub/v1/#")
            region_got = asyncio.create_task(_first(region_rx))
            muni_got = asyncio.create_task(_first(muni_rx))
            # Each tree gets the other's message first: a leak would arrive before the own one.
            assert await hub.publish(MUNI_TOPIC, b"for the municipality") == 0
            assert await hub.publish(REGION_TOPIC, b"for the region") == 0
            region_msg = await asyncio.wait_for(region_got, 10)
            assert (region_msg.topic, region_msg.payload) == (REGION_TOPIC, b"for the region")
            assert await hub.publish(MUNI_TOPIC, b"for the municipality again") == 0
            muni_msg = await asyncio.wait_for(muni_got, 10)
            assert muni_msg.topic == MUNI_TOPIC
            # A hub cannot write into another hub's tree of either recipient.
            other = f"{recipient_root('municipality')}/hub-else/up/clinical"
            assert await hub.publish(other, b"x") >= 0x80


def _as(broker: MosquittoBroker, pki: RigPki, name: str, client_id: str) -> MqttLink:
    return connects_as(pki, pki.client(name), client_id, broker, timeout_s=5)()


async def test_a_hub_forwards_to_two_recipients_over_one_broker_as_two_sessions(
    rig_pki: RigPki, tmp_path: Path
) -> None:
    """One broker shared by the region and the municipality: the hub's uplink to the
    municipality connects as ``{hub}-municipality`` (gateway/hub.py), beside its own session;
    the identity plugin (region/broker_plugin.py) accepts that suffix for the hub's own
    certificate only, and the municipality's numbered receivers under their shared name."""
    broker = MosquittoBroker(rig_pki, tmp_path / "broker")
    broker.recipients = ("municipality",)
    with broker:
        home = _as(broker, rig_pki, HUB, HUB)
        second = _as(broker, rig_pki, HUB, f"{HUB}-municipality")
        receiver = _as(
            broker, rig_pki, recipient_receiver("municipality"), "municipality-receiver-2"
        )
        async with home, second, receiver:
            await receiver.subscribe(f"{recipient_root('municipality')}/+/up/#")
            got = asyncio.create_task(_first(receiver))
            assert await second.publish(MUNI_TOPIC, b"over the second session") == 0
            assert await home.publish(REGION_TOPIC, b"over the first") < 0x80  # both alive
            message = await asyncio.wait_for(got, 10)
            assert (message.topic, message.payload) == (MUNI_TOPIC, b"over the second session")
        # Another hub's certificate cannot take that session (nor an unknown recipient's).
        for cert, client_id in (("hub-a", f"{HUB}-municipality"), (HUB, f"{HUB}-county")):
            with pytest.raises(MqttError):
                async with _as(broker, rig_pki, cert, client_id):
                    pass
