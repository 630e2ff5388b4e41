"""Emulated BLE notifications beside the boards for ``narhub bench e2e --ble``.

Heart-rate straps (Heart Rate Service 0x180D, HRS 1.0) on the emulated radio
(:mod:`drivers.ble.sim`), reached by the hub process through the radio's HCI over TCP
(:class:`~drivers.ble.sim.radio.HciServer`), as on the virtual rig. Each strap notifies Heart
Rate Measurement 0x2A37 at a fixed rate on its own clock; the heart-rate field (uint16 format,
HRS 1.0 section 3.1.1.1) carries the notification's number, so each one is identified at the
region by (device, value). A notification the strap could not deliver (no central subscribed,
the link dropped: :meth:`EmulatedDevice.send` returns False) is lost, and the ledger says so.

Numbers wrap at 65,536 per strap: the bench refuses a run that would pass it.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

from drivers.ble.sim.heart_rate import EmulatedHeartRateStrap
from drivers.ble.sim.radio import HciServer, SimRadio
from protocols.gatt import HeartRateMeasurement, SensorContact, encode, to_observations

#: The largest number a strap's uint16 heart-rate field carries.
MAX_NOTIFICATIONS = 0xFFFF


class CountingStrap(EmulatedHeartRateStrap):
    """A strap whose notifications carry their own number; it sends only when told."""

    def __init__(self, radio: SimRadio, address: str, **kwargs: Any) -> None:
        super().__init__(radio, address, **kwargs)
        #: The ledger, indexed by number - 1: when notified (``CLOCK_MONOTONIC`` ns) and
        #: whether the strap delivered it to the link.
        self.taken_ns = array("q")
        self.delivered = bytearray()

    def on_started(self) -> None:
        """No stream of its own: :meth:`notify` is called on the bench's clock."""

    def is_subscribed(self) -> bool:
        """True while the hub listens to Heart Rate Measurement notifications."""
        return self.subscribed(self.measurement, indicate=False)

    async def notify(self) -> None:
        """Notify the next number; the ledger records whether it was delivered."""
        number = len(self.taken_ns) + 1
        if number > MAX_NOTIFICATIONS:
            raise OverflowError(f"a strap numbers at most {MAX_NOTIFICATIONS} notifications")
        self.taken_ns.append(time.monotonic_ns())
        self.delivered.append(0)
        measurement = HeartRateMeasurement(number, SensorContact.DETECTED, uint16_format=True)
        if await self.send(self.measurement, encode(measurement), indicate=False):
            self.delivered[number - 1] = 1


def heart_rate_code() -> tuple[int, str]:
    """The MDC code and UCUM unit the hub gives a Heart Rate Measurement's value."""
    observation = to_observations(HeartRateMeasurement(1, SensorContact.DETECTED))[0]
    return observation.mdc_code, observation.unit


class StrapRadio:
    """The emulated radio, its HCI server for the hub process and the straps on it."""

    def __init__(self, addresses: list[str]) -> None:
        self.radio = SimRadio()
        self.straps = [
            CountingStrap(self.radio, address, name=f"e2e-hrm-{n}", seed=n)
            for n, address in enumerate(addresses)
        ]
        self._hci = HciServer(self.radio)

    @property
    def transport_name(self) -> str:
        """What the hub's ``ble.sim_transport`` is."""
        return self._hci.transport_name

    async def start(self) -> None:
        """Serve the HCI and power the straps on (they advertise)."""
        await self._hci.__aenter__()
        for strap in self.straps:
            await strap.start()

    async def stop(self) -> None:
        """Power the straps off and stop serving."""
        for strap in self.straps:
            await strap.stop()
        await self._hci.__aexit__(None, None, None)

    async def wait_subscribed(self, timeout_s: float) -> None:
        """Wait until the hub has subscribed to every strap."""
        async with asyncio.timeout(timeout_s):
            for strap in self.straps:
                await strap.wait_until(strap.is_subscribed)
