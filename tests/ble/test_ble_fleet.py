"""Ten devices at once on one central, and the central's building blocks."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from ble_rig import FAST, running

from drivers.ble import Failure, MemoryRecordCursorStore, SessionError
from drivers.ble._bleak import BleakError, BleakGATTProtocolError
from drivers.ble.record_cursors import RecordTracker
from drivers.ble.retry import RetryPolicy, classify
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.heart_rate import EmulatedHeartRateStrap
from drivers.ble.sim.peripheral import EmulatedDevice
from drivers.ble.sim.pulse_oximeter import EmulatedPulseOximeter
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.scale import EmulatedScale
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.ble.slots import ConnectionSlots
from gateway.record_cursor_store import SqliteRecordCursorStore
from protocols.gatt import (
    BLOOD_PRESSURE_MEASUREMENT,
    GLUCOSE_MEASUREMENT,
    HEART_RATE_MEASUREMENT,
    PLX_CONTINUOUS_MEASUREMENT,
    TEMPERATURE_MEASUREMENT,
    WEIGHT_MEASUREMENT,
)


async def test_ten_devices_at_once() -> None:
    radio = SimRadio()
    devices: list[tuple[str, EmulatedDevice]] = []
    for i in range(2):
        devices += [
            ("thermometer", EmulatedThermometer(radio, f"C0:00:00:00:04:0{i}", seed=i)),
            ("scale", EmulatedScale(radio, f"C0:00:00:00:04:1{i}", seed=10 + i)),
            (
                "blood_pressure",
                EmulatedBloodPressureCuff(
                    radio, f"C0:00:00:00:04:2{i}", seed=20 + i, sleep_s=0.3, linger_s=0.05
                ),
            ),
            (
                "heart_rate",
                EmulatedHeartRateStrap(radio, f"C0:00:00:00:04:3{i}", seed=30 + i, interval_s=0.05),
            ),
        ]
    devices += [
        (
            "pulse_oximeter",
            EmulatedPulseOximeter(radio, "C0:00:00:00:04:40", seed=40, interval_s=0.05),
        ),
        ("glucose", EmulatedGlucoseMeter(radio, "C0:00:00:00:04:50", seed=50, stored_records=100)),
    ]
    settings = dataclasses.replace(FAST, max_connections=10)
    async with running(radio, devices, settings=settings) as (central, got):
        for _kind, device in devices:
            if isinstance(device, (EmulatedThermometer, EmulatedScale, EmulatedBloodPressureCuff)):
                await device.measure()
        wanted = {
            TEMPERATURE_MEASUREMENT: 2,
            WEIGHT_MEASUREMENT: 2,
            BLOOD_PRESSURE_MEASUREMENT: 2,
            GLUCOSE_MEASUREMENT: 100,
        }
        await got.wait_for(lambda: all(len(got.of(c)) >= n for c, n in wanted.items()), 30)
        streams = {d.address for k, d in devices if k in ("heart_rate", "pulse_oximeter")}
        await got.wait_for(
            lambda: (
                {
                    e.device
                    for e in got.of(HEART_RATE_MEASUREMENT) + got.of(PLX_CONTINUOUS_MEASUREMENT)
                }
                == streams
            )
        )
        assert central.slots.max_in_use >= 5  # they really were connected together
    assert len({e.device for e in got.events}) == 10
    assert central.malformed == 0
    assert len(got.of(GLUCOSE_MEASUREMENT)) == 100


async def test_slots_are_granted_first_come_first_served() -> None:
    slots = ConnectionSlots(1)
    order: list[int] = []
    await slots.acquire()

    async def take(i: int) -> None:
        async with slots.slot():
            order.append(i)

    tasks = [asyncio.create_task(take(i)) for i in range(4)]
    await asyncio.sleep(0)  # let them queue (ordering, not synchronisation)
    assert slots.waiting == 4
    slots.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert slots.max_in_use == 1
    assert slots.in_use == 0


def test_failures_are_classified_and_backoff_grows_per_class() -> None:
    assert classify(SessionError(Failure.LINK_LOST, "x")) is Failure.LINK_LOST
    assert classify(TimeoutError()) is Failure.STALLED
    assert classify(BleakGATTProtocolError(0x0F)) is Failure.AUTHENTICATION
    assert classify(BleakGATTProtocolError(0xFE)) is Failure.PROTOCOL
    assert classify(BleakError("gone")) is Failure.UNREACHABLE
    assert classify(KeyError("bug")) is None  # unknown: not swallowed
    policy = RetryPolicy()
    link = [policy.delay_s(Failure.LINK_LOST) for _ in range(3)]
    assert link[0] <= 0.05
    assert link[2] >= 0.1
    assert policy.delay_s(Failure.AUTHENTICATION) >= 5.0
    policy.reset()
    assert policy.delay_s(Failure.LINK_LOST) <= 0.05


async def test_tracker_commits_only_the_acknowledged_prefix(tmp_path: Path) -> None:
    store = SqliteRecordCursorStore(tmp_path / "c.sqlite3")
    try:
        tracker = RecordTracker("dev", store)
        acks = [tracker.new_ack(seq) for seq in range(5)]
        for ack in acks[:3]:
            ack.set_result(None)
        acks[4].set_result(None)
        assert not await tracker.settle(0.01)
        assert await store.load("dev") == 2  # 3 is missing, so 4 must wait
        acks[3].set_result(None)
        assert await tracker.settle(0.01)
        reopened = SqliteRecordCursorStore(tmp_path / "c.sqlite3")  # persisted across restarts
        assert await reopened.load("dev") == 4
        reopened.close()
    finally:
        store.close()


@pytest.mark.parametrize("failed", ["cancel", "error"])
async def test_an_uncommitted_record_is_asked_for_again(failed: str) -> None:
    store = MemoryRecordCursorStore()
    tracker = RecordTracker("dev", store)
    first, second = tracker.new_ack(7), tracker.new_ack(8)
    first.set_result(None)
    if failed == "cancel":
        second.cancel()
    else:
        second.set_exception(OSError("disk full"))
    assert await tracker.settle(0.01)
    assert store.cursors == {"dev": 7}
