"""Board folder: ESP32 (DevKitC with a CP210x/CH340 USB-UART bridge, or S3 native USB).

Wiring: SHT4x on I2C0 (GPIO21 SDA, GPIO22 SCL, 400 kHz); PIR output on GPIO27; door reed
switch from GPIO26 to GND (internal pull-up); pressure pad divider on ADC1 GPIO34 with 11 dB
attenuation (full 0-3.3 V range). The link is UART0/USB (stdin/stdout), Ctrl-C disabled.
"""

import asyncio
import sys

import machine
import micropython

from sensorfw.link import LinkConfig

BOARD_NAME = "esp32"
RING_CAPACITY = 512  # 20 KiB of RAM; the same slots in /readings.log
LOG_PATH = "/readings.log"
PIR_POLL_MS = 50
DEFAULT_INTERVALS_MS = {1: 60_000, 3: 60_000, 4: 10_000, 5: 10_000}
DEFAULT_THRESHOLDS = {6: 3000}


def board_id() -> str:
    return machine.unique_id().hex()


def i2c() -> machine.I2C:
    return machine.I2C(0, sda=machine.Pin(21), scl=machine.Pin(22), freq=400_000)


def pir_pin() -> machine.Pin:
    return machine.Pin(27, machine.Pin.IN, machine.Pin.PULL_DOWN)


def door_pin() -> machine.Pin:
    return machine.Pin(26, machine.Pin.IN, machine.Pin.PULL_UP)


def pad_adc() -> machine.ADC:
    return machine.ADC(machine.Pin(34), atten=machine.ADC.ATTN_11DB)


def watchdog(timeout_ms: int) -> machine.WDT:
    return machine.WDT(timeout=timeout_ms)


def link() -> tuple:
    micropython.kbd_intr(-1)
    cfg = LinkConfig(hello_interval_ms=1000, ack_timeout_ms=1000, read_size=1)
    return asyncio.StreamReader(sys.stdin.buffer), asyncio.StreamWriter(sys.stdout.buffer, {}), cfg


def reset() -> None:
    machine.reset()
