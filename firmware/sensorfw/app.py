"""The sensor-board application: one program for every board folder (sensor-link.md §6).

A board module (``board.py`` from ``boards/<name>/``) injects the hardware: buses, pins, the
link streams, the watchdog, reset, and its defaults. Tasks: one sampler per sensor, the link's
reader and writer, and the watchdog feeder, which feeds only while the samplers make progress.
"""

import asyncio
import os
import struct

from micropython import const

import sensorfw
from sensorfw import frame, proto, sensors
from sensorfw.clock import Clock
from sensorfw.link import Link, LinkConfig
from sensorfw.store import Store

SELFTEST_CODEC = const(1)
SELFTEST_FLASH = const(2)
SELFTEST_TEMPERATURE_HUMIDITY = const(4)
SELFTEST_PRESSURE_PAD = const(8)

_MIN_INTERVAL_MS = const(10)
_MAX_INTERVAL_MS = const(86_400_000)
_WDT_TIMEOUT_MS = const(8000)
_FEED_EVERY_MS = const(1000)

# Known answer for the codec self-test: READINGS boot 7, seq 0, one temperature reading
# (the "readings-one" vector of sensor-link-vectors.json).
_KAT_FRAME = b"\x02\xa5\x05\x02\x01\x07\x02\x02\x03\x05\x04\x81\x84\x01\x0b\x19\x03\xe8\x19\x08f~\xd5\x08\xf1"


class App:
    def __init__(self, board: object) -> None:
        self.board = board
        self.clock = Clock()
        self.store = Store(board.RING_CAPACITY, board.LOG_PATH)  # type: ignore[attr-defined]
        self.store.boot_id = (struct.unpack("<I", os.urandom(4))[0] & 0xFFFFFFFF) or 1
        self.intervals_ms = dict(board.DEFAULT_INTERVALS_MS)  # type: ignore[attr-defined]
        self.thresholds = dict(board.DEFAULT_THRESHOLDS)  # type: ignore[attr-defined]
        self.selftest = 0
        self.reboot_requested = False
        self.heartbeat_ms = 0
        self.sht = sensors.SHT4x(board.i2c())  # type: ignore[attr-defined]
        self.pir = sensors.MotionPIR(board.pir_pin())  # type: ignore[attr-defined]
        self.door = sensors.DoorReed(board.door_pin())  # type: ignore[attr-defined]
        self.pad = sensors.PressurePad(board.pad_adc())  # type: ignore[attr-defined]
        self.sensor_refs = [[k, 0] for k in (1, 2, 3, 4, 5, 6)]
        self.link: Link | None = None

    # --- boot ------------------------------------------------------------------------
    def self_test(self) -> int:
        failed = 0
        try:
            ok = frame.crc32(b"123456789") == 0xCBF43926
            rows = [[sensors.KIND_TEMPERATURE, 0, 1000, 2150]]
            ok = ok and frame.encode_frame(proto.encode_readings(7, 0, 0, rows)) == _KAT_FRAME + b"\x00"
            if not ok:
                failed |= SELFTEST_CODEC
        except Exception:  # noqa: BLE001 - any failure here is a failed self-test
            failed |= SELFTEST_CODEC
        try:
            self.store.open()
        except OSError:
            failed |= SELFTEST_FLASH
            self.store.flash_ok = False
        try:
            self.sht.serial_number()
        except OSError:
            failed |= SELFTEST_TEMPERATURE_HUMIDITY
        try:
            self.pad.load_cP()
        except OSError:
            failed |= SELFTEST_PRESSURE_PAD
        self.selftest = failed
        return failed

    def hello_payload(self) -> bytes:
        caps = proto.CAP_TIME | proto.CAP_CONFIG | proto.CAP_REBOOT
        if self.store.flash_ok:
            caps |= proto.CAP_FLASH_LOG
        return proto.encode_hello(
            self.board.board_id(),  # type: ignore[attr-defined]
            self.store.boot_id,
            sensorfw.VERSION,
            self.sensor_refs,
            caps,
            frame.MAX_FRAME_BYTES,
            self.selftest,
        )

    def config_payload(self) -> bytes:
        return proto.encode_config(self.intervals_ms, self.thresholds)

    def apply_config(self, intervals_ms: dict, thresholds: dict) -> int:
        """Validate all, then apply all; return 0 or an ERROR code."""
        for k in intervals_ms:
            if k not in self.intervals_ms:
                return proto.ERR_OUT_OF_RANGE
            if not _MIN_INTERVAL_MS <= intervals_ms[k] <= _MAX_INTERVAL_MS:
                return proto.ERR_OUT_OF_RANGE
        for k in thresholds:
            if k not in self.thresholds:
                return proto.ERR_OUT_OF_RANGE
        self.intervals_ms.update(intervals_ms)
        self.thresholds.update(thresholds)
        return 0

    # --- sampling ----------------------------------------------------------------------
    def _log(self, kind: int, value: int, mono_ms: int) -> None:
        self.store.append(kind, 0, mono_ms, value, self.clock.wall_ms(mono_ms))
        if self.link is not None:
            self.link.wake.set()

    async def _climate_task(self) -> None:
        while True:
            try:
                t_cC, rh_cP = await self.sht.measure()
                now = self.clock.mono_ms()
                self._log(sensors.KIND_TEMPERATURE, t_cC, now)
                self._log(sensors.KIND_HUMIDITY, rh_cP, now)
            except OSError:
                self.selftest |= SELFTEST_TEMPERATURE_HUMIDITY
            await asyncio.sleep_ms(self.intervals_ms[sensors.KIND_TEMPERATURE])

    async def _motion_task(self) -> None:
        poll_ms = self.board.PIR_POLL_MS  # type: ignore[attr-defined]
        due = self.clock.mono_ms() + self.intervals_ms[sensors.KIND_MOTION]
        while True:
            self.pir.poll()
            now = self.clock.mono_ms()
            self.heartbeat_ms = now
            if now >= due:
                self._log(sensors.KIND_MOTION, self.pir.take_events(), now)
                due = now + self.intervals_ms[sensors.KIND_MOTION]
            await asyncio.sleep_ms(poll_ms)

    async def _door_task(self) -> None:
        while True:
            try:
                self._log(sensors.KIND_DOOR, self.door.door_open(), self.clock.mono_ms())
            except OSError:
                pass
            await asyncio.sleep_ms(self.intervals_ms[sensors.KIND_DOOR])

    async def _pad_task(self) -> None:
        while True:
            try:
                load = self.pad.load_cP()
            except OSError:
                self.selftest |= SELFTEST_PRESSURE_PAD
            else:
                now = self.clock.mono_ms()
                self._log(sensors.KIND_PAD, load, now)
                occupied = 1 if load >= self.thresholds[sensors.KIND_OCCUPANCY] else 0
                self._log(sensors.KIND_OCCUPANCY, occupied, now)
            await asyncio.sleep_ms(self.intervals_ms[sensors.KIND_PAD])

    async def _watchdog_task(self) -> None:
        wdt = self.board.watchdog(_WDT_TIMEOUT_MS)  # type: ignore[attr-defined]
        while True:
            if self.clock.mono_ms() - self.heartbeat_ms < _WDT_TIMEOUT_MS // 2:
                wdt.feed()
            await asyncio.sleep_ms(_FEED_EVERY_MS)

    # --- main --------------------------------------------------------------------------
    async def main(self) -> None:
        self.self_test()
        reader, writer, link_cfg = self.board.link()  # type: ignore[attr-defined]
        link = self.link = Link(self, reader, writer, link_cfg)
        tasks = [
            asyncio.create_task(self._watchdog_task()),
            asyncio.create_task(self._climate_task()),
            asyncio.create_task(self._motion_task()),
            asyncio.create_task(self._door_task()),
            asyncio.create_task(self._pad_task()),
            asyncio.create_task(link.rx_task()),
        ]
        await link.tx_task()  # returns when a REBOOT was requested
        for t in tasks:
            t.cancel()
        self.store.close()
        self.board.reset()  # type: ignore[attr-defined]


def run(board: object) -> None:
    asyncio.run(App(board).main())
