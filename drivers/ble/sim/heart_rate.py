"""An emulated heart-rate strap (Heart Rate Service 0x180D, HRS 1.0).

Heart Rate Measurement 0x2A37 notifications with sensor contact and RR intervals (1/1024 s),
from a seeded random walk, every ``interval_s`` while a central is subscribed; Body Sensor
Location 0x2A38 (read: chest). No Current Time, as straps have none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from drivers.ble.sim._bumble import Service
from drivers.ble.sim.peripheral import EmulatedDevice, Properties, _uuid
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import HEART_RATE_MEASUREMENT, HeartRateMeasurement, SensorContact, encode
from protocols.gatt.numbers import HEART_RATE_SERVICE

BODY_SENSOR_LOCATION = 0x2A38
_CHEST = 1


class EmulatedHeartRateStrap(EmulatedDevice):
    """A strap that streams heart rate while a central listens."""

    service_uuid = HEART_RATE_SERVICE

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        name: str = "narhub-hrm",
        interval_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("current_time", False)
        super().__init__(radio, address, name=name, **kwargs)
        self.interval_s = interval_s
        self._bpm = 60 + self.rng.randint(0, 20)
        #: Notifications sent.
        self.sent = 0

    def build_services(self) -> list[Service]:
        """Heart Rate Service 0x180D."""
        self.measurement = self._characteristic(HEART_RATE_MEASUREMENT, Properties.NOTIFY)
        self.location = self._characteristic(
            BODY_SENSOR_LOCATION, Properties.READ, read=lambda: bytes((_CHEST,))
        )
        return [Service(_uuid(HEART_RATE_SERVICE), [self.measurement, self.location])]

    def on_started(self) -> None:
        """Start streaming."""
        self.spawn(self._stream(), "stream")

    def next_measurement(self) -> HeartRateMeasurement:
        """The next sample of the seeded random walk, with one or two RR intervals."""
        self._bpm = max(45, min(160, self._bpm + self.rng.randint(-2, 2)))
        rr = round(60 * 1024 / self._bpm)
        rr_intervals = (rr,) if self.rng.random() < 0.5 else (rr, rr + self.rng.randint(-8, 8))
        return HeartRateMeasurement(
            self._bpm, SensorContact.DETECTED, rr_intervals_1024th_s=rr_intervals
        )

    async def _stream(self) -> None:
        while True:
            await self.wait_until(lambda: self.subscribed(self.measurement, indicate=False))
            payload = self.corrupt(encode(self.next_measurement()))
            if await self.send(self.measurement, payload, indicate=False):
                self.sent += 1
            if self.interval_s > 0:
                await asyncio.sleep(self.interval_s)
            else:
                await asyncio.sleep(0)
