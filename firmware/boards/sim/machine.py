"""A fake ``machine`` module for the MicroPython unix port (the virtual rig).

Sensors follow a scenario file (JSON, path in ``NARHUB_SIM_SCENARIO``); each read takes the
next value of that sensor's list, cycling::

    {"board_id": "sim-0001",
     "temperature_cC": [2150, 2151], "humidity_cP": [4500],
     "pir": [0, 0, 1, 1, 0], "door": [0, 1], "pad_u16": [1000, 40000],
     "sht4x_present": true}

The SHT4x is emulated behind :class:`I2C` at address 0x44 (commands 0xFD and 0x89, CRC-8
as in the datasheet). ``reset()`` exits with status 75, which the rig treats as a board reset.
"""

import json
import os
import sys

RESET_EXIT_STATUS = 75

_path = os.getenv("NARHUB_SIM_SCENARIO")
if _path:
    with open(_path) as _f:
        SCENARIO = json.load(_f)
else:
    SCENARIO = {}
_counters = {}


def _next(name, default):
    seq = SCENARIO.get(name) or [default]
    i = _counters.get(name, 0)
    _counters[name] = i + 1
    return seq[i % len(seq)]


def _crc8(data):
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _words(a, b):
    out = bytearray()
    for w in (a, b):
        pair = bytes([(w >> 8) & 0xFF, w & 0xFF])
        out.extend(pair)
        out.append(_crc8(pair))
    return bytes(out)


class I2C:
    def __init__(self, id=0, **kwargs):
        self._pending = None

    def writeto(self, addr, buf):
        if addr != 0x44 or not SCENARIO.get("sht4x_present", True):
            raise OSError(19)  # ENODEV, as a real NACK
        self._pending = buf[0]
        return 1

    def readfrom(self, addr, n):
        if addr != 0x44 or self._pending is None:
            raise OSError(19)
        cmd = self._pending
        self._pending = None
        if cmd == 0x89:
            return _words(0x1234, 0x5678)
        t_cC = _next("temperature_cC", 2150)
        rh_cP = _next("humidity_cP", 4500)
        s_t = ((t_cC + 4500) * 65535 + 8750) // 17500
        s_rh = ((rh_cP + 600) * 65535 + 6250) // 12500
        return _words(s_t, s_rh)


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1):
        self._id = id

    def value(self, v=None):
        return _next(self._id, 0)


class ADC:
    def __init__(self, id):
        self._id = id

    def read_u16(self):
        return _next(self._id, 0)


class WDT:
    feeds = 0

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        WDT.feeds += 1


def unique_id():
    return SCENARIO.get("board_id", "sim").encode()


def reset():
    sys.exit(RESET_EXIT_STATUS)
