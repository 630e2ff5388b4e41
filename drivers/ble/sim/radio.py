"""One emulated adapter (the hub's central) and the air it shares with emulated peripherals.

Every device gets its own bumble :class:`Controller` on one :class:`LocalLink`, so links,
advertising, connections, SMP pairing (Core Spec Vol 3 Part H) and ATT (Vol 3 Part F) run
through bumble's real link-layer emulation, not a mock.

Fault seams on the air itself (each named, each undone explicitly):

* :meth:`SimRadio.detach` / :meth:`SimRadio.attach`: a device out of range (its advertising
  and packets no longer reach anyone) and back;
* :meth:`SimRadio.stall_scanner`: the adapter silently stops reporting advertisements until
  its scanner is restarted, as BlueZ adapters occasionally do (the central's watchdog case).
"""

from __future__ import annotations

import asyncio
import logging

from drivers.ble.sim._bumble import (
    Address,
    AsyncPipeSink,
    Controller,
    Device,
    Host,
    LocalLink,
    PairingConfig,
)

logger = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:00:00:00:00:00"


def _pairing_config(_connection: object) -> PairingConfig:
    # LE Secure Connections, bonding, Just Works (no I/O on either side), and the static
    # random address as identity so the key store is keyed by the address bleak uses.
    return PairingConfig(
        sc=True,
        mitm=False,
        bonding=True,
        identity_address_type=PairingConfig.AddressType.RANDOM,
    )


class SimRadio:
    """The air: a :class:`LocalLink`, the hub's central device and the peripherals on it."""

    def __init__(self, central_address: str = CENTRAL_ADDRESS) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._central_address = central_address
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._controllers: dict[str, Controller] = {}
        #: One pending LE connection at a time, as on a real controller.
        self.connect_lock = asyncio.Lock()
        #: Fault seam: while set, scanners on this radio receive no advertisements.
        self.scanner_stalled = False
        #: How many times a scanner was (re)started on this radio.
        self.scanner_starts = 0

    def new_device(self, address: str, name: str) -> Device:
        """A new bumble device with its own controller on this radio's link."""
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
        device.name = name
        device.pairing_config_factory = _pairing_config
        self._controllers[address.upper()] = controller
        return device

    def detach(self, address: str) -> None:
        """Take a device out of range: nothing it sends reaches the air any more."""
        controller = self._controllers[address.upper()]
        if controller in self.link.controllers:
            self.link.remove_controller(controller)

    def attach(self, address: str) -> None:
        """Bring a detached device back into range."""
        controller = self._controllers[address.upper()]
        self.link.add_controller(controller)

    def stall_scanner(self) -> None:
        """Fault: scanners go deaf until restarted (the watchdog must notice and restart)."""
        self.scanner_stalled = True

    def central_keys(self) -> set[str]:
        """Addresses the hub's adapter holds a bond (LTK) for (Core Spec Vol 3 Part H 2.4.1)."""
        keystore = None if self._central is None else self._central.keystore
        if keystore is None:
            return set()
        return {str(name) for name in getattr(keystore, "all_keys", {})}

    async def central(self) -> Device:
        """The hub's adapter, powered on at first use (one per radio, like hci0)."""
        async with self._central_lock:
            if self._central is None:
                central = self.new_device(self._central_address, "narhub")
                await central.power_on()
                self._central = central
                logger.debug("sim radio central powered on")
            return self._central
