"""bleak's real BlueZ backend (no ``backend=`` class) against the virtual BlueZ."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from vbluez_rig import virtual_bluez

from drivers.ble._bleak import BleakClient, BleakScanner
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer
from protocols.gatt import TEMPERATURE_MEASUREMENT, TemperatureMeasurement, decode

THERMO = "F1:00:00:00:00:01"
HTS = "00001809-0000-1000-8000-00805f9b34fb"
TEMPERATURE = "00002a1c-0000-1000-8000-00805f9b34fb"


async def test_bleak_scans_connects_and_receives_an_indication(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch),
        EmulatedThermometer(radio, THERMO, seed=3) as thermometer,
    ):
        device = await BleakScanner.find_device_by_address(THERMO, timeout=10.0)
        assert device is not None
        assert device.name == "narhub-thermo"
        assert device.details["path"] == "/org/bluez/hci0/dev_F1_00_00_00_00_01"
        received: asyncio.Queue[bytes] = asyncio.Queue()
        async with BleakClient(device, timeout=10.0) as client:
            assert HTS in {s.uuid for s in client.services}
            await client.start_notify(
                TEMPERATURE, lambda _c, data: received.put_nowait(bytes(data))
            )
            sent = await thermometer.measure()
            async with asyncio.timeout(10):
                got = await received.get()
            await client.stop_notify(TEMPERATURE)
        assert got == sent
        value = decode(TEMPERATURE_MEASUREMENT, got)
        assert isinstance(value, TemperatureMeasurement)
        assert value == TemperatureMeasurement(
            value.temperature, time_stamp=value.time_stamp, temperature_type=thermometer.site
        )
        assert value.temperature.value is not None
        assert Decimal(36) <= value.temperature.value <= Decimal("38.4")
