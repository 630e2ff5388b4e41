"""Sensor drivers with injected buses (units in names, integer values scaled per §4).

- :class:`SHT4x` (Sensirion SHT40/41/45 datasheet: command 0xFD "measure, high precision",
  CRC-8 poly 0x31 init 0xFF, T = -45 + 175 * S_T / 65535 °C, RH = -6 + 125 * S_RH / 65535 %).
- :class:`MotionPIR` counts rising edges of a PIR output polled every ``poll_ms``.
- :class:`DoorReed` reads a reed switch to ground with a pull-up: high means open.
- :class:`PressurePad` reads a pad's divider on an ADC (``read_u16``: 0..65535).
"""

import asyncio

from micropython import const

KIND_TEMPERATURE = const(1)
KIND_HUMIDITY = const(2)
KIND_MOTION = const(3)
KIND_DOOR = const(4)
KIND_PAD = const(5)
KIND_OCCUPANCY = const(6)

_SHT4X_ADDR = const(0x44)
_SHT4X_MEASURE_HIGH = const(0xFD)
_SHT4X_SERIAL = const(0x89)
_SHT4X_MEASURE_MS = const(10)


def crc8_sht(data: bytes) -> int:
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT4x:
    def __init__(self, i2c: object, addr: int = _SHT4X_ADDR) -> None:
        self._i2c = i2c
        self._addr = addr

    def _words(self, raw: bytes) -> tuple:
        if len(raw) != 6 or crc8_sht(raw[0:2]) != raw[2] or crc8_sht(raw[3:5]) != raw[5]:
            raise OSError("SHT4x CRC")
        return (raw[0] << 8) | raw[1], (raw[3] << 8) | raw[4]

    def serial_number(self) -> int:
        """Boot self-test: read the serial number (checks bus, address and CRC)."""
        self._i2c.writeto(self._addr, bytes([_SHT4X_SERIAL]))  # type: ignore[attr-defined]
        a, b = self._words(self._i2c.readfrom(self._addr, 6))  # type: ignore[attr-defined]
        return (a << 16) | b

    async def measure(self) -> tuple:
        """Return ``(temperature_cC, humidity_cP)``: centi-degrees Celsius, centi-percent."""
        self._i2c.writeto(self._addr, bytes([_SHT4X_MEASURE_HIGH]))  # type: ignore[attr-defined]
        await asyncio.sleep_ms(_SHT4X_MEASURE_MS)
        s_t, s_rh = self._words(self._i2c.readfrom(self._addr, 6))  # type: ignore[attr-defined]
        temperature_cC = (17500 * s_t + 32767) // 65535 - 4500
        humidity_cP = (12500 * s_rh + 32767) // 65535 - 600
        humidity_cP = min(10000, max(0, humidity_cP))
        return temperature_cC, humidity_cP


class MotionPIR:
    def __init__(self, pin: object) -> None:
        self._pin = pin
        self._last = 0
        self.events = 0

    def poll(self) -> None:
        v = self._pin.value()  # type: ignore[attr-defined]
        if v and not self._last:
            self.events += 1
        self._last = v

    def take_events(self) -> int:
        n = self.events
        self.events = 0
        return n


class DoorReed:
    def __init__(self, pin: object) -> None:
        self._pin = pin

    def door_open(self) -> int:
        return 1 if self._pin.value() else 0  # type: ignore[attr-defined]


class PressurePad:
    def __init__(self, adc: object) -> None:
        self._adc = adc

    def load_cP(self) -> int:
        """Load as centi-percent of full scale (0..10000)."""
        return (self._adc.read_u16() * 10000 + 32767) // 65535  # type: ignore[attr-defined]
