"""What every real board folder (RP2040, ESP32) builds the same way; a board.py keeps only
its wiring, its ADC, its watchdog limit and its ring size. The sim board folder has its own.

Sensors (their kinds: docs/protocols/sensor-link.md §4): the SHT4x on I2C bus 0 at 400 kHz,
the PIR output as an input with pull-down, the door reed switch to GND as an input with
pull-up. The link is stdin/stdout (USB CDC or the UART bridge) with Ctrl-C disabled, so that
a 0x03 byte in a binary frame does not interrupt the program.
"""

import asyncio
import sys

import machine
import micropython

LOG_PATH = "/readings.log"
PIR_POLL_MS = 50
DEFAULT_INTERVALS_MS = {1: 60_000, 3: 60_000, 4: 10_000, 5: 10_000}
DEFAULT_THRESHOLDS = {6: 3000}


class Wiring:
    """The pins a board connects the sensors to (GPIO numbers)."""

    def __init__(self, *, sda: int, scl: int, pir: int, door: int) -> None:
        self.sda = sda
        self.scl = scl
        self.pir = pir
        self.door = door

    def i2c(self) -> machine.I2C:
        return machine.I2C(0, sda=machine.Pin(self.sda), scl=machine.Pin(self.scl), freq=400_000)

    def pir_pin(self) -> machine.Pin:
        return machine.Pin(self.pir, machine.Pin.IN, machine.Pin.PULL_DOWN)

    def door_pin(self) -> machine.Pin:
        return machine.Pin(self.door, machine.Pin.IN, machine.Pin.PULL_UP)


def board_id() -> str:
    return machine.unique_id().hex()


def stdio_link(cfg: object) -> tuple:
    """The (reader, writer, cfg) a board's ``link()`` returns, over stdin/stdout."""
    micropython.kbd_intr(-1)
    return asyncio.StreamReader(sys.stdin.buffer), asyncio.StreamWriter(sys.stdout.buffer, {}), cfg


def reset() -> None:
    machine.reset()
