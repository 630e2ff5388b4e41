"""An emulated Health Thermometer (Health Thermometer Service 0x1809, HTS 1.0).

Temperature Measurement 0x2A1C (indicate), Intermediate Temperature 0x2A1E (notify) and
Temperature Type 0x2A1D (read), with values from :mod:`protocols.gatt`'s encoder, plus Device
Information and Battery. Thermometers rarely have Current Time: the time stamp comes from the
device clock, which the hub can only observe through the time stamps. Measurements taken
while no central listens are kept and indicated once one subscribes.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.peripheral import DeviceDefaults, EmulatedDevice
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    INTERMEDIATE_TEMPERATURE,
    TEMPERATURE_MEASUREMENT,
    TEMPERATURE_TYPE,
    DateTime,
    MedFloat,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    encode,
)
from protocols.gatt.numbers import HEALTH_THERMOMETER_SERVICE

logger = logging.getLogger(__name__)


class EmulatedThermometer(EmulatedDevice):
    """A thermometer that indicates a measurement each time :meth:`measure` is called."""

    service_uuid = HEALTH_THERMOMETER_SERVICE
    defaults = DeviceDefaults(name="narhub-thermo", current_time=False)

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        site: TemperatureType = TemperatureType.MOUTH,
        **kwargs: Any,
    ) -> None:
        self.site = site
        super().__init__(radio, address, **kwargs)

    def build_services(self) -> list[Service]:
        """Health Thermometer Service 0x1809."""
        self.measurement = self._measurement(TEMPERATURE_MEASUREMENT, indicate=True)
        self.intermediate = self._measurement(INTERMEDIATE_TEMPERATURE, indicate=False)
        self.temperature_type = self._fixed(TEMPERATURE_TYPE, bytes((int(self.site),)))
        return [self._service(self.measurement, self.temperature_type, self.intermediate)]

    def random_measurement(self) -> TemperatureMeasurement:
        """A plausible oral temperature (36.0-38.4 Cel), time-stamped by the device clock."""
        tenths = self.rng.randint(360, 384)
        return TemperatureMeasurement(
            MedFloat.of(Decimal(tenths).scaleb(-1)),
            TemperatureUnit.CELSIUS,
            DateTime.from_datetime(self.clock.stamp()),
            self.site,
        )

    async def measure(self, measurement: TemperatureMeasurement | None = None) -> bytes:
        """Take a measurement: indicated now if a central listens, else kept until one does.

        Returns the payload bytes (before any malformed-payload fault).
        """
        m = measurement if measurement is not None else self.random_measurement()
        payload = encode(m)
        self.store(self.measurement, payload)
        logger.debug("emulated thermometer stored %d bytes", len(payload))
        return payload

    async def intermediate_reading(self, measurement: TemperatureMeasurement) -> bool:
        """Notify an Intermediate Temperature (display only) to a subscribed central."""
        return await self.send(self.intermediate, encode(measurement), indicate=False)
