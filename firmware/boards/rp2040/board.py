"""Board folder: Raspberry Pi Pico / RP2040.

Wiring: SHT4x on I2C0 (GP4 SDA, GP5 SCL, 400 kHz); PIR output on GP15; door reed switch
from GP14 to GND (internal pull-up); pressure pad divider on ADC0 (GP26). The link is the
USB CDC port (stdin/stdout) with Ctrl-C disabled so binary frames do not interrupt.
"""

import asyncio
import sys

import machine
import micropython

from sensorfw.link import LinkConfig

BOARD_NAME = "rp2040"
RING_CAPACITY = 256  # 256 x 40 B = 10 KiB of RAM; the same slots in /readings.log
LOG_PATH = "/readings.log"
PIR_POLL_MS = 50
DEFAULT_INTERVALS_MS = {1: 60_000, 3: 60_000, 4: 10_000, 5: 10_000}
DEFAULT_THRESHOLDS = {6: 3000}


def board_id() -> str:
    return machine.unique_id().hex()


def i2c() -> machine.I2C:
    return machine.I2C(0, sda=machine.Pin(4), scl=machine.Pin(5), freq=400_000)


def pir_pin() -> machine.Pin:
    return machine.Pin(15, machine.Pin.IN, machine.Pin.PULL_DOWN)


def door_pin() -> machine.Pin:
    return machine.Pin(14, machine.Pin.IN, machine.Pin.PULL_UP)


def pad_adc() -> machine.ADC:
    return machine.ADC(26)


def watchdog(timeout_ms: int) -> machine.WDT:
    return machine.WDT(timeout=min(timeout_ms, 8388))


def link() -> tuple:
    micropython.kbd_intr(-1)
    cfg = LinkConfig(hello_interval_ms=1000, ack_timeout_ms=1000, read_size=1)
    return asyncio.StreamReader(sys.stdin.buffer), asyncio.StreamWriter(sys.stdout.buffer, {}), cfg


def reset() -> None:
    machine.reset()
