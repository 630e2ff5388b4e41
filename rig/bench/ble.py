"""`narhub bench ble`: the BLE central on the emulated radio (real bleak classes, bumble).

* ``advert_to_first_measurement_ms``: a thermometer holding one stored reading powers on and
  advertises; time until the central hands on the decoded measurement (scan, connect,
  discovery, DIS + Battery reads, CCCD write, indication). Median and max of 5 runs.
* ``notifications_per_s``: a heart-rate strap notifying as fast as the link allows; decoded
  events per second one central delivers.
* with ``soak_s``: ten devices of every kind for that long (streams at 1 Hz, periodic
  measurements, a glucose meter adding records), reporting asyncio tasks and RSS at start
  and end (flat is the goal), events per kind and session failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from drivers.ble import (
    BleCentral,
    CentralSettings,
    DeviceSpec,
    MeasurementEvent,
    MemoryRecordCursorStore,
    resolve_backend,
)
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.heart_rate import EmulatedHeartRateStrap
from drivers.ble.sim.peripheral import EmulatedDevice
from drivers.ble.sim.pulse_oximeter import EmulatedPulseOximeter
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.scale import EmulatedScale
from drivers.ble.sim.thermometer import EmulatedThermometer
from protocols.gatt import HEART_RATE_MEASUREMENT, TEMPERATURE_MEASUREMENT

_RUNS = 5


def _rss_kib() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123 - tiny
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _specs(devices: dict[str, EmulatedDevice]) -> list[DeviceSpec]:
    return [DeviceSpec(d.address, kind) for kind, d in devices.items()]


@contextlib.asynccontextmanager
async def _consumer(
    queue: asyncio.Queue[MeasurementEvent], counts: Counter[str]
) -> AsyncIterator[None]:
    """A pipeline stand-in: count and acknowledge every event."""

    async def consume() -> None:
        while True:
            event = await queue.get()
            counts[f"{event.kind}/0x{event.characteristic:04X}"] += 1
            event.acknowledge()

    task = asyncio.create_task(consume(), name="bench-consumer")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _first_measurement_ms() -> float:
    radio = SimRadio()
    thermometer = EmulatedThermometer(radio, "C0:BE:00:00:00:01", seed=1)
    queue: asyncio.Queue[MeasurementEvent] = asyncio.Queue(1000)
    settings = CentralSettings(idle_disconnect_s=5.0)
    central = BleCentral(
        resolve_backend("sim", sim_radio=radio),
        queue,
        [DeviceSpec(thermometer.address, "thermometer")],
        settings=settings,
    )
    async with central:
        await central.scanner.running.wait()
        await thermometer.measure()
        started = time.perf_counter()
        await thermometer.start()
        while (await queue.get()).characteristic != TEMPERATURE_MEASUREMENT:
            pass
        elapsed = time.perf_counter() - started
    await thermometer.stop()
    return elapsed * 1000


async def _notifications_per_s(duration_s: float) -> dict[str, float]:
    radio = SimRadio()
    strap = EmulatedHeartRateStrap(radio, "C0:BE:00:00:00:02", seed=2, interval_s=0.0)
    queue: asyncio.Queue[MeasurementEvent] = asyncio.Queue(10_000)
    central = BleCentral(
        resolve_backend("sim", sim_radio=radio),
        queue,
        [DeviceSpec(strap.address, "heart_rate")],
        settings=CentralSettings(idle_disconnect_s=30.0),
    )
    async with strap, central:
        while (await queue.get()).characteristic != HEART_RATE_MEASUREMENT:
            pass
        count = 0
        started = time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline:
            event = await queue.get()
            if event.measurement is not None and event.characteristic == HEART_RATE_MEASUREMENT:
                count += 1
        elapsed = time.perf_counter() - started
    return {"notifications_per_s": round(count / elapsed, 1), "notifications": count}


def _soak_devices(radio: SimRadio) -> dict[str, EmulatedDevice]:
    devices: dict[str, EmulatedDevice] = {}
    for i in range(2):
        devices[f"thermometer-{i}"] = EmulatedThermometer(radio, f"C0:5A:00:00:00:0{i}", seed=i)
        devices[f"blood_pressure-{i}"] = EmulatedBloodPressureCuff(
            radio, f"C0:5A:00:00:01:0{i}", seed=10 + i, sleep_s=5.0, linger_s=0.5
        )
        devices[f"scale-{i}"] = EmulatedScale(radio, f"C0:5A:00:00:02:0{i}", seed=20 + i)
        devices[f"heart_rate-{i}"] = EmulatedHeartRateStrap(
            radio, f"C0:5A:00:00:03:0{i}", seed=30 + i, interval_s=1.0
        )
    devices["pulse_oximeter-0"] = EmulatedPulseOximeter(
        radio, "C0:5A:00:00:04:00", seed=40, interval_s=1.0, stored_records=20
    )
    devices["glucose-0"] = EmulatedGlucoseMeter(
        radio, "C0:5A:00:00:05:00", seed=50, stored_records=300
    )
    return devices


async def _drive(devices: dict[str, EmulatedDevice], period_s: float) -> None:
    """Periodic measurements on the devices that take them."""
    tick = 0
    while True:
        await asyncio.sleep(period_s)
        tick += 1
        for name, device in devices.items():
            if isinstance(device, (EmulatedThermometer, EmulatedScale, EmulatedBloodPressureCuff)):
                if (tick + hash(name) % 3) % 3 == 0:
                    await device.measure()
            elif isinstance(device, EmulatedGlucoseMeter):
                device.add_record()
            elif isinstance(device, EmulatedPulseOximeter) and tick % 5 == 0:
                await device.spot_check()


async def _soak(soak_s: float) -> dict[str, Any]:
    radio = SimRadio()
    devices = _soak_devices(radio)
    queue: asyncio.Queue[MeasurementEvent] = asyncio.Queue(10_000)
    counts: Counter[str] = Counter()
    cursors = MemoryRecordCursorStore()
    central = BleCentral(
        resolve_backend("sim", sim_radio=radio),
        queue,
        [DeviceSpec(d.address, name.split("-")[0]) for name, d in devices.items()],
        cursors=cursors,
        settings=CentralSettings(max_connections=10, fair_share_s=30.0),
    )
    for device in devices.values():
        await device.start()
    try:
        async with _consumer(queue, counts), central:
            driver = asyncio.create_task(_drive(devices, 2.0), name="bench-driver")
            await asyncio.sleep(min(10.0, soak_s / 4))  # warm-up: sessions up, caches filled
            gc.collect()
            start = {"tasks": len(asyncio.all_tasks()), "rss_kib": _rss_kib()}
            events_at_start = sum(counts.values())
            await asyncio.sleep(soak_s)
            gc.collect()
            end = {"tasks": len(asyncio.all_tasks()), "rss_kib": _rss_kib()}
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
    finally:
        for device in devices.values():
            await device.stop()
    failures: Counter[str] = Counter()
    for status in central.status.values():
        failures.update(status.failures)
    return {
        "devices": len(devices),
        "seconds": soak_s,
        "start": start,
        "end": end,
        "events": sum(counts.values()) - events_at_start,
        "events_per_kind": dict(sorted(counts.items())),
        "sessions": sum(s.sessions for s in central.status.values()),
        "failures": dict(failures),
        "malformed": central.malformed,
        "scanner_restarts": central.scanner.restarts,
        "record_cursors": len(cursors.cursors),
    }


async def _run(duration_s: float, soak_s: float | None) -> dict[str, object]:
    latencies = [await _first_measurement_ms() for _ in range(_RUNS)]
    result: dict[str, object] = {
        "advert_to_first_measurement_ms": {
            "median": round(statistics.median(latencies), 1),
            "max": round(max(latencies), 1),
            "runs": _RUNS,
        },
        **(await _notifications_per_s(duration_s)),
        "rss_kib": _rss_kib(),
    }
    if soak_s is not None:
        result["soak"] = await _soak(soak_s)
    return result


def run(*, duration_s: float = 1.0, soak_s: float | None = None) -> dict[str, object]:
    """Run the BLE benchmarks on the emulated radio (``soak_s``: ten-device soak)."""
    # bumble reports link teardown races at WARNING; they are the emulation's, not ours.
    logging.getLogger("bumble").setLevel(logging.ERROR)
    return asyncio.run(_run(duration_s, soak_s))
