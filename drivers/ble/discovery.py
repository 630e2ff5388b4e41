"""A technician's scan: every advertiser in range, with the health services it announces.

Unlike the central's allowlist scanner this sees every device, for ``narhub ble scan`` and
pairing mode. Health services are the Bluetooth SIG 16-bit service UUIDs of the health profiles
(Assigned Numbers, section 3.4.2).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from drivers.ble._bleak import AdvertisementData, BleakScanner, BLEDevice
from drivers.ble.backends import BleBackend
from protocols.gatt.errors import DecodeError
from protocols.gatt.uuids import characteristic_id

#: Health service UUID -> device kind (the names used in the configuration).
HEALTH_SERVICES: dict[int, str] = {
    0x1810: "blood_pressure",
    0x1809: "thermometer",
    0x181D: "scale",
    0x1822: "pulse_oximeter",
    0x1808: "glucose",
    0x180D: "heart_rate",
    0x181F: "cgm",
    0x1840: "ghs",
    0x181B: "body_composition",
}


@dataclass(frozen=True)
class Advertiser:
    """One device heard while scanning."""

    address: str
    name: str | None
    rssi: int
    kinds: tuple[str, ...]


def _kinds(service_uuids: list[str]) -> tuple[str, ...]:
    kinds = []
    for uuid in service_uuids:
        try:
            kind = HEALTH_SERVICES.get(characteristic_id(uuid))
        except DecodeError:
            continue
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


async def discover(backend: BleBackend, *, duration_s: float) -> list[Advertiser]:
    """Scan actively for ``duration_s`` and return every advertiser, strongest first."""
    seen: dict[str, Advertiser] = {}

    def on_advert(device: BLEDevice, adv: AdvertisementData) -> None:
        seen[device.address.upper()] = Advertiser(
            device.address.upper(),
            adv.local_name or device.name,
            adv.rssi,
            _kinds(adv.service_uuids),
        )

    kwargs: dict[str, Any] = {"detection_callback": on_advert, "scanning_mode": "active"}
    if backend.scanner_cls is not None:
        kwargs["backend"] = backend.scanner_cls
    async with BleakScanner(**kwargs):
        await asyncio.sleep(duration_s)  # scanning for a fixed window is the operation itself
    return sorted(seen.values(), key=lambda a: -a.rssi)
