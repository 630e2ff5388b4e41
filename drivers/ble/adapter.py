"""Power-cycling a hung Bluetooth adapter through BlueZ (``org.bluez.Adapter1.Powered``).

An adapter can stop answering: no advertisements reach the scanner although devices
advertise, and restarting discovery does not help (Home Assistant's Bluetooth stack power-
cycles adapters for this). BlueZ's Adapter1 ``Powered`` property (BlueZ
``doc/org.bluez.Adapter.rst``: "Switch an adapter on or off") turned off and on again resets
the controller; BlueZ keeps its bonds across it. :func:`power_cycle` does that over D-Bus
(``org.freedesktop.DBus.Properties.Set``, D-Bus Specification "org.freedesktop.DBus.
Properties"), each call under a timeout: an adapter whose D-Bus calls time out as well
raises :class:`AdapterResetError` naming the step, for the supervisor to retry later.

:func:`release_stale_links`: bluetoothd outlives a hub process that crashed (systemd then
starts it again), and keeps the LE links that process had open. A device on such a link
does not advertise, so the new hub would never hear it: at start the hub disconnects the
allowlisted devices BlueZ reports connected (``ObjectManager.GetManagedObjects``, then
``org.bluez.Device1.Disconnect``; BlueZ ``doc/org.bluez.Device.rst``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from drivers.ble._dbus import (
    MessageBus,
    MessageType,
    Variant,
    call_method,
    close_bus,
    connect_system_bus,
)

logger = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
DEVICE_INTERFACE = "org.bluez.Device1"
_PROPERTIES = "org.freedesktop.DBus.Properties"
_OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
#: The adapter BlueZ names first (``hci0``), the one the hub uses.
DEFAULT_ADAPTER_PATH = "/org/bluez/hci0"


class AdapterResetError(RuntimeError):
    """The adapter could not be power-cycled; ``step`` names what failed."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"adapter power cycle failed at {step}: {reason}")


async def power_cycle(
    adapter_path: str = DEFAULT_ADAPTER_PATH, *, timeout_s: float = 10.0, off_s: float = 0.5
) -> None:
    """Turn the adapter off, wait ``off_s``, and on again (BlueZ Adapter1.Powered)."""
    try:
        async with asyncio.timeout(timeout_s):
            bus = await connect_system_bus()
    except (TimeoutError, OSError) as exc:
        raise AdapterResetError("connecting to the system bus", str(exc) or "timed out") from exc
    try:
        await _set_powered(bus, adapter_path, powered=False, timeout_s=timeout_s)
        await asyncio.sleep(off_s)  # the controller's reset time, not a synchronisation
        await _set_powered(bus, adapter_path, powered=True, timeout_s=timeout_s)
    finally:
        await close_bus(bus)


async def _set_powered(bus: MessageBus, path: str, *, powered: bool, timeout_s: float) -> None:
    step = f"Powered={'true' if powered else 'false'}"
    value = [ADAPTER_INTERFACE, "Powered", Variant("b", powered)]
    try:
        async with asyncio.timeout(timeout_s):
            reply = await call_method(bus, BLUEZ, path, _PROPERTIES, "Set", "ssv", value)
    except TimeoutError as exc:
        raise AdapterResetError(step, "BlueZ did not answer") from exc
    if reply is None or reply.message_type == MessageType.ERROR:
        reason = "no reply" if reply is None else f"{reply.error_name}: {reply.body}"
        raise AdapterResetError(step, reason)


async def release_stale_links(addresses: Collection[str], *, timeout_s: float = 10.0) -> int:
    """Disconnect the devices in ``addresses`` that BlueZ holds connected (links left by an
    earlier hub process); the number disconnected. Best effort: BlueZ not answering, or
    refusing, is logged and the hub goes on (a device's own idle timeout ends the link)."""
    wanted = {a.upper() for a in addresses}
    try:
        async with asyncio.timeout(timeout_s):
            bus = await connect_system_bus()
    except (TimeoutError, OSError) as exc:
        logger.warning("BLE: could not look for stale links (%s)", exc or "timed out")
        return 0
    released = 0
    try:
        async with asyncio.timeout(timeout_s):
            reply = await call_method(bus, BLUEZ, "/", _OBJECT_MANAGER, "GetManagedObjects")
            if reply is None or reply.message_type == MessageType.ERROR:
                return 0
            for path in _stale(reply.body[0], wanted):
                answer = await call_method(bus, BLUEZ, path, DEVICE_INTERFACE, "Disconnect")
                if answer is not None and answer.message_type != MessageType.ERROR:
                    released += 1
    except TimeoutError:
        logger.warning("BLE: BlueZ did not answer while releasing stale links")
    finally:
        await close_bus(bus)
    if released:
        logger.info("BLE: released %d link(s) an earlier hub process left open", released)
    return released


def _stale(objects: dict[str, dict[str, dict[str, Any]]], wanted: set[str]) -> list[str]:
    """The object paths of wanted devices that are connected."""
    paths = []
    for path, interfaces in objects.items():
        device = interfaces.get(DEVICE_INTERFACE)
        if device is None:
            continue
        address = str(device["Address"].value).upper() if "Address" in device else ""
        connected = bool(device["Connected"].value) if "Connected" in device else False
        if connected and address in wanted:
            paths.append(path)
    return paths
