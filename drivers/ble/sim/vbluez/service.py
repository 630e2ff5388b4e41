"""The virtual BlueZ: ``org.bluez`` on a D-Bus bus, backed by the emulated radio.

:class:`VirtualBlueZ` owns the name ``org.bluez`` and serves what bluetoothd serves
(BlueZ ``doc/org.bluez.Adapter.rst``, ``org.bluez.Device.rst``, ``org.bluez.AgentManager.rst``,
``org.bluez.GattService.rst``, ``org.bluez.GattCharacteristic.rst``,
``org.bluez.GattDescriptor.rst``): ``org.freedesktop.DBus.ObjectManager`` at ``/``,
``org.bluez.AgentManager1`` at ``/org/bluez``, ``org.bluez.Adapter1`` at
``/org/bluez/hci0``, a ``Device1`` per device heard while discovering, and the GATT objects
of connected devices. Its adapter is the emulated radio's central (a bumble host and
controller on the radio's link, :class:`~drivers.ble.sim.radio.SimRadio`): scans, LE
connections, SMP pairing and ATT run there against the same emulated devices the ``sim``
backend talks to, so bleak's own BlueZ backend and the hub's pairing agent run unchanged.

Adapter1 as bluetoothd has it: discovery is per client (``StartDiscovery`` twice from one
connection is ``InProgress``; ``StopDiscovery`` without one ``Failed``), filters are per
client and merged (``SetDiscoveryFilter``: UUIDs, RSSI, Transport, DuplicateData), a
client's discovery ends when it leaves the bus; ``RemoveDevice`` disconnects the device,
forgets its keys and removes the object; ``Powered`` can be set. Bonded devices are
exported at start, as bluetoothd restores them from its storage. The radio's stalled-scanner
fault (:meth:`SimRadio.stall_scanner`) silences the adapter's reports until the scan is
restarted, as on ``sim``.

Two hang switches model an adapter that stops answering: :attr:`VirtualBlueZ.hung` (no
advertisements) and :attr:`VirtualBlueZ.calls_hang` (Adapter1's methods get no reply, as when
bluetoothd waits on a controller whose HCI commands time out). Powering the adapter off
(``Powered`` false, a property that bluetoothd sets through the kernel's management
interface) clears both; calls left waiting then fail with ``org.bluez.Error.NotReady``.

What it does not model (see ``docs/rig.md``): radio timing and interference, controller and
kernel quirks, the temporary-device timeout, BR/EDR, ``AcquireNotify``/``AcquireWrite``,
advertising (``LEAdvertisingManager1``), Battery1 and the other profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

from drivers._aio import Lifecycle
from drivers.ble._dbus import (
    DBusError,
    Message,
    MessageBus,
    MessageType,
    add_match,
    close_bus,
    connect_system_bus,
)
from drivers.ble.sim._bumble import Address, Advertisement, PairingConfig
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.vbluez.agents import AgentManager
from drivers.ble.sim.vbluez.device import DEVICE, VirtualDevice, advertised
from drivers.ble.sim.vbluez.objects import Handler, Interface, Method, ObjectTree, Property

logger = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADAPTER = "org.bluez.Adapter1"
_NAME_OWNER_RULE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged'"
)


def _err(name: str, text: str) -> DBusError:
    return DBusError(f"org.bluez.Error.{name}", text)


class VirtualBlueZ(Lifecycle):
    """``org.bluez`` for the emulated ``radio``, on the bus at ``bus_address``."""

    def __init__(
        self,
        radio: SimRadio,
        bus_address: str,
        *,
        adapter: str = "hci0",
        connect_timeout_s: float = 20.0,
        report_interval_s: float = 0.05,
    ) -> None:
        self.radio = radio
        self._bus_address = bus_address
        self.adapter_path = f"/org/bluez/{adapter}"
        self.connect_timeout_s = connect_timeout_s
        #: At most one advertising report per device in this long (the rest are dropped).
        self.report_interval_s = report_interval_s
        self.agents = AgentManager()
        #: The hang switch: while set, the adapter delivers no advertisements (a restarted
        #: discovery does not help); powering it off (Adapter1.Powered false) clears it.
        self.hung = False
        #: The other hang switch: while set, Adapter1's methods are not answered.
        self.calls_hang = False
        self._powered_off = asyncio.Event()
        #: Adapter1 calls left unanswered while ``calls_hang`` was set.
        self.unanswered_calls = 0
        #: Times the adapter was powered off (a power cycle's first half).
        self.power_cycles = 0
        self.devices: dict[str, VirtualDevice] = {}
        self._bus: MessageBus | None = None
        self._tree: ObjectTree | None = None
        self._discovery: dict[str, dict[str, Any]] = {}
        self._scanning = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def bus(self) -> MessageBus:
        """The service's connection."""
        assert self._bus is not None, "the virtual BlueZ is not running"
        return self._bus

    @property
    def tree(self) -> ObjectTree:
        """The exported objects."""
        assert self._tree is not None, "the virtual BlueZ is not running"
        return self._tree

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Export ``org.bluez`` (the adapter, the agent manager, the bonded devices)."""
        bus = await connect_system_bus(self._bus_address)
        self._bus = bus
        self._tree = ObjectTree(bus)
        self._tree.attach()
        bus.add_message_handler(self._on_signal)
        central = await self.radio.central()
        central.pairing_config_factory = self._pairing_config
        self._tree.add("/org/bluez", [self.agents.interface()])
        self._tree.add(self.adapter_path, [self._adapter_interface(str(central.public_address))])
        if central.keystore is not None:
            for name, _keys in await central.keystore.get_all():
                self._device(Address(name), paired=True)
        await add_match(bus, _NAME_OWNER_RULE)
        await bus.request_name(BLUEZ)
        logger.debug("virtual BlueZ on the bus")

    async def stop(self) -> None:
        """Disconnect every device, end background work and leave the bus."""
        bus, tree = self._bus, self._tree
        if bus is None or tree is None:
            return
        try:
            await self._stop_scanning()
            for device in list(self.devices.values()):
                await device.disconnect()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            await tree.close()
        finally:
            bus.remove_message_handler(self._on_signal)
            self._bus = self._tree = None
            await close_bus(bus)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"vbluez-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pairing_config(self, connection: Any) -> PairingConfig:
        device = self.devices.get(str(connection.peer_address).removesuffix("/P").upper())
        if device is None:
            return PairingConfig(sc=True, mitm=False, bonding=True)
        return device.pairing_config()

    # --- Adapter1 ------------------------------------------------------------------------

    def _adapter_interface(self, address: str) -> Interface:
        return Interface(
            ADAPTER,
            {
                "Address": Property("s", address.removesuffix("/P").upper()),
                "AddressType": Property("s", "random"),
                "Name": Property("s", "narhub-vbluez"),
                "Alias": Property("s", "narhub-vbluez", self._set_alias),
                "Class": Property("u", 0),
                "Powered": Property("b", True, self._set_powered),
                "PowerState": Property("s", "on"),
                "Discoverable": Property("b", False, lambda _v: None),
                "DiscoverableTimeout": Property("u", 180),
                "Pairable": Property("b", True, lambda _v: None),
                "PairableTimeout": Property("u", 0),
                "Discovering": Property("b", False),
                "UUIDs": Property("as", []),
                "Modalias": Property("s", "usb:v1D6Bp0246d0548"),
                "Roles": Property("as", ["central", "peripheral"]),
            },
            {
                "StartDiscovery": Method("", "", self._answering(self._start_discovery)),
                "StopDiscovery": Method("", "", self._answering(self._stop_discovery)),
                "SetDiscoveryFilter": Method("a{sv}", "", self._answering(self._set_filter)),
                "GetDiscoveryFilters": Method("", "as", self._answering(self._filters)),
                "RemoveDevice": Method("o", "", self._answering(self._remove_device)),
            },
        )

    def _answering(self, handler: Handler) -> Handler:
        """``handler``, unless the adapter's calls hang (:attr:`calls_hang`)."""

        def call(msg: Message) -> Awaitable[list[Any]] | list[Any]:
            if self.calls_hang:
                self.unanswered_calls += 1
                return self._unanswered()
            return handler(msg)

        return call

    async def _unanswered(self) -> list[Any]:
        await self._powered_off.wait()
        raise _err("NotReady", "Resource Not Ready")

    def _adapter(self, name: str) -> Any:
        return self.tree.value(self.adapter_path, ADAPTER, name)

    def _set_alias(self, value: Any) -> None:
        self.tree.update(self.adapter_path, ADAPTER, {"Alias": str(value) or "narhub-vbluez"})

    def _set_powered(self, value: Any) -> None:
        powered = bool(value)
        if not powered:
            self.hung = self.calls_hang = False  # the hang switches: a power cycle clears them
            off, self._powered_off = self._powered_off, asyncio.Event()
            off.set()
            self.power_cycles += 1
            self._discovery.clear()
            self._spawn(self._power_off(), "power-off")
        self.tree.update(
            self.adapter_path,
            ADAPTER,
            {"Powered": powered, "PowerState": "on" if powered else "off"},
        )

    async def _power_off(self) -> None:
        await self._stop_scanning()
        for device in list(self.devices.values()):
            await device.disconnect()

    def _filters(self, _msg: Message) -> list[Any]:
        return [["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable"]]

    def _set_filter(self, msg: Message) -> list[Any]:
        options = {key: variant.value for key, variant in msg.body[0].items()}
        transport = options.get("Transport", "auto")
        if transport not in {"auto", "le", "bredr"}:
            raise _err("InvalidArguments", "Invalid arguments in method call")
        self._discovery.setdefault(str(msg.sender), {})
        self._discovery[str(msg.sender)] = {**options, "_started": self._started(msg)}
        return []

    def _started(self, msg: Message) -> bool:
        return bool(self._discovery.get(str(msg.sender), {}).get("_started"))

    async def _start_discovery(self, msg: Message) -> list[Any]:
        if not self._adapter("Powered"):
            raise _err("NotReady", "Resource Not Ready")
        if self._started(msg):
            raise _err("InProgress", "Operation already in progress")
        session = self._discovery.setdefault(str(msg.sender), {})
        session["_started"] = True
        await self._start_scanning()
        return []

    async def _stop_discovery(self, msg: Message) -> list[Any]:
        if not self._started(msg):
            raise _err("Failed", "No discovery started")
        self._discovery.pop(str(msg.sender), None)
        if not any(s.get("_started") for s in self._discovery.values()):
            await self._stop_scanning()
        return []

    async def _start_scanning(self) -> None:
        if self._scanning:
            return
        central = await self.radio.central()
        central.on("advertisement", self._on_advertisement)
        self._scanning = True
        # The radio's stalled-scanner fault heals when the scan is restarted, as with sim.
        self.radio.scanner_stalled = False
        self.radio.scanner_starts += 1
        await central.start_scanning(active=True, filter_duplicates=False)
        self.tree.update(self.adapter_path, ADAPTER, {"Discovering": True})

    async def _stop_scanning(self) -> None:
        if not self._scanning:
            return
        self._scanning = False
        central = await self.radio.central()
        central.remove_listener("advertisement", self._on_advertisement)
        with contextlib.suppress(Exception):
            await central.stop_scanning()
        if self._tree is not None and self.adapter_path in self.tree.objects:
            self.tree.update(self.adapter_path, ADAPTER, {"Discovering": False})

    def _remove_device(self, msg: Message) -> list[Any]:
        path = str(msg.body[0])
        device = next((d for d in self.devices.values() if d.path == path), None)
        if device is None:
            raise _err("DoesNotExist", "Does Not Exist")
        del self.devices[device.text]
        self._spawn(self._forget(device), "remove-device")
        return []

    async def _forget(self, device: VirtualDevice) -> None:
        await device.disconnect()
        central = await self.radio.central()
        if central.keystore is not None:
            await central.keystore.delete(str(device.address))
        self.tree.remove_tree(device.path)
        self.tree.remove(device.path)

    # --- what the radio hears ------------------------------------------------------------

    def _wanted(self, props: dict[str, Any]) -> bool:
        """The merged discovery filter (Adapter API, "SetDiscoveryFilter")."""
        sessions = [s for s in self._discovery.values() if s.get("_started")]
        if not sessions:
            return False
        wanted_uuids: set[str] = set()
        for session in sessions:
            uuids = session.get("UUIDs")
            if not uuids:
                wanted_uuids = set()
                break
            wanted_uuids |= {str(u).lower() for u in uuids}
        if wanted_uuids and not wanted_uuids & set(props.get("UUIDs", [])):
            return False
        floors = [s["RSSI"] for s in sessions if "RSSI" in s]
        return not (floors and len(floors) == len(sessions) and props["RSSI"] < min(floors))

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        if not self._scanning or self.radio.scanner_stalled or self.hung:
            return
        props = advertised(advertisement)
        if not self._wanted(props):
            return
        text = str(advertisement.address).removesuffix("/P").upper()
        device = self.devices.get(text)
        loop = asyncio.get_running_loop()
        if device is None:
            device = self._device(advertisement.address, paired=False, props=props)
        elif loop.time() - device.last_report_s >= self.report_interval_s:
            device.heard(props)
        else:
            return
        device.last_report_s = loop.time()

    def _device(
        self, address: Address, *, paired: bool, props: dict[str, Any] | None = None
    ) -> VirtualDevice:
        device = VirtualDevice(self, address)
        self.devices[device.text] = device
        interface = device.interface(paired)
        for name, value in (props or {}).items():
            interface.properties[name].value = value
        if props and "Name" in props:
            interface.properties["Alias"].value = props["Name"]
        self.tree.add(device.path, [interface])
        return device

    # --- clients leaving the bus ---------------------------------------------------------

    def _on_signal(self, msg: Message) -> None:
        if (
            msg.message_type != MessageType.SIGNAL
            or msg.member != "NameOwnerChanged"
            or msg.sender != "org.freedesktop.DBus"
        ):
            return
        name, _old, new = msg.body
        if new or not str(name).startswith(":"):
            return
        self.agents.forget(str(name))
        session = self._discovery.pop(str(name), None)
        others = any(s.get("_started") for s in self._discovery.values())
        if session and session.get("_started") and not others:
            self._spawn(self._stop_scanning(), "stop-scanning")
        for device in self.devices.values():
            if device.gatt is not None:
                self._spawn(device.gatt.client_gone(str(name)), "client-gone")


__all__ = ["DEVICE", "VirtualBlueZ"]
