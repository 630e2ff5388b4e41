"""MQTT 5 over mutual TLS: the one module that imports aiomqtt and paho.

aiomqtt 2.5 drops the MQTT 5 PUBACK reason code (a publish the broker refused looks like a
success). :class:`MqttLink.publish` recovers it from paho's ``on_publish`` callback and returns
it, so the store can delete a batch only on a reason code below 0x80 (MQTT 5.0 section 3.4.2.1).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from drivers._aio import Lifecycle, reraise_if_cancelling
from drivers.errors import DriverError

logger = logging.getLogger(__name__)

#: MQTT 5.0 section 2.4: reason codes of 0x80 and above are failures.
REASON_FAILURE_THRESHOLD = 0x80


class MqttError(DriverError, ConnectionError):
    """The broker connection failed or was lost; the operation may be retried."""


@dataclass(frozen=True)
class TlsFiles:
    """Mutual-TLS material: the pinned region CA, and our certificate chain and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    min_version: str = "1.3"


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts only the pinned CA (no system CAs) and checks the name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if files.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(files.ca_file))
    context.load_cert_chain(certfile=str(files.cert_file), keyfile=str(files.key_file))
    return context


@dataclass(frozen=True)
class InboundMessage:
    """A message received on a subscription (``mid`` identifies it for a manual PUBACK)."""

    topic: str
    payload: bytes
    qos: int
    mid: int = 0
    #: Delivered from the broker's retained store for a new subscription (MQTT 5.0 section
    #: 3.3.1.3), not published just now.
    retain: bool = False


class _ReasonCodeClient(aiomqtt.Client):
    """aiomqtt's client, also resolving a future per message id with the PUBACK reason code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.puback_waiters: dict[int, asyncio.Future[int]] = {}

    def _on_publish(
        self,
        client: Any,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        waiter = self.puback_waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(int(reason_code.value))
        super()._on_publish(client, userdata, mid, reason_code, properties)

    def _on_disconnect(
        self,
        client: Any,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.fail_waiters(f"disconnected ({reason_code})")
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def fail_waiters(self, reason: str) -> None:
        """Fail every publish still waiting for its PUBACK: it must be sent again."""
        waiters, self.puback_waiters = self.puback_waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(MqttError(f"no PUBACK: {reason}"))


class MqttLink(Lifecycle):
    """One MQTT 5 session over mutual TLS, as an async context manager."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        tls: TlsFiles,
        will: tuple[str, bytes] | None = None,
        keepalive_s: int = 30,
        timeout_s: float = 10.0,
        max_inflight: int = 20,
        manual_ack: bool = False,
        session_expiry_s: int | None = None,
    ) -> None:
        """``manual_ack``: PUBACK a received message only when :meth:`ack` is called (a
        receiver acknowledges after its output is on disk). ``session_expiry_s``: keep the
        session (subscriptions and queued QoS 1 messages) at the broker across reconnects
        (MQTT 5.0 section 3.1.2.11.2)."""
        self._timeout_s = timeout_s
        self._manual_ack = manual_ack
        self._client_args: dict[str, Any] = {
            "hostname": host,
            "port": port,
            "identifier": client_id,
            "protocol": aiomqtt.ProtocolVersion.V5,
            "tls_context": tls_context(tls),
            "keepalive": keepalive_s,
            "timeout": timeout_s,
            "max_inflight_messages": max_inflight,
            "will": None if will is None else aiomqtt.Will(will[0], will[1], qos=1, retain=True),
        }
        if session_expiry_s is not None:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = session_expiry_s
            self._client_args["clean_start"] = False
            self._client_args["properties"] = properties
        self._client: _ReasonCodeClient | None = None

    async def start(self) -> None:
        """Connect to the broker (entering the ``async with`` block)."""
        client = _ReasonCodeClient(**self._client_args)
        if self._manual_ack:
            client._client.manual_ack_set(True)
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError, ssl.SSLError) as exc:
            raise MqttError(f"cannot connect to broker: {exc}") from exc
        self._client = client

    async def stop(self) -> None:
        """Disconnect (leaving the block); publishes still waiting for a PUBACK fail."""
        client, self._client = self._client, None
        if client is None:
            return
        client.fail_waiters("connection closed")
        try:
            # aiomqtt's __aexit__ only disconnects: it ignores the block's exception.
            await client.__aexit__(None, None, None)
        except aiomqtt.MqttError as err:
            logger.debug("MQTT disconnect was not clean: %s", err)
        finally:
            # Retrieve an unexpected-disconnection error so asyncio does not report it unseen.
            disconnected = client._disconnected
            if disconnected.done() and not disconnected.cancelled():
                disconnected.exception()

    def _require(self) -> _ReasonCodeClient:
        if self._client is None:
            raise MqttError("not connected")
        return self._client

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (0x00 success, >= 0x80 refused).

        Raises :class:`MqttError` when the connection fails before the PUBACK arrives; the
        message must then be treated as not delivered.
        """
        client = self._require()
        info = client._client.publish(topic, payload, 1, retain)
        if info.rc != MQTT_ERR_SUCCESS:
            raise MqttError(f"publish refused locally (rc={info.rc})")
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        client.puback_waiters[info.mid] = waiter
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
            # that races with the PUBACK (the caller then never stops).
            async with asyncio.timeout(self._timeout_s):
                return await waiter
        except TimeoutError:
            reraise_if_cancelling()
            raise MqttError("no PUBACK before the timeout") from None
        finally:
            client.puback_waiters.pop(info.mid, None)

    async def wait_closed(self) -> None:
        """Wait until the connection ends, then raise :class:`MqttError` (it never returns
        normally): lets a client that only publishes now and then notice a dead link and
        reconnect at once (its status and last will depend on it)."""
        client = self._require()
        try:
            await asyncio.shield(client._disconnected)
        except aiomqtt.MqttError as exc:
            raise MqttError(f"connection lost: {exc}") from exc
        raise MqttError("connection closed")

    def ack(self, message: InboundMessage) -> None:
        """PUBACK a message received with ``manual_ack`` (after it is safely processed)."""
        if self._manual_ack and message.qos > 0:
            self._require()._client.ack(message.mid, message.qos)

    async def subscribe(self, topic_filter: str) -> None:
        """Subscribe at QoS 1 (shared subscriptions: ``$share/{group}/{filter}``)."""
        try:
            await self._require().subscribe(topic_filter, qos=1)
        except aiomqtt.MqttError as exc:
            raise MqttError(f"subscribe failed: {exc}") from exc

    async def messages(self) -> AsyncIterator[InboundMessage]:
        """Messages from the subscriptions, until the connection ends."""
        try:
            async for message in self._require().messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                yield InboundMessage(
                    str(message.topic),
                    data,
                    int(message.qos),
                    int(message.mid),
                    bool(message.retain),
                )
        except aiomqtt.MqttError as exc:
            raise MqttError(f"connection lost: {exc}") from exc
