"""An emulated BLS 1.1 cuff: Enhanced Blood Pressure Measurement 0x2B34 (indicate) and Enhanced
Intermediate Cuff Pressure 0x2B35 (notify) in the Blood Pressure Service 0x1810.

It behaves as :class:`~drivers.ble.sim.blood_pressure.EmulatedBloodPressureCuff` (measure,
wake, flush stored readings, linger, sleep); its readings carry the BLS 1.1 time fields: a
Time Stamp and a User Facing Time in seconds since 2000-01-01 (Flags bit 6), from the device
clock, which Current Time 0x2A2B keeps settable. The Blood Pressure Feature says so (bit 8
user facing time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.peripheral import Properties, _uuid
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    BLOOD_PRESSURE_FEATURE,
    ENHANCED_BLOOD_PRESSURE_MEASUREMENT,
    ENHANCED_INTERMEDIATE_CUFF_PRESSURE,
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurementStatus,
    EnhancedBloodPressureMeasurement,
    EnhancedIntermediateCuffPressure,
    MedFloat,
    encode,
)
from protocols.gatt.blood_pressure import BLOOD_PRESSURE_SERVICE
from protocols.gatt.enhanced_bp import EpochStart

_EPOCH_2000 = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - the value's own (zone-less) epoch


class EmulatedEnhancedCuff(EmulatedBloodPressureCuff):
    """A BLS 1.1 cuff with epoch-2000 time stamps."""

    def __init__(
        self, radio: SimRadio, address: str, *, name: str = "narhub-ecuff", **kwargs: Any
    ) -> None:
        super().__init__(radio, address, name=name, **kwargs)

    def build_services(self) -> list[Service]:
        """Blood Pressure Service 0x1810 with the BLS 1.1 characteristics."""
        self.measurement = self._characteristic(
            ENHANCED_BLOOD_PRESSURE_MEASUREMENT, Properties.INDICATE, protected=True
        )
        self.intermediate = self._characteristic(
            ENHANCED_INTERMEDIATE_CUFF_PRESSURE, Properties.NOTIFY, protected=True
        )
        feature = encode(
            BloodPressureFeature(
                BloodPressureFeatureBits.BODY_MOVEMENT_DETECTION
                | BloodPressureFeatureBits.IRREGULAR_PULSE_DETECTION
                | BloodPressureFeatureBits.USER_FACING_TIME
            )
        )
        self.feature = self._characteristic(
            BLOOD_PRESSURE_FEATURE, Properties.READ, read=lambda: feature, protected=True
        )
        return [
            Service(
                _uuid(BLOOD_PRESSURE_SERVICE), [self.measurement, self.intermediate, self.feature]
            )
        ]

    def _seconds(self) -> int:
        return int((self.clock.now() - _EPOCH_2000).total_seconds())

    def random_enhanced_measurement(self) -> EnhancedBloodPressureMeasurement:
        """A plausible reading in mmHg with pulse, stamped by the device clock."""
        systolic = self.rng.randint(105, 150)
        diastolic = self.rng.randint(60, min(95, systolic - 25))
        now_s = self._seconds()
        return EnhancedBloodPressureMeasurement(
            MedFloat.of(systolic),
            MedFloat.of(diastolic),
            MedFloat.of(diastolic + (systolic - diastolic) // 3),
            time_stamp_s=now_s,
            pulse_rate_bpm=MedFloat.of(self.rng.randint(55, 95)),
            user_id=1,
            measurement_status=BloodPressureMeasurementStatus(0),
            user_facing_time_s=now_s,
            epoch_start=EpochStart.YEAR_2000,
        )

    async def measure(  # type: ignore[override]
        self,
        measurement: EnhancedBloodPressureMeasurement | None = None,
        *,
        cuff_pressures_mmhg: Sequence[int] = (),
    ) -> bytes:
        """Take a reading: notify cuff pressures to a listening central, store, wake."""
        for pressure in cuff_pressures_mmhg:
            icp = EnhancedIntermediateCuffPressure(MedFloat.of(Decimal(pressure)))
            await self.send(self.intermediate, encode(icp), indicate=False)
        m = measurement if measurement is not None else self.random_enhanced_measurement()
        payload = encode(m)
        self.store(self.measurement, payload)
        self._wake.set()
        return payload
