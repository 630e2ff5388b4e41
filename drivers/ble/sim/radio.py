"""One emulated adapter (the hub's central) and the air it shares with emulated peripherals.

Every device gets its own bumble :class:`Controller` on one :class:`LocalLink`, so links,
advertising, connections and ATT run through bumble's real link-layer emulation, not a mock.
"""

from __future__ import annotations

import asyncio
import logging

from drivers.ble.sim._bumble import Address, AsyncPipeSink, Controller, Device, Host, LocalLink

logger = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:00:00:00:00:00"


class SimRadio:
    """The air: a :class:`LocalLink`, the hub's central device and the peripherals on it."""

    def __init__(self, central_address: str = CENTRAL_ADDRESS) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._central_address = central_address
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()

    def new_device(self, address: str, name: str) -> Device:
        """A new bumble device with its own controller on this radio's link."""
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
        device.name = name
        return device

    async def central(self) -> Device:
        """The hub's adapter, powered on at first use (one per radio, like hci0)."""
        async with self._central_lock:
            if self._central is None:
                central = self.new_device(self._central_address, "narhub")
                await central.power_on()
                self._central = central
                logger.debug("sim radio central powered on")
            return self._central
