"""An emulated body composition scale (Body Composition Service 0x181B, BCS 1.0).

Body Composition Measurement 0x2A9C (indicate) and Body Composition Feature 0x2A9B (read).
A measurement with every field the scale supports does not fit one value at the default ATT
MTU: it is sent as two values, each with its flags, the mandatory Body Fat Percentage and
Flags bit 12 "multiple packet measurement" (BCS 1.0 section 3.2.1.1), the time stamp and user
in both. Measurements are stored until a central subscribes; Current Time is present.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.peripheral import DeviceDefaults, EmulatedDevice
from protocols.gatt import (
    BODY_COMPOSITION_FEATURE,
    BODY_COMPOSITION_MEASUREMENT,
    BodyCompositionFeature,
    BodyCompositionMeasurement,
    DateTime,
    encode,
)
from protocols.gatt.body_composition import BodyCompositionFeatureBits
from protocols.gatt.numbers import BODY_COMPOSITION_SERVICE
from protocols.gatt.weight import HeightResolution, WeightResolution

#: The largest value that fits the default ATT MTU of 23 (ATT_MTU - 3).
DEFAULT_VALUE_SIZE = 20
#: The fields each of the two values of a multiple packet measurement leaves out (None).
_PACKETS_LEAVE_OUT: tuple[dict[str, Any], ...] = (
    dict.fromkeys(("body_water_mass", "impedance_ohm", "weight", "height")),
    dict.fromkeys(
        ("fat_free_mass", "soft_lean_mass", "basal_metabolism_kj", "muscle_percent", "muscle_mass")
    ),
)


class EmulatedBodyCompositionScale(EmulatedDevice):
    """A scale that measures fat, fat-free, soft lean and water mass, impedance and weight."""

    service_uuid = BODY_COMPOSITION_SERVICE
    defaults = DeviceDefaults(name="narhub-bcs", bonding_required=True)

    def build_services(self) -> list[Service]:
        """Body Composition Service 0x181B."""
        self.measurement = self._measurement(BODY_COMPOSITION_MEASUREMENT, indicate=True)
        bits = BodyCompositionFeatureBits
        feature = encode(
            BodyCompositionFeature(
                bits.TIME_STAMP
                | bits.MULTIPLE_USERS
                | bits.FAT_FREE_MASS
                | bits.SOFT_LEAN_MASS
                | bits.BODY_WATER_MASS
                | bits.IMPEDANCE
                | bits.WEIGHT,
                WeightResolution.KG_0_005_LB_0_01,
                HeightResolution.UNSPECIFIED,
            )
        )
        self.feature = self._fixed(BODY_COMPOSITION_FEATURE, feature)
        return [self._service(self.measurement, self.feature)]

    def random_measurement(self) -> BodyCompositionMeasurement:
        """A seeded measurement in SI units (masses on the 0.005 kg grid)."""
        rng = self.rng
        weight = Decimal(rng.randint(11_000, 22_000) * 5).scaleb(-3)
        fat = Decimal(rng.randint(120, 380)).scaleb(-1)
        fat_free = (weight * (100 - fat) / 100 / Decimal("0.005")).quantize(Decimal(1))
        fat_free_kg = (fat_free * Decimal("0.005")).quantize(Decimal("0.005"))
        return BodyCompositionMeasurement(
            fat,
            time_stamp=DateTime.from_datetime(self.clock.stamp()),
            user_id=1,
            fat_free_mass=fat_free_kg,
            soft_lean_mass=(fat_free_kg * Decimal("0.9") / Decimal("0.005")).quantize(Decimal(1))
            * Decimal("0.005"),
            body_water_mass=(fat_free_kg * Decimal("0.73") / Decimal("0.005")).quantize(Decimal(1))
            * Decimal("0.005"),
            impedance_ohm=Decimal(rng.randint(3500, 6500)).scaleb(-1),
            weight=weight,
        )

    def packets(self, m: BodyCompositionMeasurement) -> list[BodyCompositionMeasurement]:
        """The values that carry ``m``: one when it fits, else two (multiple packet)."""
        if len(encode(m)) <= DEFAULT_VALUE_SIZE:
            return [m]
        return [
            dataclasses.replace(m, multiple_packet_measurement=True, **left_out)
            for left_out in _PACKETS_LEAVE_OUT
        ]

    async def measure(self, measurement: BodyCompositionMeasurement | None = None) -> list[bytes]:
        """Measure (seeded when no measurement is given); store its values; return them."""
        m = measurement if measurement is not None else self.random_measurement()
        payloads = [encode(p) for p in self.packets(m)]
        for payload in payloads:
            self.store(self.measurement, payload)
        return payloads
