"""Board folder: the simulated board on the MicroPython unix port (the virtual rig).

The link is the process's stdin/stdout, which the rig connects to a pty master; the flash
log is a file named by ``NARHUB_SIM_LOG``. Sampling is fast so tests finish quickly.
"""

import asyncio
import os
import sys

import machine

from sensorfw.link import LinkConfig

BOARD_NAME = "sim"
RING_CAPACITY = 4096
LOG_PATH = os.getenv("NARHUB_SIM_LOG")
PIR_POLL_MS = 10
DEFAULT_INTERVALS_MS = {1: int(os.getenv("NARHUB_SIM_INTERVAL_MS") or "50"), 3: 50, 4: 50, 5: 50}
DEFAULT_THRESHOLDS = {6: 3000}


def board_id():
    return machine.unique_id().decode()


def i2c():
    return machine.I2C(0)


def pir_pin():
    return machine.Pin("pir", machine.Pin.IN)


def door_pin():
    return machine.Pin("door", machine.Pin.IN, machine.Pin.PULL_UP)


def pad_adc():
    return machine.ADC("pad_u16")


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


def link():
    cfg = LinkConfig(hello_interval_ms=200, ack_timeout_ms=300, max_retries=5, read_size=512)
    reader = asyncio.StreamReader(sys.stdin.buffer)
    writer = asyncio.StreamWriter(sys.stdout.buffer, {})
    return reader, writer, cfg


def reset():
    machine.reset()
