"""Shared rig for the BLE tests: a central on the emulated radio and an event collector.

Everything is real (bleak BleakClient/BleakScanner classes, bumble controllers, SMP, ATT);
only the time constants are small. Tests wait on conditions, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from vbluez_rig import virtual_bluez

from drivers.ble import (
    BleCentral,
    CentralSettings,
    DeviceSpec,
    MeasurementEvent,
    RecordCursorStore,
    resolve_backend,
)
from drivers.ble.sim.peripheral import EmulatedDevice
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.vbluez import VirtualBlueZ

FAST = CentralSettings(
    idle_disconnect_s=0.3,
    backoff_scale=0.01,
    connect_timeout_s=2.0,
    operation_timeout_s=1.0,
    pairing_timeout_s=2.0,
    racp_idle_timeout_s=1.0,
    commit_timeout_s=2.0,
    advert_fresh_s=2.0,
    reconnect_pause_s=0.05,
    scanner_watchdog_s=5.0,
    scanner_restart_delay_s=0.05,
)


@dataclass
class Collector:
    """The pipeline stand-in: keeps every event and acknowledges it (when ``ack``)."""

    ack: bool = True
    events: list[MeasurementEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: The virtual BlueZ behind the ``bluez`` backend (``None`` on ``sim``).
    bluez: VirtualBlueZ | None = None

    async def consume(self, queue: asyncio.Queue[MeasurementEvent]) -> None:
        while True:
            event = await queue.get()
            self.events.append(event)
            if self.ack:
                event.acknowledge()
            async with self.changed:
                self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(predicate)

    def of(self, characteristic: int, device: str | None = None) -> list[MeasurementEvent]:
        return [
            e
            for e in self.events
            if e.characteristic == characteristic and (device is None or e.device == device)
        ]


@contextlib.asynccontextmanager
async def running(
    radio: SimRadio,
    devices: Sequence[tuple[str, EmulatedDevice]],
    *,
    settings: CentralSettings = FAST,
    cursors: RecordCursorStore | None = None,
    collector: Collector | None = None,
    bond: frozenset[str] = frozenset(),
    start_devices: bool = True,
    queue_size: int = 10_000,
    backend: str = "sim",
    monkeypatch: pytest.MonkeyPatch | None = None,
    before_central: Callable[[VirtualBlueZ], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[BleCentral, Collector]]:
    """Devices started, a central running over them, and a collector consuming its events.

    ``backend="bluez"``: bleak's own BlueZ backend over the virtual BlueZ (needs
    ``monkeypatch`` to point ``DBUS_SYSTEM_BUS_ADDRESS`` at its private bus);
    ``before_central`` gets the virtual BlueZ once the devices run, before the central
    starts (a fault or a state from before the hub started).
    """
    async with contextlib.AsyncExitStack() as stack:
        if backend == "bluez":
            assert monkeypatch is not None, "the bluez backend needs monkeypatch"
            bluez = await stack.enter_async_context(virtual_bluez(radio, monkeypatch))
            ble_backend = resolve_backend("bluez")
        else:
            ble_backend = resolve_backend("sim", sim_radio=radio)
        queue: asyncio.Queue[MeasurementEvent] = asyncio.Queue(queue_size)
        collector = collector or Collector()
        if backend == "bluez":
            collector.bluez = bluez
        specs = [DeviceSpec(d.address, kind, bond=d.address in bond) for kind, d in devices]
        central = BleCentral(ble_backend, queue, specs, cursors=cursors, settings=settings)
        if start_devices:
            for _, device in devices:
                await device.start()
        if backend == "bluez" and before_central is not None:
            await before_central(bluez)
        consumer = asyncio.create_task(collector.consume(queue), name="test-consumer")
        try:
            async with central:
                yield central, collector
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            for _, device in devices:
                await device.stop()
