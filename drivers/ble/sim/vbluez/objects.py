"""A tree of D-Bus objects served the way bluetoothd serves its own.

bluetoothd exports ``org.freedesktop.DBus.ObjectManager`` at ``/`` (``doc/org.bluez.*.rst``:
every object is found through it) and announces each object with one ``InterfacesAdded``
carrying all its interfaces and their properties, sent from ``/``; property changes go out
as ``org.freedesktop.DBus.Properties.PropertiesChanged`` from the object itself, and an
optional property that has no value is left out rather than sent empty (D-Bus
Specification, "org.freedesktop.DBus.ObjectManager" and "org.freedesktop.DBus.Properties").

:class:`ObjectTree` does exactly that over one dbus-fast connection, answering method calls
with handlers it is given. A handler may be a coroutine: its reply (or a
:class:`~drivers.ble._dbus.DBusError`, sent as a D-Bus error) goes out when it completes.
"""

from __future__ import annotations

import asyncio
import logging
import xml.sax.saxutils
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.ble._dbus import (
    DBusError,
    ErrorType,
    Message,
    MessageBus,
    MessageType,
    Variant,
    signature_types,
)

logger = logging.getLogger(__name__)

_OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
_PROPERTIES = "org.freedesktop.DBus.Properties"
_INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"

#: A method handler: the call in, the reply body out (a list matching the out signature).
Handler = Callable[[Message], Awaitable[list[Any]] | list[Any]]
#: A property setter: the new (unwrapped) value; raises DBusError to refuse it.
Setter = Callable[[Any], None]


@dataclass
class Method:
    """One D-Bus method: its in and out signatures and its handler."""

    in_signature: str
    out_signature: str
    handler: Handler


@dataclass
class Property:
    """One D-Bus property; ``value`` ``None`` means "absent" (an optional property)."""

    signature: str
    value: Any = None
    setter: Setter | None = None


@dataclass
class Interface:
    """An interface of an object: its properties and methods by name."""

    name: str
    properties: dict[str, Property] = field(default_factory=dict)
    methods: dict[str, Method] = field(default_factory=dict)

    def variants(self) -> dict[str, Variant]:
        """The present properties as D-Bus variants."""
        return {
            name: Variant(prop.signature, prop.value)
            for name, prop in self.properties.items()
            if prop.value is not None
        }


class ObjectTree:
    """Objects by path, served on ``bus`` (call :meth:`attach` once)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.objects: dict[str, dict[str, Interface]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> None:
        """Start answering method calls."""
        self.bus.add_message_handler(self._on_message)

    async def close(self) -> None:
        """Stop answering; calls still running are cancelled."""
        self.bus.remove_message_handler(self._on_message)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # --- the objects ---------------------------------------------------------------------

    def add(self, path: str, interfaces: list[Interface]) -> None:
        """Export an object and announce it (one ``InterfacesAdded`` from ``/``)."""
        self.objects[path] = {i.name: i for i in interfaces}
        body = [path, {i.name: i.variants() for i in interfaces}]
        self._signal("/", _OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}", body)

    def remove(self, path: str) -> None:
        """Withdraw an object and announce it (``InterfacesRemoved`` from ``/``)."""
        interfaces = self.objects.pop(path, None)
        if interfaces is not None:
            body = [path, list(interfaces)]
            self._signal("/", _OBJECT_MANAGER, "InterfacesRemoved", "oas", body)

    def remove_tree(self, prefix: str) -> None:
        """Withdraw every object under ``prefix`` (deepest first), ``prefix`` excluded."""
        for path in sorted((p for p in self.objects if p.startswith(prefix + "/")), reverse=True):
            self.remove(path)

    def value(self, path: str, interface: str, name: str) -> Any:
        """A property's current value (``None`` when absent)."""
        return self.objects[path][interface].properties[name].value

    def update(self, path: str, interface: str, changes: dict[str, Any]) -> None:
        """Set properties and announce them; ``None`` removes (invalidates) a property.

        Unchanged values are announced too, as BlueZ does for RSSI and characteristic
        values (every report, every notification).
        """
        iface = self.objects.get(path, {}).get(interface)
        if iface is None:
            return
        changed: dict[str, Variant] = {}
        invalidated: list[str] = []
        for name, value in changes.items():
            prop = iface.properties[name]
            was_present = prop.value is not None
            prop.value = value
            if value is not None:
                changed[name] = Variant(prop.signature, value)
            elif was_present:
                invalidated.append(name)
        if changed or invalidated:
            body = [interface, changed, invalidated]
            self._signal(path, _PROPERTIES, "PropertiesChanged", "sa{sv}as", body)

    def _signal(self, path: str, interface: str, member: str, signature: str, body: Any) -> None:
        if self.bus.connected:
            self.bus.send(Message.new_signal(path, interface, member, signature, body))

    # --- method calls --------------------------------------------------------------------

    def _on_message(self, msg: Message) -> bool | None:
        if msg.message_type != MessageType.METHOD_CALL or msg.path is None:
            return None
        if msg.interface == _OBJECT_MANAGER and msg.member == "GetManagedObjects":
            if msg.path != "/":
                return None
            managed = {
                path: {name: i.variants() for name, i in interfaces.items()}
                for path, interfaces in self.objects.items()
            }
            self._reply(msg, "a{oa{sa{sv}}}", [managed])
            return True
        if msg.interface == _INTROSPECTABLE and msg.member == "Introspect":
            self._reply(msg, "s", [self._introspect(msg.path)])
            return True
        interfaces = self.objects.get(msg.path)
        if interfaces is None:
            return None
        if msg.interface == _PROPERTIES:
            self._properties(msg, interfaces)
            return True
        method = self._find(interfaces, msg)
        if method is None:
            return None
        self._call(msg, method)
        return True

    @staticmethod
    def _find(interfaces: dict[str, Interface], msg: Message) -> Method | None:
        candidates = (
            [interfaces[msg.interface]]
            if msg.interface in interfaces
            else (list(interfaces.values()) if msg.interface is None else [])
        )
        for iface in candidates:
            method = iface.methods.get(str(msg.member))
            if method is not None and method.in_signature == msg.signature:
                return method
        return None

    def _call(self, msg: Message, method: Method) -> None:
        try:
            result = method.handler(msg)
        except DBusError as exc:
            self._error(msg, exc)
            return
        if isinstance(result, list):
            self._reply(msg, method.out_signature, result)
            return

        async def finish(pending: Awaitable[list[Any]]) -> None:
            try:
                body = await pending
            except DBusError as exc:
                self._error(msg, exc)
            else:
                self._reply(msg, method.out_signature, body)

        task = asyncio.get_running_loop().create_task(finish(result), name=f"vbluez-{msg.member}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("virtual BlueZ method failed", exc_info=task.exception())

    def _properties(self, msg: Message, interfaces: dict[str, Interface]) -> None:
        try:
            signature, body = self._property_call(msg, interfaces)
        except DBusError as exc:
            self._error(msg, exc)
        else:
            self._reply(msg, signature, body)

    @staticmethod
    def _property_call(msg: Message, interfaces: dict[str, Interface]) -> tuple[str, list[Any]]:
        """Get / GetAll / Set (D-Bus Specification, "org.freedesktop.DBus.Properties")."""
        member, body = msg.member, msg.body
        iface = interfaces.get(str(body[0])) if body else None
        if iface is None:
            raise DBusError(ErrorType.UNKNOWN_INTERFACE, f"no interface {body[:1]}")
        if member == "GetAll" and msg.signature == "s":
            return "a{sv}", [iface.variants()]
        prop = iface.properties.get(str(body[1]))
        if prop is None or prop.value is None:
            raise DBusError(ErrorType.UNKNOWN_PROPERTY, f"no property {body[1]}")
        if member == "Get" and msg.signature == "ss":
            return "v", [Variant(prop.signature, prop.value)]
        if member != "Set" or msg.signature != "ssv":
            raise DBusError(ErrorType.UNKNOWN_METHOD, f"no method {member}")
        if prop.setter is None:
            raise DBusError(ErrorType.PROPERTY_READ_ONLY, f"{body[1]} is read-only")
        variant = body[2]
        if not isinstance(variant, Variant) or variant.signature != prop.signature:
            raise DBusError("org.bluez.Error.InvalidArguments", "Invalid arguments")
        prop.setter(variant.value)
        return "", []

    def _reply(self, msg: Message, signature: str, body: list[Any]) -> None:
        if self.bus.connected:
            self.bus.send(Message.new_method_return(msg, signature, body))

    def _error(self, msg: Message, exc: DBusError) -> None:
        if self.bus.connected:
            self.bus.send(Message.new_error(msg, exc.type, exc.text))

    def _introspect(self, path: str) -> str:
        """Introspection XML (D-Bus Specification, "Introspection Data Format")."""
        esc = xml.sax.saxutils.quoteattr
        parts = ["<node>"]
        for iface in self.objects.get(path, {}).values():
            parts.append(f"<interface name={esc(iface.name)}>")
            for name, method in iface.methods.items():
                parts.append(f"<method name={esc(name)}>")
                parts.extend(
                    f'<arg type={esc(sig)} direction="in"/>'
                    for sig in signature_types(method.in_signature)
                )
                parts.extend(
                    f'<arg type={esc(sig)} direction="out"/>'
                    for sig in signature_types(method.out_signature)
                )
                parts.append("</method>")
            for name, prop in iface.properties.items():
                access = "readwrite" if prop.setter else "read"
                parts.append(
                    f"<property name={esc(name)} type={esc(prop.signature)} access={esc(access)}/>"
                )
            parts.append("</interface>")
        prefix = "" if path == "/" else path
        children = {
            p[len(prefix) + 1 :].split("/", 1)[0]
            for p in self.objects
            if p.startswith(prefix + "/") and p != path
        }
        parts.extend(f"<node name={esc(child)}/>" for child in sorted(children))
        parts.append("</node>")
        return "".join(parts)
