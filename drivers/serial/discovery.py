"""Find sensor boards among the serial ports by USB VID/PID and serial number.

The USB IDs are those the boards enumerate with when running MicroPython: Raspberry Pi's
RP2040 MicroPython CDC (2E8A:0005), Espressif's native USB (303A:1001 USB-Serial/JTAG,
303A:4001 MicroPython on ESP32-S2/S3), and the USB-UART bridges on ESP32 DevKits (Silicon
Labs CP210x 10C4:EA60, WCH CH340 1A86:7523, WCH CH9102 1A86:55D4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from drivers.errors import DeviceUnavailableError
from drivers.serial._pyserial import PortInfo, list_port_info

KNOWN_BOARDS: Mapping[tuple[int, int], str] = {
    (0x2E8A, 0x0005): "rp2040",
    (0x303A, 0x1001): "esp32",
    (0x303A, 0x4001): "esp32",
    (0x10C4, 0xEA60): "esp32",
    (0x1A86, 0x7523): "esp32",
    (0x1A86, 0x55D4): "esp32",
}


@dataclass(frozen=True, slots=True)
class BoardPort:
    """A serial port that looks like a sensor board."""

    device: str
    vid: int
    pid: int
    serial_number: str | None
    board: str
    description: str


def find_boards(
    ports: Iterable[PortInfo] | None = None,
    *,
    known: Mapping[tuple[int, int], str] = KNOWN_BOARDS,
) -> list[BoardPort]:
    """Ports whose USB VID/PID is a known board, sorted by device name (blocking)."""
    found = [
        BoardPort(p.device, p.vid, p.pid, p.serial_number, known[(p.vid, p.pid)], p.description)
        for p in (list_port_info() if ports is None else ports)
        if p.vid is not None and p.pid is not None and (p.vid, p.pid) in known
    ]
    return sorted(found, key=lambda b: b.device)


async def resolve_port(spec: str) -> str:
    """Turn a port spec into a device path, now (called again on every reconnect).

    Specs: ``serial:/dev/ttyACM0`` or ``/dev/ttyACM0`` (a fixed path, e.g. a udev by-id link
    or the virtual rig's pty link) and ``serial:usb:SERIAL`` (the known board with that USB
    serial number, wherever it enumerated).

    Raises:
        DeviceUnavailableError: no board with that serial number is plugged in.
    """
    rest = spec.removeprefix("serial:")
    if not rest.startswith("usb:"):
        return rest
    serial_number = rest.removeprefix("usb:")
    boards = await asyncio.to_thread(find_boards)
    for b in boards:
        if b.serial_number == serial_number:
            return b.device
    raise DeviceUnavailableError(
        spec, "no sensor board with this USB serial number is plugged in; check the cable"
    )
