"""A connected device's GATT database as BlueZ presents it: GattService1, GattCharacteristic1
and GattDescriptor1 objects under the device (``doc/org.bluez.GattService.rst``,
``doc/org.bluez.GattCharacteristic.rst``, ``doc/org.bluez.GattDescriptor.rst``).

Paths and handles as bluetoothd names them: ``dev_X/serviceHHHH/charHHHH/descHHHH`` with the
attribute handle in hex. Reads and writes are real ATT procedures of the virtual adapter's
bumble GATT client (Core Spec Vol 3 Part G 4.8, 4.9); ``StartNotify`` writes the CCCD
(notifications if the characteristic has them, else indications: Part G 3.3.3.3) and every
value received is published as a ``PropertiesChanged`` of ``Value``, as bluetoothd does.
ATT errors become the D-Bus errors of ``create_gatt_dbus_error`` in BlueZ's
src/gatt-client.c (``NotPermitted`` "Not paired" for insufficient authentication or
encryption, ``Failed`` "Operation failed with ATT error: 0x.." for the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from drivers._aio import cancelling
from drivers.ble._dbus import DBusError, Message
from drivers.ble.sim._bumble import (
    ATT_Error,
    CharacteristicProxy,
    Connection,
    DescriptorProxy,
    HCI_Error,
    Peer,
    drop_subscriber,
    property_names,
)
from drivers.ble.sim.vbluez.objects import Interface, Method, ObjectTree, Property

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_CHAR = "org.bluez.GattCharacteristic1"
_CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"


#: ATT error code -> (D-Bus error, text), as ``create_gatt_dbus_error`` (BlueZ).
_ATT_ERRORS: dict[int, tuple[str, str]] = {
    0x02: ("NotPermitted", "Read not permitted"),
    0x03: ("NotPermitted", "Write not permitted"),
    0x05: ("NotPermitted", "Not paired"),
    0x0F: ("NotPermitted", "Not paired"),
    0x0C: ("NotPermitted", "Not paired"),
    0x07: ("InvalidArguments", "Invalid offset"),
    0x0D: ("InvalidArguments", "Invalid Length"),
    0x08: ("NotAuthorized", "Not Authorized"),
    0x06: ("NotSupported", "Operation is not supported"),
}


def uuid_str(uuid: Any) -> str:
    """bumble UUID -> the 128-bit lower-case form BlueZ uses."""
    text = str(uuid.to_hex_str("-")).lower()
    if len(text) == 4:
        return f"0000{text}-0000-1000-8000-00805f9b34fb"
    return text


def _bluez_error(name: str, text: str) -> DBusError:
    return DBusError(f"org.bluez.Error.{name}", text)


async def att(operation: Awaitable[_T]) -> _T:
    """Run an ATT procedure; its failures as BlueZ reports them."""
    try:
        return await operation
    except ATT_Error as exc:
        code = int(exc.error_code)
        name, text = _ATT_ERRORS.get(
            code, ("Failed", f"Operation failed with ATT error: 0x{code:02x}")
        )
        raise _bluez_error(name, text) from exc
    except (HCI_Error, TimeoutError) as exc:
        raise _bluez_error("Failed", "Not connected") from exc
    except asyncio.CancelledError:
        if cancelling():
            raise
        # bumble cancels pending ATT requests when the link drops.
        raise _bluez_error("Failed", "Not connected") from None


@dataclass
class _Char:
    path: str
    proxy: CharacteristicProxy[bytes]
    flags: list[str]
    #: D-Bus clients (unique names) with a notify session (``StartNotify``).
    clients: set[str] = field(default_factory=set)
    subscriber: Callable[[bytes], None] | None = None


class GattObjects:
    """The GATT objects of one connected device, on ``tree``."""

    def __init__(self, tree: ObjectTree, device_path: str, connection: Connection) -> None:
        self._tree = tree
        self._device = device_path
        self._connection = connection
        self._chars: dict[str, _Char] = {}
        self.service_uuids: list[str] = []

    async def discover(self) -> None:
        """Primary services, characteristics and descriptors (Core Spec Vol 3 Part G 4.4-4.7),
        exported in the order bluetoothd exports them."""
        peer = Peer(self._connection)
        await att(peer.discover_services())
        for service in peer.services:
            await att(service.discover_characteristics())
            for char in service.characteristics:
                await att(char.discover_descriptors())
        for service in peer.services:
            self._export_service(service)

    def _export_service(self, service: Any) -> None:
        path = f"{self._device}/service{service.handle:04x}"
        uuid = uuid_str(service.uuid)
        self.service_uuids.append(uuid)
        self._tree.add(
            path,
            [
                Interface(
                    "org.bluez.GattService1",
                    {
                        "UUID": Property("s", uuid),
                        "Device": Property("o", self._device),
                        "Primary": Property("b", True),
                        "Includes": Property("ao", []),
                    },
                )
            ],
        )
        for char in service.characteristics:
            self._export_characteristic(path, char)

    def _export_characteristic(self, service_path: str, proxy: Any) -> None:
        path = f"{service_path}/char{proxy.handle:04x}"
        flags = property_names(proxy.properties)
        char = _Char(path, proxy, flags)
        self._chars[path] = char
        self._tree.add(
            path,
            [
                Interface(
                    _CHAR,
                    {
                        "UUID": Property("s", uuid_str(proxy.uuid)),
                        "Service": Property("o", service_path),
                        "Value": Property("ay", b""),
                        "Notifying": Property("b", False),
                        "Flags": Property("as", flags),
                        "MTU": Property("q", int(self._connection.att_mtu)),
                    },
                    {
                        "ReadValue": Method("a{sv}", "ay", lambda m: self._read(char, m)),
                        "WriteValue": Method("aya{sv}", "", lambda m: self._write(char, m)),
                        "StartNotify": Method("", "", lambda m: self._start_notify(char, m)),
                        "StopNotify": Method("", "", lambda m: self._stop_notify(char, m)),
                    },
                )
            ],
        )
        for desc in proxy.descriptors:
            self._export_descriptor(path, desc)

    def _export_descriptor(self, char_path: str, proxy: DescriptorProxy) -> None:
        path = f"{char_path}/desc{proxy.handle:04x}"
        uuid = uuid_str(proxy.type)
        self._tree.add(
            path,
            [
                Interface(
                    "org.bluez.GattDescriptor1",
                    {
                        "UUID": Property("s", uuid),
                        "Characteristic": Property("o", char_path),
                        "Value": Property("ay", b""),
                        "Flags": Property("as", ["read", "write"]),
                    },
                    {
                        "ReadValue": Method(
                            "a{sv}", "ay", lambda m: self._read_desc(path, proxy, m)
                        ),
                        "WriteValue": Method(
                            "aya{sv}", "", lambda m: self._write_desc(uuid, proxy, m)
                        ),
                    },
                )
            ],
        )

    # --- GattCharacteristic1 -------------------------------------------------------------

    async def _read(self, char: _Char, msg: Message) -> list[Any]:
        offset = _option(msg.body[0], "offset", 0)
        value = bytes(await att(char.proxy.read_value()))[int(offset) :]
        # bluetoothd caches what it read as the Value property, and says so.
        self._tree.update(char.path, _CHAR, {"Value": value})
        return [value]

    async def _write(self, char: _Char, msg: Message) -> list[Any]:
        value, options = bytes(msg.body[0]), msg.body[1]
        kind = _option(options, "type", "")
        if not kind:
            kind = "request" if "write" in char.flags else "command"
        await att(char.proxy.write_value(value, with_response=kind != "command"))
        return []

    async def _start_notify(self, char: _Char, msg: Message) -> list[Any]:
        if not {"notify", "indicate"} & set(char.flags):
            raise _bluez_error("NotSupported", "Operation is not supported")
        sender = str(msg.sender)
        if sender in char.clients:
            raise _bluez_error("InProgress", "In Progress")
        if char.subscriber is None:

            def on_value(value: bytes) -> None:
                self._tree.update(char.path, _CHAR, {"Value": bytes(value)})

            try:
                await att(char.proxy.subscribe(on_value, prefer_notify=True))
            except BaseException:
                drop_subscriber(char.proxy, on_value)
                raise
            char.subscriber = on_value
        char.clients.add(sender)
        self._tree.update(char.path, _CHAR, {"Notifying": True})
        return []

    async def _stop_notify(self, char: _Char, msg: Message) -> list[Any]:
        sender = str(msg.sender)
        if sender not in char.clients:
            raise _bluez_error("Failed", "No notify session started")
        await self.drop_client(char, sender)
        return []

    async def drop_client(self, char: _Char, sender: str) -> None:
        """End ``sender``'s notify session; the last one writes the CCCD back to 0."""
        char.clients.discard(sender)
        if char.clients or char.subscriber is None:
            return
        subscriber, char.subscriber = char.subscriber, None
        self._tree.update(char.path, _CHAR, {"Notifying": False})
        with contextlib.suppress(DBusError):
            await att(char.proxy.unsubscribe(subscriber))

    async def client_gone(self, sender: str) -> None:
        """A D-Bus client left the bus: its notify sessions end (as bluetoothd's watch)."""
        for char in list(self._chars.values()):
            if sender in char.clients:
                await self.drop_client(char, sender)

    # --- GattDescriptor1 -----------------------------------------------------------------

    async def _read_desc(self, path: str, proxy: DescriptorProxy, msg: Message) -> list[Any]:
        value = bytes(await att(proxy.read_value()))
        self._tree.update(path, "org.bluez.GattDescriptor1", {"Value": value})
        return [value]

    async def _write_desc(self, uuid: str, proxy: DescriptorProxy, msg: Message) -> list[Any]:
        if uuid == _CCCD_UUID:
            # bluetoothd owns the CCCD: clients use StartNotify / StopNotify.
            raise _bluez_error("NotPermitted", "Write not permitted")
        await att(proxy.write_value(bytes(msg.body[0]), with_response=True))
        return []

    def withdraw(self) -> None:
        """The link is gone: the objects go (bluetoothd removes them on disconnection)."""
        self._tree.remove_tree(self._device)
        self._chars.clear()


def _option(options: Any, name: str, default: Any) -> Any:
    variant = options.get(name) if isinstance(options, dict) else None
    return default if variant is None else variant.value
