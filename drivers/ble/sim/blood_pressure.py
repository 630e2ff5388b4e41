"""An emulated blood pressure cuff (Blood Pressure Service 0x1810, BLS 1.0).

Behaves as consumer cuffs do (docs/protocols/phd.md 6.1): a measurement inflates the cuff
(Intermediate Cuff Pressure 0x2A36 notifications while a central listens), stores the reading,
wakes up and advertises; once a bonded central enables indications on Blood Pressure
Measurement 0x2A35 every stored reading is indicated in order; then the cuff lingers briefly,
disconnects and sleeps (not advertising) for ``sleep_s`` (60 s by default). Bonding is
required by default: values and CCCDs need an encrypted link. With ``replays_last`` it
re-sends the last delivered reading on every connection, like the A&D UA-651BLE.
Blood Pressure Feature 0x2A49 (read) and Current Time 0x2A2B are present.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from drivers.ble.sim._bumble import Characteristic, Service
from drivers.ble.sim.peripheral import DeviceDefaults, EmulatedDevice
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    BLOOD_PRESSURE_FEATURE,
    BLOOD_PRESSURE_MEASUREMENT,
    INTERMEDIATE_CUFF_PRESSURE,
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    DateTime,
    IntermediateCuffPressure,
    MedFloat,
    encode,
)
from protocols.gatt.numbers import BLOOD_PRESSURE_SERVICE

logger = logging.getLogger(__name__)


class EmulatedBloodPressureCuff(EmulatedDevice):
    """A cuff: measure, wake and advertise, flush stored readings, linger, sleep."""

    service_uuid = BLOOD_PRESSURE_SERVICE
    memory_size = 60
    defaults = DeviceDefaults(name="narhub-cuff", bonding_required=True)
    #: The measurement characteristics (BLS 1.0's; a BLS 1.1 cuff has the enhanced ones).
    measurement_uuid: ClassVar[int] = BLOOD_PRESSURE_MEASUREMENT
    intermediate_uuid: ClassVar[int] = INTERMEDIATE_CUFF_PRESSURE
    #: What its Blood Pressure Feature 0x2A49 says it supports.
    feature_bits: ClassVar[BloodPressureFeatureBits] = (
        BloodPressureFeatureBits.BODY_MOVEMENT_DETECTION
        | BloodPressureFeatureBits.IRREGULAR_PULSE_DETECTION
    )

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        sleep_s: float = 60.0,
        linger_s: float = 2.0,
        replays_last: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(radio, address, **kwargs)
        self.sleep_s = sleep_s
        self.linger_s = linger_s
        self.replays_last = replays_last
        self._last_sent: bytes | None = None
        self._asleep = False
        self._wake = asyncio.Event()
        #: Pairing mode (long button press): advertise even with nothing stored.
        self.pairing_mode = False

    def build_services(self) -> list[Service]:
        """Blood Pressure Service 0x1810."""
        self.measurement = self._measurement(self.measurement_uuid, indicate=True)
        self.intermediate = self._measurement(self.intermediate_uuid, indicate=False)
        feature = encode(BloodPressureFeature(self.feature_bits))
        self.feature = self._fixed(BLOOD_PRESSURE_FEATURE, feature)
        return [self._service(self.measurement, self.intermediate, self.feature)]

    def advertises_at_start(self) -> bool:
        """A cuff sleeps until a measurement (or pairing mode) wakes it."""
        return self.pairing_mode or self.stored > 0

    def on_started(self) -> None:
        """Run the wake/sleep cycle."""
        self.spawn(self._cycle(), "cycle")

    def random_measurement(self) -> BloodPressureMeasurement:
        """A plausible reading in mmHg with pulse, time-stamped by the device clock."""
        systolic = self.rng.randint(105, 150)
        diastolic = self.rng.randint(60, min(95, systolic - 25))
        mean = diastolic + (systolic - diastolic) // 3
        return BloodPressureMeasurement(
            MedFloat.of(systolic),
            MedFloat.of(diastolic),
            MedFloat.of(mean),
            time_stamp=DateTime.from_datetime(self.clock.stamp()),
            pulse_rate_bpm=MedFloat.of(self.rng.randint(55, 95)),
            user_id=1,
            measurement_status=BloodPressureMeasurementStatus(0),
        )

    async def measure(
        self,
        measurement: BloodPressureMeasurement | None = None,
        *,
        cuff_pressures_mmhg: Sequence[int] = (),
    ) -> bytes:
        """Take a measurement: notify cuff pressures to a listening central, store, wake.

        Returns the Blood Pressure Measurement payload.
        """
        await self.inflate(cuff_pressures_mmhg)
        m = measurement if measurement is not None else self.random_measurement()
        return self.store_reading(encode(m))

    def cuff_pressure(self, pressure_mmhg: int) -> bytes:
        """An Intermediate Cuff Pressure value."""
        return encode(IntermediateCuffPressure(MedFloat.of(Decimal(pressure_mmhg))))

    async def inflate(self, cuff_pressures_mmhg: Sequence[int]) -> None:
        """Notify the cuff pressures to a listening central, one value each."""
        for pressure in cuff_pressures_mmhg:
            await self.send(self.intermediate, self.cuff_pressure(pressure), indicate=False)

    def store_reading(self, payload: bytes) -> bytes:
        """Store a measurement payload and wake up to deliver it; returns the payload."""
        self.store(self.measurement, payload)
        self._wake.set()
        return payload

    def on_subscribed(self, characteristic: Characteristic[bytes], enabled: bool) -> None:
        """Replay the last reading on a new subscription, when the quirk is on."""
        if (
            enabled
            and characteristic is self.measurement
            and self.replays_last
            and self._last_sent is not None
        ):
            self._outbox.appendleft((self.measurement, self._last_sent))

    def on_outbox_empty(self) -> None:
        """Everything delivered: linger, then sleep."""
        self._wake.set()

    async def _cycle(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            transferring = bool(self.stored)
            if self.stored or self.pairing_mode:
                await self.advertise()
            if self.stored:
                await self.wait_until(lambda: self.stored == 0)
            # After a transfer the cuff powers down even when the central left first (it did
            # not before, and stayed awake for good when a hub's idle timeout beat its linger).
            if not self.connected and not transferring:
                continue
            await asyncio.sleep(self.linger_s)
            if self.stored:
                continue
            await self.stop_advertising()
            await self.drop_link_gracefully()
            self._asleep = True
            self._bump()  # wait_until() callers re-check (the link may have been gone already)
            await asyncio.sleep(self.sleep_s)
            self._asleep = False
            self._bump()
            if self.stored or self.pairing_mode:
                self._wake.set()

    async def send(
        self, characteristic: Characteristic[bytes], payload: bytes, *, indicate: bool
    ) -> bool:
        """Remember the last delivered measurement (for the replay quirk)."""
        sent = await super().send(characteristic, payload, indicate=indicate)
        if sent and characteristic is self.measurement:
            self._last_sent = payload
        return sent

    async def drop_link_gracefully(self) -> None:
        """Disconnect as the cuff powers down (remote user terminated)."""
        connection = self._connection
        if connection is not None:
            await connection.disconnect()

    @property
    def asleep(self) -> bool:
        """True while the cuff sleeps after a transfer."""
        return self._asleep
