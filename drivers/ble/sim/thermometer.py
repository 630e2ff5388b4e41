"""An emulated Health Thermometer (Health Thermometer Service 0x1809, HTS 1.0).

A bumble GATT peripheral whose Temperature Measurement (0x2A1C, indicate) values are built
with :mod:`protocols.gatt`'s encoder, so the bytes on the emulated air are the same bytes a
real thermometer sends.
"""

from __future__ import annotations

import asyncio
import logging

from drivers.ble.sim._bumble import UUID, AdvertisingData, Characteristic, Device, Service
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import TemperatureMeasurement, TemperatureType, encode
from protocols.gatt.temperature import HEALTH_THERMOMETER_SERVICE, TEMPERATURE_MEASUREMENT

logger = logging.getLogger(__name__)

TEMPERATURE_TYPE = 0x2A1D


class EmulatedThermometer:
    """A thermometer that indicates a measurement each time :meth:`measure` is called."""

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        name: str = "narhub-thermo",
        site: TemperatureType = TemperatureType.MOUTH,
    ) -> None:
        self.address = address
        self.name = name
        self.device: Device = radio.new_device(address, name)
        self._measurement = Characteristic(
            UUID.from_16_bits(TEMPERATURE_MEASUREMENT),
            Characteristic.Properties.INDICATE,
            Characteristic.Permissions(0),
            b"",
        )
        self._type = Characteristic(
            UUID.from_16_bits(TEMPERATURE_TYPE),
            Characteristic.Properties.READ,
            Characteristic.READABLE,
            bytes((int(site),)),
        )
        self.device.add_service(
            Service(UUID.from_16_bits(HEALTH_THERMOMETER_SERVICE), [self._measurement, self._type])
        )
        self._subscribed = asyncio.Event()
        self._measurement.on("subscription", self._on_subscription)

    def _on_subscription(self, _bearer: object, notify: bool, indicate: bool) -> None:
        if indicate or notify:
            self._subscribed.set()
        else:
            self._subscribed.clear()

    async def start(self) -> None:
        """Power on and advertise the Health Thermometer service (connectable)."""
        await self.device.power_on()
        self.device.advertising_data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        HEALTH_THERMOMETER_SERVICE.to_bytes(2, "little"),
                    ),
                ]
            )
        )
        await self.device.start_advertising(auto_restart=True, advertising_interval_min=20.0)

    async def wait_subscribed(self) -> None:
        """Return once a central has enabled indications on Temperature Measurement."""
        await self._subscribed.wait()

    async def measure(self, measurement: TemperatureMeasurement) -> bytes:
        """Indicate one measurement to every subscribed central; returns the bytes sent."""
        payload = encode(measurement)
        await self.device.indicate_subscribers(self._measurement, payload)
        logger.debug("emulated thermometer indicated %d bytes", len(payload))
        return payload

    async def stop(self) -> None:
        """Stop advertising and drop connections."""
        await self.device.stop_advertising()
        for connection in list(self.device.connections.values()):
            await connection.disconnect()
