"""Board folder: Raspberry Pi Pico / RP2040.

Wiring: SHT4x on I2C0 (GP4 SDA, GP5 SCL, 400 kHz); PIR output on GP15; door reed switch
from GP14 to GND (internal pull-up); pressure pad divider on ADC0 (GP26). The link is the
USB CDC port (stdin/stdout) with Ctrl-C disabled so binary frames do not interrupt.
"""

import machine

from sensorfw import mcu
from sensorfw.link import LinkConfig
# Settings and functions every real board shares; sensorfw.app reads them from this module.
from sensorfw.mcu import DEFAULT_INTERVALS_MS, DEFAULT_THRESHOLDS, LOG_PATH, PIR_POLL_MS
from sensorfw.mcu import board_id, reset

BOARD_NAME = "rp2040"
RING_CAPACITY = 256  # 256 x 40 B = 10 KiB of RAM; the same slots in /readings.log

_WIRING = mcu.Wiring(sda=4, scl=5, pir=15, door=14)
i2c = _WIRING.i2c
pir_pin = _WIRING.pir_pin
door_pin = _WIRING.door_pin


def pad_adc() -> machine.ADC:
    return machine.ADC(26)


def link() -> tuple:
    return mcu.stdio_link(LinkConfig(hello_interval_ms=1000, ack_timeout_ms=1000, read_size=1))


def watchdog(timeout_ms: int) -> machine.WDT:
    return machine.WDT(timeout=min(timeout_ms, 8388))
