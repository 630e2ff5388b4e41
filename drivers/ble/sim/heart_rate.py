"""An emulated heart-rate strap (Heart Rate Service 0x180D, HRS 1.0).

Heart Rate Measurement 0x2A37 notifications with sensor contact and RR intervals (1/1024 s),
from a seeded random walk, every ``interval_s`` while a central is subscribed; Body Sensor
Location 0x2A38 (read: chest). No Current Time, as straps have none.
"""

from __future__ import annotations

from typing import Any

from drivers.ble.sim._bumble import Characteristic, Service
from drivers.ble.sim.peripheral import DeviceDefaults, Properties
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.streaming import StreamingDevice
from protocols.gatt import HEART_RATE_MEASUREMENT, HeartRateMeasurement, SensorContact, encode
from protocols.gatt.numbers import HEART_RATE_SERVICE

BODY_SENSOR_LOCATION = 0x2A38
_CHEST = 1


class EmulatedHeartRateStrap(StreamingDevice):
    """A strap that streams heart rate while a central listens."""

    service_uuid = HEART_RATE_SERVICE
    defaults = DeviceDefaults(name="narhub-hrm", current_time=False)

    def __init__(
        self, radio: SimRadio, address: str, *, interval_s: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(radio, address, interval_s=interval_s, **kwargs)
        self._bpm = 60 + self.rng.randint(0, 20)

    def build_services(self) -> list[Service]:
        """Heart Rate Service 0x180D."""
        self.measurement = self._characteristic(HEART_RATE_MEASUREMENT, Properties.NOTIFY)
        self.location = self._fixed(BODY_SENSOR_LOCATION, bytes((_CHEST,)), protected=False)
        return [self._service(self.measurement, self.location)]

    def streamed(self) -> Characteristic[bytes]:
        """Heart Rate Measurement."""
        return self.measurement

    def next_streamed(self) -> bytes:
        """The next :meth:`next_measurement`, encoded."""
        return encode(self.next_measurement())

    def next_measurement(self) -> HeartRateMeasurement:
        """The next sample of the seeded random walk, with one or two RR intervals."""
        self._bpm = max(45, min(160, self._bpm + self.rng.randint(-2, 2)))
        rr = round(60 * 1024 / self._bpm)
        rr_intervals = (rr,) if self.rng.random() < 0.5 else (rr, rr + self.rng.randint(-8, 8))
        return HeartRateMeasurement(
            self._bpm, SensorContact.DETECTED, rr_intervals_1024th_s=rr_intervals
        )
