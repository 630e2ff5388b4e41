"""The virtual BlueZ as a plain D-Bus client sees it, against BlueZ's documented API."""

from __future__ import annotations

import asyncio

import pytest
from vbluez_rig import virtual_bluez

from drivers.ble._dbus import (
    Message,
    MessageBus,
    MessageType,
    add_match,
    call_method,
    close_bus,
    connect_system_bus,
)
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer

ADAPTER = "/org/bluez/hci0"
THERMO = "F1:00:00:00:02:01"


async def call(
    bus: MessageBus, path: str, interface: str, member: str, signature: str = "", *body: object
) -> Message:
    return await call_method(bus, "org.bluez", path, interface, member, signature, body)


def error_of(reply: Message) -> str | None:
    return reply.error_name if reply.message_type == MessageType.ERROR else None


async def test_object_manager_adapter_and_agent_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    radio = SimRadio()
    async with virtual_bluez(radio, monkeypatch), EmulatedThermometer(radio, THERMO):
        bus = await connect_system_bus()
        try:
            reply = await call(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            objects = reply.body[0]
            assert "org.bluez.AgentManager1" in objects["/org/bluez"]
            adapter = objects[ADAPTER]["org.bluez.Adapter1"]
            assert adapter["Powered"].value is True
            assert "central" in adapter["Roles"].value

            # Discovery: one per client; a second start is InProgress, a stop without one Failed.
            added: asyncio.Queue[Message] = asyncio.Queue()

            def on_signal(msg: Message) -> None:
                if msg.member == "InterfacesAdded":
                    added.put_nowait(msg)

            bus.add_message_handler(on_signal)
            await add_match(bus, "type='signal',interface='org.freedesktop.DBus.ObjectManager'")
            assert (
                error_of(await call(bus, ADAPTER, "org.bluez.Adapter1", "StartDiscovery")) is None
            )
            assert (
                error_of(await call(bus, ADAPTER, "org.bluez.Adapter1", "StartDiscovery"))
                == "org.bluez.Error.InProgress"
            )
            async with asyncio.timeout(10):
                signal = await added.get()
            # As bluetoothd: from the ObjectManager at /, all of the object's interfaces.
            assert signal.path == "/"
            path, interfaces = signal.body
            assert path == f"{ADAPTER}/dev_{THERMO.replace(':', '_')}"
            device = interfaces["org.bluez.Device1"]
            assert device["Address"].value == THERMO
            assert device["AddressType"].value == "random"
            assert device["Name"].value == "narhub-thermo"
            assert "00001809-0000-1000-8000-00805f9b34fb" in device["UUIDs"].value
            assert device["Paired"].value is False
            assert error_of(await call(bus, ADAPTER, "org.bluez.Adapter1", "StopDiscovery")) is None
            assert (
                error_of(await call(bus, ADAPTER, "org.bluez.Adapter1", "StopDiscovery"))
                == "org.bluez.Error.Failed"
            )

            manager = ("/org/bluez", "org.bluez.AgentManager1")
            assert (
                error_of(await call(bus, *manager, "RegisterAgent", "os", "/a", "Telepathy"))
                == "org.bluez.Error.InvalidArguments"
            )
            assert error_of(await call(bus, *manager, "RegisterAgent", "os", "/a", "")) is None
            assert (
                error_of(await call(bus, *manager, "RegisterAgent", "os", "/a", ""))
                == "org.bluez.Error.AlreadyExists"
            )
            assert (
                error_of(await call(bus, *manager, "RequestDefaultAgent", "o", "/b"))
                == "org.bluez.Error.DoesNotExist"
            )
            assert error_of(await call(bus, *manager, "UnregisterAgent", "o", "/a")) is None
            assert (
                error_of(await call(bus, *manager, "UnregisterAgent", "o", "/a"))
                == "org.bluez.Error.DoesNotExist"
            )

            assert (
                error_of(
                    await call(
                        bus, ADAPTER, "org.bluez.Adapter1", "RemoveDevice", "o", f"{ADAPTER}/x"
                    )
                )
                == "org.bluez.Error.DoesNotExist"
            )
            assert (
                error_of(await call(bus, path, "org.bluez.Device1", "Disconnect"))
                == "org.bluez.Error.NotConnected"
            )
            assert (
                error_of(await call(bus, ADAPTER, "org.bluez.Adapter1", "RemoveDevice", "o", path))
                is None
            )
            reply = await call(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            assert path not in reply.body[0]
        finally:
            await close_bus(bus)
