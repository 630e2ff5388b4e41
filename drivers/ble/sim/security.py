"""How an emulated device pairs: Just Works, a passkey it displays, or numeric comparison.

LE pairing methods follow from both sides' IO capabilities and their MITM flags (Core Spec
Vol 3 Part H 2.3.5.1, Tables 2.7 and 2.8). A central with a keyboard (BlueZ with an agent of
capability ``KeyboardDisplay``) pairs:

* :attr:`PairingMode.JUST_WORKS` (no MITM, no IO): as most cuffs and scales do;
* :attr:`PairingMode.PASSKEY`: the device requires MITM and can only display; it shows a
  6-digit passkey (:attr:`DeviceSecurity.displayed_passkey`) that the central must enter
  (Passkey Entry, 2.3.5.3), as several glucose meters do; a wrong number fails the
  confirm check (``Confirm Value Failed``, 3.5.5);
* :attr:`PairingMode.NUMERIC_COMPARISON`: the device requires MITM, displays and has a
  yes button; both sides show a number to compare (LE Secure Connections, 2.3.5.6.2), and the
  device's user always presses "yes".

The passkey is drawn from the device's seeded random generator, a new one for each pairing,
as a real device shows a new number at each attempt, unless the device has a fixed one
(:attr:`DeviceSecurity.fixed_passkey`, printed on its label, as some meters have).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random

from drivers.ble.sim._bumble import PairingConfig, PairingDelegate

logger = logging.getLogger(__name__)


class PairingMode(enum.Enum):
    """The pairing method an emulated device asks for."""

    JUST_WORKS = "just-works"
    PASSKEY = "passkey"
    NUMERIC_COMPARISON = "numeric-comparison"


_IO = {
    PairingMode.JUST_WORKS: PairingDelegate.NO_OUTPUT_NO_INPUT,
    PairingMode.PASSKEY: PairingDelegate.DISPLAY_OUTPUT_ONLY,
    PairingMode.NUMERIC_COMPARISON: PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
}


class _DeviceDelegate(PairingDelegate):
    """The device's side of the user interaction: a display, maybe a yes button."""

    def __init__(self, security: DeviceSecurity) -> None:
        super().__init__(io_capability=_IO[security.mode])
        self._security = security

    async def generate_passkey(self) -> int:
        return self._security.new_passkey()

    async def display_number(self, number: int, digits: int) -> None:
        self._security.displayed_passkey = number

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self._security.displayed_passkey = number
        return True


class DeviceSecurity:
    """One device's pairing behaviour; :meth:`config` is its bumble pairing config factory."""

    def __init__(self, mode: PairingMode, rng: random.Random) -> None:
        self.mode = mode
        self._rng = rng
        #: The 6-digit number the device shows now (``None`` before any pairing).
        self.displayed_passkey: int | None = None
        #: A passkey that never changes (on the device's label); ``None``: a new one each time.
        self.fixed_passkey: int | None = None
        #: Pairings in which the device showed a passkey.
        self.pairings = 0
        self._shown: asyncio.Event | None = None

    def new_passkey(self) -> int:
        """A new passkey for this pairing, shown on the device's display."""
        self.pairings += 1
        passkey = self._rng.randrange(1_000_000)
        if self.fixed_passkey is not None:
            passkey = self.fixed_passkey
        self.displayed_passkey = passkey
        self._event().set()
        logger.debug("emulated device displays a passkey")
        return passkey

    def _event(self) -> asyncio.Event:
        if self._shown is None:
            self._shown = asyncio.Event()
        return self._shown

    def clear_display(self) -> None:
        """The display goes blank (before a new pairing)."""
        self.displayed_passkey = None
        self._event().clear()

    async def passkey_shown(self) -> int:
        """The passkey on the display, once one is shown (what a technician reads)."""
        await self._event().wait()
        assert self.displayed_passkey is not None
        return self.displayed_passkey

    def config(self, _connection: object) -> PairingConfig:
        """LE Secure Connections and bonding; MITM unless Just Works; the random static
        address as identity (the key store is keyed by the address the central uses)."""
        return PairingConfig(
            sc=True,
            mitm=self.mode is not PairingMode.JUST_WORKS,
            bonding=True,
            delegate=_DeviceDelegate(self),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
