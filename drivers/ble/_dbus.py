"""The one module that imports dbus-fast; everything else in narhub imports D-Bus names here.

dbus-fast is the D-Bus library bleak's BlueZ backend already uses on Linux. narhub uses it
for what bleak lacks: the pairing agent (``org.bluez.Agent1``, :mod:`drivers.ble.agent`) and
the virtual BlueZ of the test rig (:mod:`drivers.ble.sim.vbluez`).

:func:`connect_system_bus` opens the bus bluetoothd is on: the system bus, or the bus named
by ``DBUS_SYSTEM_BUS_ADDRESS`` (D-Bus Specification, "Well-known Message Bus Instances"),
which is how the tests point the hub and bleak at a private bus with the virtual BlueZ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from dbus_fast import BusType, DBusError, ErrorType, Message, MessageType, SignatureTree, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt16, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method


async def connect_system_bus(address: str | None = None) -> MessageBus:
    """A connection to the system bus (or to ``address``, a D-Bus server address)."""
    bus = MessageBus(bus_address=address, bus_type=BusType.SYSTEM)
    try:
        await bus.connect()
    except BaseException:
        # dbus-fast needs disconnect() even after a failed connect, to close the socket.
        bus.disconnect()
        raise
    return bus


def signature_types(signature: str) -> list[str]:
    """The complete types of a D-Bus signature (``"oa{sv}"`` -> ``["o", "a{sv}"]``)."""
    return [t.signature for t in SignatureTree(signature).types]


async def call_method(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[object] = (),
) -> Message:
    """Call ``interface.member`` on the object at ``path`` that ``destination`` owns (D-Bus
    Specification, "Message Protocol": METHOD_CALL); the reply, an error reply included."""
    message = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=list(body),
    )
    return await bus.call(message)


async def add_match(bus: MessageBus, rule: str) -> Message:
    """Ask the bus daemon to route the signals matching ``rule`` to ``bus`` (D-Bus
    Specification, "Message Bus Messages": ``org.freedesktop.DBus.AddMatch``); the reply, an
    error reply included."""
    daemon = "org.freedesktop.DBus"
    return await call_method(bus, daemon, "/org/freedesktop/DBus", daemon, "AddMatch", "s", [rule])


async def close_bus(bus: MessageBus) -> None:
    """Disconnect and wait until the connection is closed."""
    bus.disconnect()
    # The error that had already closed a dead connection is no news here.
    with contextlib.suppress(Exception):
        await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


__all__ = [
    "BusType",
    "DBusError",
    "DBusObjectPath",
    "DBusStr",
    "DBusUInt16",
    "DBusUInt32",
    "ErrorType",
    "Message",
    "MessageBus",
    "MessageType",
    "ServiceInterface",
    "Variant",
    "add_match",
    "call_method",
    "close_bus",
    "connect_system_bus",
    "dbus_method",
    "signature_types",
]
