"""The BLE central: find allowlisted devices, connect, subscribe, decode, hand events on.

Uses real :class:`bleak.BleakClient` / :class:`bleak.BleakScanner` objects with the backend
named in the configuration, so the same code runs on BlueZ and on the emulated radio.

Queue policy: events go to a bounded queue. If it is full (the pipeline cannot keep up), the
session disconnects the device rather than drop a decoded reading silently: devices keep
unconfirmed indications and stored records, and resend them on the next connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.ble._bleak import BleakClient, BleakError, BleakGATTCharacteristic, BleakScanner
from drivers.ble.backends import BleBackend
from protocols.gatt import INTERMEDIATE_TEMPERATURE, TEMPERATURE_MEASUREMENT, Measurement, decode
from protocols.gatt.errors import DecodeError
from protocols.gatt.uuids import characteristic_id

logger = logging.getLogger(__name__)

#: Characteristics the central subscribes to when the device has them (GSS ids).
MEASUREMENT_CHARACTERISTICS = frozenset({TEMPERATURE_MEASUREMENT, INTERMEDIATE_TEMPERATURE})


@dataclass(frozen=True, slots=True)
class MeasurementEvent:
    """One value received from a device, decoded or not, with the hub's reception times."""

    device: str
    characteristic: int
    raw: bytes
    measurement: Measurement | None
    error: DecodeError | None
    hub_wall_ms: int
    hub_mono_ns: int


def _short_id(char: BleakGATTCharacteristic) -> int | None:
    try:
        return characteristic_id(char.uuid)
    except DecodeError:
        return None


class BleCentral:
    """Sessions with allowlisted devices; each runs until cancelled, reconnecting."""

    def __init__(
        self,
        backend: BleBackend,
        events: asyncio.Queue[MeasurementEvent],
        *,
        scan_timeout_s: float = 30.0,
        connect_timeout_s: float = 20.0,
    ) -> None:
        self._backend = backend
        self._events = events
        self._scan_timeout_s = scan_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self.malformed = 0
        self.connected = asyncio.Event()

    async def session(self, address: str) -> None:
        """One connection: discover, subscribe, forward events until the link drops."""
        scanner_args: dict[str, Any] = {}
        if self._backend.scanner_cls is not None:
            scanner_args["backend"] = self._backend.scanner_cls
        device = await BleakScanner.find_device_by_address(
            address, timeout=self._scan_timeout_s, **scanner_args
        )
        if device is None:
            raise BleakError("device not found while scanning")
        disconnected = asyncio.Event()
        async with BleakClient(
            device,
            disconnected_callback=lambda _client: disconnected.set(),
            timeout=self._connect_timeout_s,
            backend=self._backend.client_cls,
        ) as client:
            for service in client.services:
                for char in service.characteristics:
                    cid = _short_id(char)
                    if cid in MEASUREMENT_CHARACTERISTICS and (
                        {"notify", "indicate"} & set(char.properties)
                    ):
                        await client.start_notify(char, self._handler(client, address, cid))
            self.connected.set()
            logger.info("BLE session up")
            await disconnected.wait()
        self.connected.clear()

    def _handler(
        self, client: BleakClient, address: str, cid: int
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def on_value(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            raw = bytes(data)
            measurement: Measurement | None = None
            error: DecodeError | None = None
            try:
                measurement = decode(cid, raw)
            except DecodeError as exc:
                error = exc
                self.malformed += 1
                logger.warning("malformed value from a device: %s", exc.reason)
            event = MeasurementEvent(
                device=address,
                characteristic=cid,
                raw=raw,
                measurement=measurement,
                error=error,
                hub_wall_ms=time.time_ns() // 1_000_000,
                hub_mono_ns=time.monotonic_ns(),
            )
            try:
                self._events.put_nowait(event)
            except asyncio.QueueFull:
                logger.error("pipeline queue full: disconnecting the device to apply backpressure")
                task = asyncio.get_running_loop().create_task(client.disconnect())
                task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

        return on_value
