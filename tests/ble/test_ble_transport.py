"""The emulated radio across an HCI transport: the hub's central in one place, the devices'
air in another (``narhub rig``), joined by bumble's ``tcp-client`` transport on loopback."""

from __future__ import annotations

import asyncio

from ble_rig import FAST, Collector

from drivers.ble import BleCentral, DeviceSpec, MeasurementEvent, resolve_backend
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.radio import HciServer, SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer
from protocols.gatt import GLUCOSE_MEASUREMENT, TEMPERATURE_MEASUREMENT


async def test_hub_restarts_reach_the_same_devices_over_tcp() -> None:
    air = SimRadio()
    thermometer = EmulatedThermometer(air, "C0:FF:EE:00:00:01")
    meter = EmulatedGlucoseMeter(air, "C0:FF:EE:00:00:02", stored_records=2)
    await thermometer.start()
    await meter.start()
    try:
        async with HciServer(air) as server:
            assert server.transport_name.startswith("tcp-client:127.0.0.1:")
            for start in range(2):
                # A new hub process each time: a fresh host, no bond kept (memory key store).
                hub_radio = SimRadio(transport=server.transport_name)
                queue: asyncio.Queue[MeasurementEvent] = asyncio.Queue()
                collector = Collector()
                central = BleCentral(
                    resolve_backend("sim", sim_radio=hub_radio),
                    queue,
                    [
                        DeviceSpec(thermometer.address, "thermometer"),
                        DeviceSpec(meter.address, "glucose", bond=True),
                    ],
                    settings=FAST,
                )
                consumer = asyncio.create_task(collector.consume(queue))
                try:
                    async with central:
                        await thermometer.measure()
                        meter.add_record()
                        await collector.wait_for(
                            lambda c=collector: (
                                bool(c.of(TEMPERATURE_MEASUREMENT))
                                and len(c.of(GLUCOSE_MEASUREMENT)) >= 1
                            ),
                            timeout_s=30,
                        )
                finally:
                    consumer.cancel()
                    await asyncio.gather(consumer, return_exceptions=True)
                    await hub_radio.close()
                # The host went away: the devices lose their links and advertise again.
                async with asyncio.timeout(10):
                    await thermometer.wait_until(lambda: not thermometer.connected)
                    await meter.wait_until(lambda: not meter.connected)
                assert server.connections == start + 1
    finally:
        await thermometer.stop()
        await meter.stop()
