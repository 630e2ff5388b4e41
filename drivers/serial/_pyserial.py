"""The one module that imports pyserial and pyserial-asyncio-fast; others use what it exports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial
import serial_asyncio_fast
from serial.tools import list_ports

#: Raised by pyserial for an unusable port (unplugged, busy, bad settings).
SerialException: type[Exception] = serial.SerialException


@dataclass(frozen=True, slots=True)
class PortInfo:
    """One serial port as the OS reports it (USB ports carry VID/PID and serial number)."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    manufacturer: str | None
    product: str | None
    description: str


def list_port_info() -> list[PortInfo]:
    """Every serial port the OS knows (blocking: a sysfs scan on Linux; run it in a thread)."""
    return [
        PortInfo(
            device=p.device,
            vid=p.vid,
            pid=p.pid,
            serial_number=p.serial_number,
            manufacturer=p.manufacturer,
            product=p.product,
            description=p.description,
        )
        for p in list_ports.comports()
    ]


async def open_serial(
    device: str,
    protocol_factory: Callable[[], asyncio.Protocol],
    *,
    baudrate: int = 115200,
) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """Open ``device`` raw 8N1, drop bytes queued before we opened it, attach the protocol."""
    loop = asyncio.get_running_loop()

    def _open() -> Any:
        port = serial.Serial(device, baudrate=baudrate, timeout=0, exclusive=True)
        port.reset_input_buffer()
        return port

    instance = await loop.run_in_executor(None, _open)
    transport, protocol = await serial_asyncio_fast.connection_for_serial(
        loop, protocol_factory, instance
    )
    return transport, protocol
