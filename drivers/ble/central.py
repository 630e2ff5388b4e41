"""The BLE central: find allowlisted devices, connect, bond, subscribe, download, hand on.

Uses real :class:`bleak.BleakClient` / :class:`bleak.BleakScanner` objects with the backend
named in the configuration, so the same code runs on BlueZ and on the emulated radio.

:class:`BleCentral` is an async context manager that owns one TaskGroup (``narhub-ble``):
the scanner (:mod:`drivers.ble.scanner`, with its watchdog) and one supervisor per
allowlisted device. A supervisor waits for its device to advertise, takes a connection slot
(:mod:`drivers.ble.slots`, bounded, first come first served), runs one
:class:`~drivers.ble.session.DeviceSession` (an async context manager, inside the
supervisor's task), releases the slot, and after a failure waits a jittered exponential
backoff chosen by the failure class (:mod:`drivers.ble.retry`). Unknown exceptions are not
swallowed: they end the central (its owner restarts it).

Queue policy: the event queue is bounded and owned by the consumer. When it is full the
session parks the events it already received (never dropping one), disconnects the device
(which keeps its stored records and unconfirmed indications) and blocks on ``put`` for the
parked events before its slot is released; the device is retried after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from drivers._aio import Lifecycle, reraise_if_cancelling
from drivers.ble.agent_types import AgentError
from drivers.ble.backends import BleBackend
from drivers.ble.events import ClockObservation, MeasurementEvent, device_label
from drivers.ble.pairing import PairingFailedError, PairingInput
from drivers.ble.record_cursors import MemoryRecordCursorStore, RecordCursorStore, RecordTracker
from drivers.ble.retry import Failure, RetryPolicy, classify
from drivers.ble.scanner import AllowlistScanner
from drivers.ble.session import DeviceSession, DiscoveryCacheEntry
from drivers.ble.slots import ConnectionSlots
from protocols.gatt import (
    FIRMWARE_REVISION,
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    STRICT,
    BatteryLevel,
    DeviceInformationString,
    DeviceProfile,
    choose_profile,
)

if TYPE_CHECKING:
    from drivers.ble.agent import PairingAgent
    from drivers.ble.cgm_backfill import CgmSessionInfo
    from drivers.ble.ghs_records import GhsInfo
    from protocols.gatt import Measurement

logger = logging.getLogger(__name__)

__all__ = [
    "BleCentral",
    "CentralSettings",
    "DeviceSpec",
    "DeviceStatus",
    "MeasurementEvent",
]


#: 2025-01-01T00:00:00Z: a hub clock before this has not been set since a power cut.
_PLAUSIBLE_FROM_S = 1_735_689_600


def _plausible_hub_clock() -> bool:
    return time.time() >= _PLAUSIBLE_FROM_S


def _local_now() -> dt.datetime:
    # Device clocks are naive local wall clocks, so the hub compares with its own.
    return dt.datetime.now()  # noqa: DTZ005


@dataclass(frozen=True)
class CentralSettings:
    """Tunables; the defaults suit a Raspberry Pi with real devices.

    Attributes:
        max_connections: connection slots (BlueZ adapters manage a few at once).
        scanning_mode: ``passive`` where the adapter allows, else ``active``.
        scanner_watchdog_s: restart a scanner that heard nothing for this long.
        adapter_call_timeout_s: a scan start or stop the adapter leaves unanswered this long
            means it hangs (power-cycled on BlueZ).
        silent_restarts_before_reset: watchdog restarts in a row without a sound before the
            adapter is taken to hang (power-cycled on BlueZ).
        connect_timeout_s / operation_timeout_s / pairing_timeout_s: per step.
        idle_disconnect_s: end a session after this long without a value (blessed-bluez
            disconnects after about 2 s of silence; devices power off soon after).
        fair_share_s: a session holding a slot this long yields it when others wait.
        racp_idle_timeout_s: abort a RACP procedure with no progress for this long.
        commit_timeout_s: how long to wait for the pipeline to commit downloaded records.
        clock_max_offset_s: set a device clock that is off by more than this.
        advert_fresh_s: an advertisement older than this does not start a connection.
        reconnect_pause_s: pause after a clean session before connecting again.
        backoff_scale: multiply every retry delay (tests and the bench shrink them).
        hub_clock: the hub's local wall clock (naive), compared with device clocks.
        hub_clock_trusted: whether the hub's clock may set a device clock (a hub whose
            clock is not synchronised yet would set its devices wrong; default: not before
            2025).
        pairing: how the pairing agent answers a device that asks for a passkey or a
            number comparison (nobody answers in the service: such devices are refused and
            paired by a technician with ``narhub ble pair --passkey``).
    """

    max_connections: int = 3
    scanning_mode: Literal["active", "passive"] = "passive"
    scanner_watchdog_s: float = 90.0
    scanner_restart_delay_s: float = 1.0
    adapter_call_timeout_s: float = 10.0
    silent_restarts_before_reset: int = 2
    connect_timeout_s: float = 20.0
    operation_timeout_s: float = 10.0
    pairing_timeout_s: float = 30.0
    idle_disconnect_s: float = 2.0
    fair_share_s: float = 60.0
    racp_idle_timeout_s: float = 10.0
    commit_timeout_s: float = 30.0
    clock_max_offset_s: float = 60.0
    advert_fresh_s: float = 5.0
    reconnect_pause_s: float = 1.0
    backoff_scale: float = 1.0
    hub_clock: Callable[[], dt.datetime] = _local_now
    hub_clock_trusted: Callable[[], bool] = _plausible_hub_clock
    pairing: PairingInput = field(default_factory=PairingInput)


@dataclass(frozen=True)
class DeviceSpec:
    """An allowlisted (paired) device: address, kind, and whether it needs a bond first."""

    address: str
    kind: str
    bond: bool = False


@dataclass
class DeviceStatus:
    """What the central knows about one device (reported to technicians; no values here
    beyond battery and clock offset, and the address stays out of ``label``)."""

    label: str
    kind: str
    connected: bool = False
    sessions: int = 0
    events: int = 0
    malformed: int = 0
    duplicates: int = 0
    backpressure: int = 0
    bonded: bool = False
    records_total: int = 0
    records_pending_delete: int = 0
    clock: ClockObservation | None = None
    #: False once a session found no Current Time characteristic (CTS 1.1): no clock to read.
    has_clock: bool | None = None
    clock_sets: int = 0
    #: Why an off device clock was left as it is this session (``None``: it was not off, or set).
    clock_not_set: str | None = None
    battery_percent: int | None = None
    information: dict[int, str] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    last_failure: str | None = None
    #: The last pairing failure, explained (BlueZ's error, what happened, the fix).
    pairing_failure: PairingFailedError | None = None
    profile: DeviceProfile = STRICT
    #: Why :attr:`profile` was chosen (which string matched), for the technician.
    profile_reason: str = "not connected yet"
    #: The name the device advertises (GAP Local Name), when it has one.
    local_name: str | None = None
    #: A CGM's sensor session (CGMS), a GHS device's features and schedules (GHSS).
    cgm: CgmSessionInfo | None = None
    ghs: GhsInfo | None = None
    #: The reception time (epoch ms) of the device's last event (:meth:`reception_ms`).
    last_reception_ms: int = 0

    def reception_ms(self, wall_ms: int) -> int:
        """The reception time of a new event: ``wall_ms``, but after the previous event's.

        An undated reading (a glucose context, a live notification) is timed by its
        reception and identified at the region by device, code, that millisecond and value
        (narhub's identifier, PHD IG "Conditional-create Identifier" for the dated ones): a
        burst of stored records received in one millisecond would make equal readings of two
        records one. A hub clock stepped back by more than a second is followed as it is."""
        last = self.last_reception_ms
        if last - 1000 < wall_ms <= last:
            wall_ms = last + 1
        self.last_reception_ms = wall_ms
        return wall_ms

    def note(self, measurement: Measurement) -> None:
        """Record Device Information / Battery values read in a session."""
        if isinstance(measurement, BatteryLevel):
            self.battery_percent = measurement.level_percent
        elif isinstance(measurement, DeviceInformationString):
            self.information[measurement.characteristic] = measurement.value
            self._choose_profile()

    def note_name(self, local_name: str | None) -> None:
        """Record the advertised name: it chooses the profile when Device Information does
        not name the model (protocols/gatt/quirks.py)."""
        if local_name and local_name != self.local_name:
            self.local_name = local_name
            self._choose_profile()

    def _choose_profile(self) -> None:
        choice = choose_profile(
            manufacturer=self.information.get(MANUFACTURER_NAME),
            model=self.information.get(MODEL_NUMBER),
            firmware=self.information.get(FIRMWARE_REVISION),
            local_name=self.local_name,
        )
        self.profile, self.profile_reason = choice.profile, choice.reason


async def _power_cycle() -> None:
    """Power-cycle the adapter through BlueZ (:func:`drivers.ble.adapter.power_cycle`); its
    D-Bus library loads with the first reset, on a BlueZ backend only."""
    from drivers.ble.adapter import power_cycle  # noqa: PLC0415 - BlueZ only

    await power_cycle()


class BleCentral(Lifecycle):
    """Sessions with allowlisted devices, as an async context manager (or :meth:`run`)."""

    has_background = True
    #: A start cut short (stale links not released, a cancellation) unregisters the agent it
    #: registered: the supervisor starts the central again, each time with a new agent.
    stop_after_failed_start = True

    def __init__(
        self,
        backend: BleBackend,
        events: asyncio.Queue[MeasurementEvent],
        devices: Sequence[DeviceSpec],
        *,
        cursors: RecordCursorStore | None = None,
        settings: CentralSettings | None = None,
    ) -> None:
        self.backend = backend
        self.events = events
        self.settings = settings or CentralSettings()
        self.devices = {spec.address.upper(): spec for spec in devices}
        self.cursors: RecordCursorStore = (
            cursors if cursors is not None else MemoryRecordCursorStore()
        )
        self.slots = ConnectionSlots(self.settings.max_connections)
        #: Pairings run one at a time: an adapter's agent answers one pairing request at a
        #: time (BlueZ's org.bluez.Agent1 is asked per device), and two SMP exchanges that
        #: distribute keys at once were seen to stall the emulated adapter's host.
        self.pairing_lock = asyncio.Lock()
        self.scanner = AllowlistScanner(
            backend,
            set(self.devices),
            scanning_mode=self.settings.scanning_mode,
            watchdog_s=self.settings.scanner_watchdog_s,
            restart_delay_s=self.settings.scanner_restart_delay_s,
            # BlueZ only: a hung adapter is power-cycled through Adapter1.Powered.
            reset_adapter=_power_cycle if backend.needs_agent else None,
            call_timeout_s=self.settings.adapter_call_timeout_s,
            silent_restarts_before_reset=self.settings.silent_restarts_before_reset,
        )
        self.status = {
            address: DeviceStatus(device_label(spec.kind, address), spec.kind)
            for address, spec in self.devices.items()
        }
        self.discovery_cache: dict[str, DiscoveryCacheEntry] = {}
        self._trackers = {a: RecordTracker(a, self.cursors) for a in self.devices}
        self._replays: dict[str, deque[bytes]] = {a: deque(maxlen=64) for a in self.devices}
        self._stack = contextlib.AsyncExitStack()
        #: The pairing agent registered with BlueZ while the central runs (``bluez`` only).
        self.agent: PairingAgent | None = None
        #: Links an earlier hub process left open that this central released at start.
        self.stale_links_released = 0

    def tracker(self, key: str) -> RecordTracker:
        """The record cursor named ``key``: a device's, or one of its sensor sessions' (a
        CGM's, :func:`drivers.ble.cgm_backfill.cursor_key`), created on first use."""
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = RecordTracker(key, self.cursors)
        return tracker

    def cursors_committed(self, address: str) -> int | None:
        """The committed record cursor of a device as this central last knew it."""
        return self._trackers[address.upper()].committed

    @property
    def malformed(self) -> int:
        """Malformed values received, all devices."""
        return sum(s.malformed for s in self.status.values())

    async def start(self) -> None:
        """Register the pairing agent and release stale links (BlueZ only)."""
        if self.backend.needs_agent:
            # BlueZ pairs only with an agent: the hub's is registered for the central's life,
            # and again before a pairing if bluetoothd was not there or restarted since.
            agent = self.settings.pairing.agent()
            self._stack.push_async_callback(agent.close)
            self.agent = agent
            try:
                await agent.ensure_registered()
            except AgentError as exc:
                logger.warning("BLE pairing agent not registered yet: %s", exc)
            # Links an earlier hub process left open in bluetoothd (a crash, then a restart):
            # their devices do not advertise until released.
            from drivers.ble.adapter import release_stale_links  # noqa: PLC0415 - BlueZ only

            self.stale_links_released = await release_stale_links(self.devices)

    def background(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """The scanner, and one supervisor per device."""
        tasks = [group.create_task(self.scanner.run(), name="ble-scanner")]
        for address, spec in self.devices.items():
            tasks.append(group.create_task(self._supervise(address), name=f"ble-{spec.kind}"))
        return tasks

    async def stop(self) -> None:
        """Unregister the pairing agent (once the tasks have ended)."""
        self.agent = None
        await self._stack.aclose()

    async def run(self) -> None:
        """Run until cancelled (for an owner that runs the central as one task)."""
        async with self:
            await asyncio.Event().wait()

    async def _supervise(self, address: str) -> None:
        spec = self.devices[address]
        status = self.status[address]
        policy = RetryPolicy(scale=self.settings.backoff_scale)
        while True:
            # A cancellation swallowed below (3.11's asyncio.timeout turns a racing cancel into
            # TimeoutError, which some paths translate into a device failure) ends the loop here.
            reraise_if_cancelling()
            ble_device = await self.scanner.wait_for(address, fresh_s=self.settings.advert_fresh_s)
            failure: Failure | None = None
            async with self.slots.slot():
                # Waiting for the slot may have taken a while: the device must still be there.
                try:
                    async with asyncio.timeout(self.settings.advert_fresh_s):
                        ble_device = await self.scanner.wait_for(
                            address, fresh_s=self.settings.advert_fresh_s
                        )
                except TimeoutError:
                    reraise_if_cancelling()
                    continue
                status.note_name(ble_device.name)
                try:
                    async with DeviceSession(
                        self,
                        spec,
                        ble_device,
                        status,
                        self._trackers[address],
                        self._replays[address],
                    ) as session:
                        await session.run()
                except Exception as exc:
                    failure = classify(exc)
                    if failure is None:
                        raise
                    status.failures[failure.value] = status.failures.get(failure.value, 0) + 1
                    status.last_failure = failure.value
                    logger.info("BLE %s: session ended (%s)", status.label, failure.value)
                    logger.debug("session failure detail: %s", exc)
            if failure is None:
                policy.reset()
                await asyncio.sleep(self.settings.reconnect_pause_s)
                continue
            await asyncio.sleep(policy.delay_s(failure))
