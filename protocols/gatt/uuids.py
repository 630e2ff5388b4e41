"""Bluetooth UUIDs: 16-bit SIG ids and their 128-bit form (Core Spec Vol 3 Part B 2.5.1)."""

from __future__ import annotations

from protocols.gatt.errors import DecodeError

BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def uuid128(short: int) -> str:
    """The 128-bit string form of a 16-bit SIG UUID: ``0x2A1C`` -> ``00002a1c-0000-...``."""
    return f"0000{short:04x}{BASE_UUID_SUFFIX}"


def characteristic_id(characteristic: int | str) -> int:
    """Normalise 0x2A1C, "2A1C", "0x2a1c" or the 128-bit UUID string to the 16-bit int."""
    if isinstance(characteristic, int):
        if 0 <= characteristic <= 0xFFFF:
            return characteristic
    else:
        text = characteristic.strip().lower()
        text = text.removeprefix("0x")
        if len(text) == 36 and text.startswith("0000") and text.endswith(BASE_UUID_SUFFIX):
            text = text[4:8]
        if len(text) == 4:
            try:
                return int(text, 16)
            except ValueError:
                pass
    raise DecodeError(None, "characteristic", f"not a SIG UUID: {characteristic!r}", offset=0)
