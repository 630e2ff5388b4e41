"""Power-cycling a hung Bluetooth adapter through BlueZ (``org.bluez.Adapter1.Powered``).

An adapter can stop answering: no advertisements reach the scanner although devices
advertise, and restarting discovery does not help (Home Assistant's Bluetooth stack power-
cycles adapters for this). BlueZ's Adapter1 ``Powered`` property (BlueZ
``doc/org.bluez.Adapter.rst``: "Switch an adapter on or off") turned off and on again resets
the controller; BlueZ keeps its bonds across it. :func:`power_cycle` does that over D-Bus
(``org.freedesktop.DBus.Properties.Set``, D-Bus Specification "org.freedesktop.DBus.
Properties"), each call under a timeout: an adapter whose D-Bus calls time out as well
raises :class:`AdapterResetError` naming the step, for the supervisor to retry later.
"""

from __future__ import annotations

import asyncio

from drivers.ble._dbus import Message, MessageType, Variant, close_bus, connect_system_bus

BLUEZ = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
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


async def _set_powered(bus: object, path: str, *, powered: bool, timeout_s: float) -> None:
    step = f"Powered={'true' if powered else 'false'}"
    message = Message(
        destination=BLUEZ,
        path=path,
        interface="org.freedesktop.DBus.Properties",
        member="Set",
        signature="ssv",
        body=[ADAPTER_INTERFACE, "Powered", Variant("b", powered)],
    )
    try:
        async with asyncio.timeout(timeout_s):
            reply = await bus.call(message)  # type: ignore[attr-defined]
    except TimeoutError as exc:
        raise AdapterResetError(step, "BlueZ did not answer") from exc
    if reply is None or reply.message_type == MessageType.ERROR:
        reason = "no reply" if reply is None else f"{reply.error_name}: {reply.body}"
        raise AdapterResetError(step, reason)
