"""The region broker keeps every message it acknowledged to a hub for an offline receiver.

A hub deletes a batch on the broker's PUBACK; if the broker then dropped it (Mosquitto's
default queue holds 1000 messages per offline client), the batch would be lost without a
trace. The region configuration (``narhub region broker-config``, also the rig's) sets no
limit: a receiver that was away gets everything when it comes back.
"""

from __future__ import annotations

import asyncio

from drivers.mqtt import MqttLink, TlsFiles
from region.receiver import RECEIVER_NAME, SHARED_GROUP, UP_FILTER
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-queue"
#: Beyond Mosquitto's default per-client queue of 1000.
BATCHES = 1200


async def test_an_offline_receiver_gets_every_acknowledged_batch_back(
    broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    hub, rx = rig_pki.client(HUB), rig_pki.client(RECEIVER_NAME)

    def receiver() -> MqttLink:
        return MqttLink(
            broker.host,
            broker.port,
            client_id=f"{RECEIVER_NAME}-queue",
            tls=TlsFiles(rig_pki.ca_file, rx.cert_file, rx.key_file),
            manual_ack=True,
            session_expiry_s=0xFFFFFFFF,
        )

    async with receiver() as link:
        await link.subscribe(f"$share/{SHARED_GROUP}/{UP_FILTER}")
    # The receiver is away; the hub sends and the broker acknowledges every batch.
    topic = f"narhub/v1/{HUB}/up/clinical"
    async with MqttLink(
        broker.host,
        broker.port,
        client_id=HUB,
        tls=TlsFiles(rig_pki.ca_file, hub.cert_file, hub.key_file),
    ) as up:
        codes = await asyncio.gather(
            *(up.publish(topic, i.to_bytes(4, "big")) for i in range(BATCHES))
        )
    assert set(codes) == {0}
    got: set[int] = set()
    async with receiver() as link, asyncio.timeout(60):
        async for message in link.messages():
            got.add(int.from_bytes(message.payload, "big"))
            link.ack(message)
            if len(got) == BATCHES:
                break
    assert got == set(range(BATCHES))
