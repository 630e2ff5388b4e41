"""An emulated weight scale (Weight Scale Service 0x181D, WSS 1.0).

Weight Measurement 0x2A9D (indicate) and Weight Scale Feature 0x2A9E (read). The displayed
resolution comes from the feature (bits 3-6): a 0.1 kg scale rounds the weight to 0.1 kg, and
the wire value still uses the fixed 0.005 kg LSB (GSS 3.252; docs/protocols/phd.md 2.3).
Measurements are stored until a central subscribes; Current Time is present (openScale sets
UC-352BLE clocks through CTS).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.peripheral import DeviceDefaults, EmulatedDevice
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    WEIGHT_MEASUREMENT,
    WEIGHT_SCALE_FEATURE,
    DateTime,
    WeightMeasurement,
    WeightResolution,
    WeightScaleFeature,
    WeightUnitSystem,
    encode,
)
from protocols.gatt.numbers import WEIGHT_SCALE_SERVICE


class EmulatedScale(EmulatedDevice):
    """A scale: each :meth:`measure` stores a reading, indicated once a central listens."""

    service_uuid = WEIGHT_SCALE_SERVICE
    defaults = DeviceDefaults(name="narhub-scale")

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        resolution: WeightResolution = WeightResolution.KG_0_1_LB_0_2,
        **kwargs: Any,
    ) -> None:
        self.feature_value = WeightScaleFeature(
            time_stamp_supported=True, weight_resolution=resolution
        )
        super().__init__(radio, address, **kwargs)

    def build_services(self) -> list[Service]:
        """Weight Scale Service 0x181D."""
        self.measurement = self._measurement(WEIGHT_MEASUREMENT, indicate=True)
        feature = encode(self.feature_value)
        self.feature = self._fixed(WEIGHT_SCALE_FEATURE, feature)
        return [self._service(self.measurement, self.feature)]

    def quantize_kg(self, weight_kg: Decimal) -> Decimal:
        """Round to the scale's display resolution (the feature's, not the wire LSB)."""
        step = self.feature_value.weight_resolution_value(WeightUnitSystem.SI) or Decimal("0.005")
        return (weight_kg / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step

    async def measure(self, weight_kg: Decimal | str | None = None) -> bytes:
        """Weigh someone (seeded 55-110 kg when no weight is given); returns the payload."""
        raw = (
            Decimal(weight_kg)
            if weight_kg is not None
            else Decimal(self.rng.randint(55_000, 110_000)).scaleb(-3)
        )
        m = WeightMeasurement(
            self.quantize_kg(raw),
            WeightUnitSystem.SI,
            time_stamp=DateTime.from_datetime(self.clock.stamp()),
        )
        payload = encode(m)
        self.store(self.measurement, payload)
        return payload
