"""Allowlist scanning with a watchdog, on one real :class:`bleak.BleakScanner`.

One scanner serves every device (an adapter runs one discovery). Advertisements from
allowlisted addresses wake that device's supervisor; others are ignored, except in pairing
mode, where health devices are listed for the technician. Scanning is passive where the
adapter allows (no scan requests: less air time and battery on the devices); on BlueZ passive
scanning needs an AdvertisementMonitor with "or patterns", given here as the health service
UUIDs, and falls back to active when BlueZ refuses. A watchdog restarts a scanner that has
heard nothing for ``watchdog_s`` (adapters do go deaf, as Home Assistant's stack observed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from drivers._aio import reraise_if_cancelling
from drivers.ble._bleak import (
    AdvertisementData,
    AdvertisementDataType,
    BleakError,
    BleakScanner,
    BLEDevice,
)
from drivers.ble.backends import BleBackend

logger = logging.getLogger(__name__)

#: Health services whose advertisements a passive BlueZ monitor matches (16-bit, LE bytes).
HEALTH_SERVICES = (0x1808, 0x1809, 0x180D, 0x1810, 0x181B, 0x181D, 0x1822, 0x181F, 0x1840)


@dataclass
class Sighting:
    """The latest advertisement of one device."""

    device: BLEDevice
    name: str | None
    seen_mono: float


class AllowlistScanner:
    """Runs the scanner (:meth:`run`) and lets supervisors wait for their device."""

    def __init__(
        self,
        backend: BleBackend,
        allowlist: set[str],
        *,
        scanning_mode: Literal["active", "passive"] = "passive",
        watchdog_s: float = 90.0,
        restart_delay_s: float = 1.0,
        reset_adapter: Callable[[], Awaitable[None]] | None = None,
        silent_restarts_before_reset: int = 2,
    ) -> None:
        """``reset_adapter``: power-cycles the adapter (:func:`drivers.ble.adapter.
        power_cycle`), called when the watchdog found the scanner silent
        ``silent_restarts_before_reset`` times in a row (restarting the scan did not help:
        the adapter hangs)."""
        self._backend = backend
        self._reset_adapter = reset_adapter
        self._silent_limit = silent_restarts_before_reset
        self._silent_in_a_row = 0
        #: Adapter power cycles done (and failed) after the scanner stayed silent.
        self.adapter_resets = 0
        self.adapter_reset_failures = 0
        self._allowlist = {a.upper() for a in allowlist}
        self.scanning_mode = scanning_mode
        self._watchdog_s = watchdog_s
        self._restart_delay_s = restart_delay_s
        self._sightings: dict[str, Sighting] = {}
        self._seen: dict[str, asyncio.Event] = {a: asyncio.Event() for a in self._allowlist}
        self._heard = asyncio.Event()
        self.pairing_mode = False
        #: Health devices heard in pairing mode that are not allowlisted: address -> name.
        self.discovered: dict[str, str | None] = {}
        self.restarts = 0
        self.advertisements = 0
        self.running = asyncio.Event()

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        self._heard.set()
        self._silent_in_a_row = 0
        self.advertisements += 1
        address = device.address.upper()
        if address not in self._allowlist:
            if self.pairing_mode:
                self.discovered[address] = adv.local_name
            return
        self._sightings[address] = Sighting(device, adv.local_name, time.monotonic())
        self._seen[address].set()

    async def wait_for(self, address: str, *, fresh_s: float) -> BLEDevice:
        """The device, once it advertised within the last ``fresh_s`` seconds."""
        key = address.upper()
        event = self._seen[key]
        while True:
            sighting = self._sightings.get(key)
            if sighting is not None and time.monotonic() - sighting.seen_mono <= fresh_s:
                return sighting.device
            event.clear()
            await event.wait()

    def _scanner_kwargs(self, mode: Literal["active", "passive"]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"scanning_mode": mode}
        if self._backend.scanner_cls is not None:
            kwargs["backend"] = self._backend.scanner_cls
        elif mode == "passive":
            kwargs["bluez"] = {
                "or_patterns": [
                    (
                        0,
                        AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID16,
                        uuid.to_bytes(2, "little"),
                    )
                    for uuid in HEALTH_SERVICES
                ]
                + [
                    (
                        0,
                        AdvertisementDataType.INCOMPLETE_LIST_SERVICE_UUID16,
                        uuid.to_bytes(2, "little"),
                    )
                    for uuid in HEALTH_SERVICES
                ]
            }
        return kwargs

    async def run(self) -> None:
        """Scan until cancelled; restart on silence or scanner errors, never give up."""
        mode = self.scanning_mode
        while True:
            reraise_if_cancelling()  # a cancel swallowed by a scanner error path ends us here
            try:
                scanner = BleakScanner(self._on_advertisement, **self._scanner_kwargs(mode))
                async with scanner:
                    self.running.set()
                    await self._watch()
                self._silent_in_a_row += 1
                reset = self._reset_adapter
                if reset is not None and self._silent_in_a_row >= self._silent_limit:
                    await self._power_cycle(reset)
            except BleakError as exc:
                if mode == "passive" and self._backend.scanner_cls is None:
                    logger.warning("passive scanning unavailable (%s); scanning actively", exc)
                    mode = "active"
                    continue
                logger.warning("BLE scanner failed (%s); restarting", exc)
            finally:
                self.running.clear()
            self.restarts += 1
            await asyncio.sleep(self._restart_delay_s)

    async def _power_cycle(self, reset: Callable[[], Awaitable[None]]) -> None:
        self._silent_in_a_row = 0
        logger.warning("BLE adapter silent after scanner restarts; power-cycling it")
        try:
            await reset()
        except Exception as exc:  # noqa: BLE001 - counted and retried at the next silence
            self.adapter_reset_failures += 1
            logger.error("BLE adapter power cycle failed (%s)", exc)
            return
        self.adapter_resets += 1

    async def _watch(self) -> None:
        while True:
            # A cancellation can be lost on the way in: Python 3.11's asyncio.wait_for returns
            # the result and drops a cancel that lands in the same loop iteration as the reply
            # (bumble's HCI command path awaits with it; any library under bleak may), so the
            # scanner can start with the cancel pending and no CancelledError. The timeout
            # below only fires in silence; while devices advertise, only this check ends us.
            reraise_if_cancelling()
            self._heard.clear()
            try:
                async with asyncio.timeout(self._watchdog_s):
                    await self._heard.wait()
            except TimeoutError:
                reraise_if_cancelling()
                logger.warning(
                    "BLE scanner silent for %.0fs; restarting it (watchdog)", self._watchdog_s
                )
                return
