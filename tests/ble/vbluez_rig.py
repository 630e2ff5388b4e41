"""The virtual BlueZ rig: a private dbus-daemon, ``org.bluez`` over an emulated radio, and
``DBUS_SYSTEM_BUS_ADDRESS`` pointing bleak and the hub at it.

A missing ``dbus-daemon`` fails the test loudly, saying what to install (``make test`` installs
it through ``make bluez-deps``): this is the virtual rig, never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.security import PairingMode
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.ble.sim.vbluez import PrivateBus, VirtualBlueZ, find_dbus_daemon

MISSING = "dbus-daemon is missing: apt-get install dbus-daemon (or `make bluez-deps` as root)"


def require_dbus_daemon() -> None:
    """Fail, naming what to install, when dbus-daemon is not installed."""
    if find_dbus_daemon() is None:
        pytest.fail(MISSING)


@contextlib.asynccontextmanager
async def virtual_bluez(
    radio: SimRadio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[VirtualBlueZ]:
    """A private bus with the virtual BlueZ on it, as the system bus of this process."""
    require_dbus_daemon()
    async with PrivateBus() as bus:
        assert bus.address is not None
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        try:
            async with VirtualBlueZ(radio, bus.address) as bluez:
                yield bluez
        finally:
            monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS")
    await bus_clients_gone()


async def bus_clients_gone(timeout_s: float = 5.0) -> None:
    """Wait until bleak's watcher of its manager's connection has seen the bus go away (it
    ends then); the leaked-task check judges every other task."""
    watchers = [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "_monitor_bus_disconnect" in getattr(t.get_coro(), "__qualname__", "")
    ]
    if watchers:
        await asyncio.wait(watchers, timeout=timeout_s)


def paired(bluez: VirtualBlueZ, radio: SimRadio, address: str) -> bool:
    """BlueZ says Paired and Bonded, and the adapter holds the device's keys."""
    device = bluez.devices.get(address)
    return (
        device is not None
        and bool(device.prop("Paired"))
        and bool(device.prop("Bonded"))
        and address in {k.removesuffix("/P").upper() for k in radio.central_keys()}
    )


@dataclass
class ThermometerOnBlueZ:
    """The virtual BlueZ and one emulated thermometer on the same radio."""

    radio: SimRadio
    bluez: VirtualBlueZ
    device: EmulatedThermometer

    def paired(self) -> bool:
        """The thermometer is paired (see :func:`paired`)."""
        return paired(self.bluez, self.radio, self.device.address)


@contextlib.asynccontextmanager
async def thermometer_on_bluez(
    monkeypatch: pytest.MonkeyPatch,
    address: str,
    pairing: PairingMode = PairingMode.JUST_WORKS,
    seed: int = 0,
) -> AsyncIterator[ThermometerOnBlueZ]:
    """The virtual BlueZ, and an emulated thermometer asking for ``pairing``."""
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, address, pairing=pairing, seed=seed) as device,
    ):
        yield ThermometerOnBlueZ(radio, bluez, device)
