"""Board folder: ESP32 (DevKitC with a CP210x/CH340 USB-UART bridge, or S3 native USB).

Wiring: SHT4x on I2C0 (GPIO21 SDA, GPIO22 SCL, 400 kHz); PIR output on GPIO27; door reed
switch from GPIO26 to GND (internal pull-up); pressure pad divider on ADC1 GPIO34 with 11 dB
attenuation (full 0-3.3 V range). The link is UART0/USB (stdin/stdout), Ctrl-C disabled.
"""

import machine

from sensorfw import mcu
from sensorfw.link import LinkConfig
# Settings and functions every real board shares; sensorfw.app reads them from this module.
from sensorfw.mcu import DEFAULT_INTERVALS_MS, DEFAULT_THRESHOLDS, LOG_PATH, PIR_POLL_MS
from sensorfw.mcu import board_id, reset

BOARD_NAME = "esp32"
RING_CAPACITY = 512  # 20 KiB of RAM; the same slots in /readings.log

_WIRING = mcu.Wiring(sda=21, scl=22, pir=27, door=26)
i2c = _WIRING.i2c
pir_pin = _WIRING.pir_pin
door_pin = _WIRING.door_pin


def pad_adc() -> machine.ADC:
    return machine.ADC(machine.Pin(34), atten=machine.ADC.ATTN_11DB)


def link() -> tuple:
    return mcu.stdio_link(LinkConfig(hello_interval_ms=1000, ack_timeout_ms=1000, read_size=1))


def watchdog(timeout_ms: int) -> machine.WDT:
    return machine.WDT(timeout=timeout_ms)
