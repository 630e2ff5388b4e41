"""The hub's retained status on a real broker: online on connect, updated on change, offline
by the last will when the connection dies abruptly, online again after the reconnect."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub_records import body_temperature
from hub_uplink import connects_as, hub_outbox, hub_uplink

from drivers.mqtt import MqttLink, TlsFiles
from gateway.ble_backend import make_ble_backend
from gateway.config import BleConfig, DeviceConfig, HubConfig
from gateway.hub import Hub
from gateway.reading import Reading
from gateway.uplink import offline_status, status_topic
from protocols.uplink import FORMAT_VERSION
from region.receiver import RECEIVER_NAME
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-status"
MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


def _reading(i: int) -> Reading:
    return body_temperature(i, Decimal(f"36.{i % 100:02d}"), device="AA:BB:CC:DD:EE:01")


class CuttableProxy:
    """A TCP relay between the hub and the broker that can drop every connection at once
    (no MQTT DISCONNECT: the broker sees the network die) and refuse new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self.accepting = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink), name="proxy-pipe")
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    def cut(self) -> None:
        """Close both sides of every relayed connection now."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()


async def _next_status(link: MqttLink) -> dict[str, Any]:
    async for message in link.messages():
        assert message.topic == status_topic(HUB)
        document: dict[str, Any] = json.loads(message.payload)
        assert not MAC.search(message.payload.decode()), "a device address in the status"
        return document
    raise AssertionError("subscription ended")


async def test_status_is_retained_updated_and_the_last_will_says_offline(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    hub = rig_pki.client(HUB)
    watcher_id = rig_pki.client(RECEIVER_NAME)
    outbox = hub_outbox(tmp_path, clinical_s=3600)
    await outbox.add([_reading(i) for i in range(5)])  # waits an hour: queue depth 5
    devices: list[dict[str, Any]] = [
        {"slot": 0, "kind": "thermometer", "connected": False, "battery_percent": 80},
        {"slot": 1, "kind": "blood_pressure", "connected": False, "battery_percent": None},
    ]
    async with CuttableProxy((broker.host, broker.port)) as proxy:
        hub_link = connects_as(
            rig_pki,
            hub,
            HUB,
            ("127.0.0.1", proxy.port),
            timeout_s=5,
            keepalive_s=5,
            will=(status_topic(HUB), offline_status(HUB)),
        )
        watcher = connects_as(rig_pki, watcher_id, f"{RECEIVER_NAME}-watcher", broker, timeout_s=5)
        uplink = hub_uplink(
            HUB,
            outbox,
            hub,
            hub_link,
            status_interval_s=600,
            status_min_interval_s=0.05,
            devices=lambda: devices,
        )
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            task = group.create_task(uplink.run(), name="uplink")
            await uplink.status_published.wait()
            # Subscribing after the publish: only a retained status reaches us.
            async with watcher() as link:
                await link.subscribe(status_topic(HUB))
                first = await _next_status(link)
                assert first["state"] == "online"
                assert first["hub"] == HUB
                assert first["versions"]["format"] == FORMAT_VERSION
                assert first["queue"]["readings"] == {
                    "alert": 0,
                    "clinical": 5,
                    "environmental": 0,
                    "telemetry": 0,
                }
                assert first["queue"]["oldest_unsent_ms"] == 1_795_000_000_000
                assert first["evictions"] == {"readings_total": 0, "tombstones_pending": 0}
                assert [d["kind"] for d in first["devices"]] == ["thermometer", "blood_pressure"]
                assert first["uplink"]["connects"] == 1

                # A change (more readings, a battery level) is published, rate bounded.
                await outbox.add([_reading(i) for i in range(5, 8)])
                devices[1]["battery_percent"] = 55
                uplink.status_changed()
                changed = await _next_status(link)
                assert changed["queue"]["readings"]["clinical"] == 8
                assert changed["devices"][1]["battery_percent"] == 55
                assert changed["status_seq"] > first["status_seq"]

                # The network dies under the hub: the broker publishes the last will.
                proxy.accepting = False
                proxy.cut()
                offline = await _next_status(link)
                assert offline["state"] == "offline"
                assert offline["hub"] == HUB

                # It comes back: online again, on the reconnect.
                uplink.status_published.clear()
                proxy.accepting = True
                again = await _next_status(link)
                assert again["state"] == "online"
                assert again["uplink"]["connects"] >= 2

                # A clean stop says offline itself (a DISCONNECT does not fire the will).
                task.cancel()
                stopped = await _next_status(link)
                assert stopped["state"] == "offline"
    outbox.close()


async def test_the_hub_publishes_its_devices_by_slot_and_kind_never_by_address(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    hub_id = "hub-status-2"
    hub = rig_pki.client(hub_id)
    watcher_id = rig_pki.client(RECEIVER_NAME)
    config = HubConfig(
        hub_id=hub_id,
        data_dir=tmp_path / "data",
        ble=BleConfig(
            backend="sim",
            devices=[
                DeviceConfig(address="C4:7F:51:0A:9B:3E", kind="blood_pressure"),
                DeviceConfig(address="00:1B:DC:41:22:07", kind="thermometer"),
            ],
        ),
        uplink=broker.uplink_config(hub),
    )
    tls = TlsFiles(rig_pki.ca_file, watcher_id.cert_file, watcher_id.key_file)
    async with (
        asyncio.timeout(30),
        MqttLink(
            broker.host, broker.port, client_id=f"{RECEIVER_NAME}-watcher-2", tls=tls, timeout_s=5
        ) as link,
    ):
        await link.subscribe(status_topic(hub_id))
        async with Hub(config, make_ble_backend(config.ble)):
            async for message in link.messages():
                text = message.payload.decode()
                assert not MAC.search(text), text
                document = json.loads(text)
                assert document["state"] == "online"
                assert document["hub"] == hub_id
                assert [(d["slot"], d["kind"]) for d in document["devices"]] == [
                    (0, "blood_pressure"),
                    (1, "thermometer"),
                ]
                assert document["uplink"]["max_inflight"] == config.uplink.max_inflight
                break
        # The hub stopped cleanly: it said offline itself, the same document as its will.
        async for message in link.messages():
            assert message.payload == offline_status(hub_id)
            break
