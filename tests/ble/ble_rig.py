"""Shared rig for the BLE tests: a central on the emulated radio and an event collector.

Everything is real (bleak BleakClient/BleakScanner classes, bumble controllers, SMP, ATT);
only the time constants are small. Tests wait on conditions, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

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

    async def wait_for_count(
        self, characteristic: int, count: int, timeout_s: float = 15.0
    ) -> list[MeasurementEvent]:
        """Wait until exactly ``count`` events of ``characteristic`` came; returns them."""
        await self.wait_for(lambda: len(self.of(characteristic)) == count, timeout_s)
        return self.of(characteristic)

    def of(self, characteristic: int, device: str | None = None) -> list[MeasurementEvent]:
        return [
            e
            for e in self.events
            if e.characteristic == characteristic and (device is None or e.device == device)
        ]


class RunOptions(TypedDict, total=False):
    """What :func:`running` takes besides the radio, the devices and the backend."""

    #: The central's settings (:data:`FAST` when not given).
    settings: CentralSettings
    cursors: RecordCursorStore
    #: Who consumes the central's events (a new :class:`Collector` when not given).
    collector: Collector
    #: The addresses the central bonds with.
    bond: frozenset[str]
    #: ``False``: the test started the devices itself (readings stored while nobody listened).
    start_devices: bool
    queue_size: int
    #: With ``bluez``: called with the virtual BlueZ once the devices run, before the central
    #: starts (a fault or a state from before the hub started).
    before_central: Callable[[VirtualBlueZ], Awaitable[None]]


@contextlib.asynccontextmanager
async def running(
    radio: SimRadio,
    devices: Sequence[tuple[str, EmulatedDevice]],
    *,
    backend: str = "sim",
    monkeypatch: pytest.MonkeyPatch | None = None,
    **options: Unpack[RunOptions],
) -> AsyncIterator[tuple[BleCentral, Collector]]:
    """Devices started, a central running over them, and a collector consuming its events.

    ``backend="bluez"``: bleak's own BlueZ backend over the virtual BlueZ (needs
    ``monkeypatch`` to point ``DBUS_SYSTEM_BUS_ADDRESS`` at its private bus).
    """
    async with contextlib.AsyncExitStack() as stack:
        if backend == "bluez":
            assert monkeypatch is not None, "the bluez backend needs monkeypatch"
            bluez = await stack.enter_async_context(virtual_bluez(radio, monkeypatch))
            ble_backend = resolve_backend("bluez")
        else:
            ble_backend = resolve_backend("sim", sim_radio=radio)
        queue: asyncio.Queue[MeasurementEvent] = asyncio.Queue(options.get("queue_size", 10_000))
        collector = options.get("collector") or Collector()
        if backend == "bluez":
            collector.bluez = bluez
        bond = options.get("bond", frozenset())
        specs = [DeviceSpec(d.address, kind, bond=d.address in bond) for kind, d in devices]
        central = BleCentral(
            ble_backend,
            queue,
            specs,
            cursors=options.get("cursors"),
            settings=options.get("settings", FAST),
        )
        if options.get("start_devices", True):
            for _, device in devices:
                await device.start()
        before_central = options.get("before_central")
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


@dataclass
class Rig:
    """One test's emulated radio on its backend (``sim``, or ``bluez`` over the virtual BlueZ,
    which needs ``monkeypatch``): :func:`running` bound to them."""

    backend: str
    monkeypatch: pytest.MonkeyPatch
    radio: SimRadio = field(default_factory=SimRadio)

    def running(
        self, *devices: tuple[str, EmulatedDevice], **options: Unpack[RunOptions]
    ) -> contextlib.AbstractAsyncContextManager[tuple[BleCentral, Collector]]:
        """:func:`running` over ``devices`` (``(kind, device)`` pairs) on this radio."""
        return running(
            self.radio, devices, backend=self.backend, monkeypatch=self.monkeypatch, **options
        )
