"""MQTT 5 over mutual TLS against a real Mosquitto: reason codes, refusals, restarts."""

from __future__ import annotations

import ssl

import pytest

from common.pki import CertificateAuthority, issue_identity
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from rig.broker import MosquittoBroker, RigPki


def _link(broker: MosquittoBroker, pki: RigPki, name: str, **kw: object) -> MqttLink:
    identity = pki.client(name)
    tls = TlsFiles(pki.ca_file, identity.cert_file, identity.key_file, **kw)  # type: ignore[arg-type]
    return MqttLink(broker.host, broker.port, client_id=name, tls=tls, timeout_s=5)


async def test_own_topic_is_accepted_and_foreign_topic_is_refused_by_reason_code(
    broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    async with _link(broker, rig_pki, "hub-a") as link:
        assert await link.publish("narhub/v1/hub-a/up/clinical", b"x") < 0x80
        # The ACL forbids it; aiomqtt alone would report success. 0x87 = Not authorized.
        assert await link.publish("narhub/v1/hub-b/up/clinical", b"x") >= 0x80


async def test_receiver_gets_what_a_hub_publishes(broker: MosquittoBroker, rig_pki: RigPki) -> None:
    async with _link(broker, rig_pki, "region-receiver") as receiver:
        await receiver.subscribe("$share/g/narhub/v1/+/up/+")
        async with _link(broker, rig_pki, "hub-a") as hub:
            assert await hub.publish("narhub/v1/hub-a/up/alert", b"payload") < 0x80
        async for message in receiver.messages():
            assert (message.topic, message.payload) == ("narhub/v1/hub-a/up/alert", b"payload")
            break


async def test_certificate_from_another_ca_is_refused(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: object
) -> None:
    from pathlib import Path

    rogue_ca = CertificateAuthority.create("rogue")
    identity = issue_identity(rogue_ca, Path(str(tmp_path)) / "rogue", "hub-a")
    tls = TlsFiles(rig_pki.ca_file, identity.cert_file, identity.key_file)
    with pytest.raises(MqttError):
        async with MqttLink(broker.host, broker.port, client_id="hub-a", tls=tls, timeout_s=5):
            pass


async def test_publish_fails_typed_when_the_broker_is_gone(
    broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    link = _link(broker, rig_pki, "hub-a")
    async with link:
        broker.stop()
        with pytest.raises(MqttError):
            for _ in range(50):
                await link.publish("narhub/v1/hub-a/up/clinical", b"x")
    broker.start()
    async with _link(broker, rig_pki, "hub-a") as again:
        assert await again.publish("narhub/v1/hub-a/up/clinical", b"x") < 0x80


def test_tls_context_pins_the_ca_and_requires_tls13(rig_pki: RigPki) -> None:
    from drivers.mqtt import tls_context

    identity = rig_pki.client("hub-a")
    context = tls_context(TlsFiles(rig_pki.ca_file, identity.cert_file, identity.key_file))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1


async def test_a_message_not_acknowledged_by_the_receiver_is_delivered_again(
    broker: MosquittoBroker, rig_pki: RigPki
) -> None:
    # The MQTT user is the certificate CN (the ACL grants "region-receiver" read access);
    # the client id names this receiver's session.
    identity = rig_pki.client("region-receiver")
    tls = TlsFiles(rig_pki.ca_file, identity.cert_file, identity.key_file)

    def receiver() -> MqttLink:
        return MqttLink(
            broker.host,
            broker.port,
            client_id="region-receiver-7",
            tls=tls,
            timeout_s=5,
            manual_ack=True,
            session_expiry_s=600,
        )

    async with receiver() as link:
        await link.subscribe("$share/g/narhub/v1/+/up/+")
    async with _link(broker, rig_pki, "hub-a") as hub:
        assert await hub.publish("narhub/v1/hub-a/up/clinical", b"batch-1") < 0x80
    # The receiver gets it, then "dies" before writing its output: no PUBACK.
    async with receiver() as link:
        async for message in link.messages():
            assert message.payload == b"batch-1"
            break
    # On its next session the broker delivers the batch again; now it is acknowledged.
    async with receiver() as link:
        async for message in link.messages():
            assert message.payload == b"batch-1"
            link.ack(message)
            break
    async with receiver() as link:
        await link.subscribe("$share/g/narhub/v1/+/up/+")
        async with _link(broker, rig_pki, "hub-a") as hub:
            assert await hub.publish("narhub/v1/hub-a/up/clinical", b"batch-2") < 0x80
        async for message in link.messages():
            assert message.payload == b"batch-2"  # batch-1 is not redelivered
            link.ack(message)
            break
