"""One connection with one medical device, as an async context manager.

The session state machine follows docs/protocols/phd.md section 5::

    connect -> (bond when needed) -> discover (cached) -> read DIS + Battery (once per session)
    -> read the device clock -> subscribe (CCCDs) -> set the clock when off by more than the
    limit -> RACP download of new stored records -> collect until idle -> disconnect

* Bonding (Core Spec Vol 3 Part H): a device configured as needing a bond is paired before
  anything else; any other read or CCCD write answered with ATT "insufficient
  authentication/encryption" (Vol 3 Part F 3.4.1.1) triggers pairing and one retry.
* Clock (CTS 1.1, PHD IG coincident time stamp): read first, the offset recorded, and only
  then written when beyond ``clock_max_offset_s`` (:mod:`drivers.ble.session_clock`).
* RACP (GSS 3.181, GLS 1.0 4.9): "report records >= cursor + 1" (or "all" the first time),
  collect until the Response Code indication, abort after ``racp_idle_timeout_s`` without
  progress (:mod:`drivers.ble.session_racp`).
* Which characteristics matter, and the discovery cache: :mod:`drivers.ble.session_gatt`.
* Every GATT operation runs under ``operation_timeout_s``; a stall raises ``TimeoutError``.
* Malformed values become events with ``error`` set, are counted, and the session goes on.

Queue policy: events go to the central's bounded queue with ``put_nowait``. When it is full,
the event is parked in this session (never dropped), the device is disconnected (it keeps
what it has not sent), and on exit the parked events are put with an awaited ``put``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from drivers._aio import Lifecycle, reraise_if_cancelling
from drivers.ble._bleak import (
    BleakClient,
    BleakError,
    BleakGATTCharacteristic,
    BleakGATTProtocolError,
    BLEDevice,
)
from drivers.ble.events import ClockObservation, MeasurementEvent, device_time_of
from drivers.ble.hints import bond_first, clock_after_notification, settle
from drivers.ble.pairing import PairingFailedError, pair_client
from drivers.ble.record_cursors import RecordTracker
from drivers.ble.retry import Failure, SessionError, is_auth_error
from drivers.ble.session_clock import DeviceClockSync
from drivers.ble.session_gatt import (
    MEASUREMENT_CHARACTERISTICS,
    RECORD_CHARACTERISTICS,
    DiscoveryCacheEntry,
    Handler,
    map_characteristics,
)
from drivers.ble.session_racp import RacpProcedures
from protocols.gatt import (
    BATTERY_LEVEL,
    BLOOD_PRESSURE_RECORD,
    CGM_MEASUREMENT,
    CURRENT_TIME,
    LIVE_HEALTH_OBSERVATIONS,
    RECORD_ACCESS_CONTROL_POINT,
    DecodeError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    decode,
)
from protocols.gatt.device import DEVICE_INFORMATION_STRINGS
from protocols.gatt.numbers import SYSTEM_ID

if TYPE_CHECKING:
    from drivers.ble.central import BleCentral, DeviceSpec, DeviceStatus
    from drivers.ble.cgm_session import CgmRunner
    from drivers.ble.ghs_session import GhsRunner
    from protocols.gatt import Measurement

logger = logging.getLogger(__name__)

#: Recent time-stamped values remembered per device to drop replays (docs/protocols/phd.md 6.1).
_REPLAY_MEMORY = 64

_T = TypeVar("_T")


class DeviceSession(Lifecycle):
    """One connection; ``async with`` connects (and bonds), exit disconnects.

    :meth:`run` drives the session until the device goes quiet, the link drops, or the
    session has held its slot for its fair share while others wait.
    """

    def __init__(
        self,
        central: BleCentral,
        spec: DeviceSpec,
        ble_device: BLEDevice,
        status: DeviceStatus,
        tracker: RecordTracker,
        replays: deque[bytes],
    ) -> None:
        self._central = central
        self._settings = central.settings
        self.spec = spec
        self._ble_device = ble_device
        self.status = status
        #: The record cursor this session's download uses (a CGM or GHS runner sets its own).
        self.tracker = tracker
        self._replays = replays
        self._disconnected = asyncio.Event()
        self._activity = asyncio.Event()
        self._last_activity = time.monotonic()
        self._client: BleakClient | None = None
        self._chars: dict[int, BleakGATTCharacteristic] = {}
        self._clock: ClockObservation | None = None
        self._clock_sync = DeviceClockSync(self)
        self._parked: list[MeasurementEvent] = []
        self._racp = RacpProcedures(self)
        #: True while a RACP download runs.
        self.downloading = False
        self._backpressure = False
        self._closers: list[Callable[[], Awaitable[None]]] = []
        #: The CGM or GHS part of the session, when the device has that service.
        self._runner: CgmRunner | GhsRunner | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (what entering ``async with`` does)."""
        cached = self._central.discovery_cache.get(self.spec.address)
        backend = self._central.backend
        client = BleakClient(
            self._ble_device,
            disconnected_callback=lambda _client: self._on_disconnected(),
            services=None if cached is None else sorted(cached.services),
            timeout=self._settings.connect_timeout_s,
            backend=backend.client_cls,
        )
        try:
            await client.connect()
        except TimeoutError as exc:
            raise SessionError(Failure.UNREACHABLE, "connection attempt timed out") from exc
        except BleakError as exc:
            raise SessionError(Failure.UNREACHABLE, f"connect failed: {exc}") from exc
        self._client = client
        self.status.connected = True
        self.status.sessions += 1

    async def stop(self) -> None:
        """Disconnect, and hand over the events parked while the queue was full."""
        client, self._client = self._client, None
        self.status.connected = False
        try:
            if client is not None:
                # Also after the device dropped the link: bleak's BlueZ client closes its own
                # D-Bus connection only in disconnect(), or it stays open until collected.
                with contextlib.suppress(BleakError, TimeoutError):
                    async with asyncio.timeout(self._settings.operation_timeout_s):
                        await client.disconnect()
        finally:
            # Events parked while the queue was full: wait for room, never drop them.
            for event in self._parked:
                await self._central.events.put(event)
            self._parked.clear()

    def _on_disconnected(self) -> None:
        self._disconnected.set()
        self._activity.set()
        self._racp.link_lost()

    @property
    def client(self) -> BleakClient:
        """The connected client."""
        if self._client is None:
            raise SessionError(Failure.LINK_LOST, "not connected")
        return self._client

    # --- GATT operations, bounded and secured --------------------------------------------

    async def _op(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """One GATT operation under the operation timeout; pairs and retries once when the
        device answers "insufficient authentication/encryption"."""
        for attempt in range(2):
            self._check_link()
            try:
                async with asyncio.timeout(self._settings.operation_timeout_s):
                    return await make()
            except BleakError as exc:
                # ATT "insufficient authentication/encryption": a GATT protocol error on the
                # emulated radio, "Not paired" from BlueZ (drivers.ble.retry.is_auth_error).
                if attempt == 0 and is_auth_error(exc) and not self._disconnected.is_set():
                    await self._pair()
                    continue
                if isinstance(exc, BleakGATTProtocolError):
                    raise
                if self._disconnected.is_set():
                    raise SessionError(Failure.LINK_LOST, str(exc)) from exc
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_link(self) -> None:
        if self._backpressure:
            raise SessionError(Failure.BACKPRESSURE, "pipeline queue full")
        if self._disconnected.is_set():
            raise SessionError(Failure.LINK_LOST, "link lost")

    async def _pair(self) -> None:
        logger.info("BLE %s: pairing (the device requires a bond)", self.status.label)
        central = self._central
        try:
            # One pairing at a time on the adapter (see BleCentral.pairing_lock); the timeout
            # covers the wait for the adapter too.
            async with (
                asyncio.timeout(self._settings.pairing_timeout_s),
                central.pairing_lock,
            ):
                await pair_client(
                    self.client, central.backend, central.agent, device=self._ble_device
                )
        except (PairingFailedError, BleakError, TimeoutError) as exc:
            if self._disconnected.is_set():
                raise SessionError(Failure.LINK_LOST, "link lost while pairing") from exc
            if isinstance(exc, PairingFailedError):
                self.status.pairing_failure = exc
            raise SessionError(Failure.AUTHENTICATION, f"pairing failed: {exc}") from exc
        self.status.pairing_failure = None
        self.status.bonded = True

    async def _read(self, cid: int) -> bytes:
        char = self._chars[cid]
        return bytes(await self._op(lambda: self.client.read_gatt_char(char)))

    async def _write(self, cid: int, data: bytes) -> None:
        char = self._chars[cid]
        await self._op(lambda: self.client.write_gatt_char(char, data, response=True))

    # --- for the CGM and GHS runners (drivers/ble/cgm_session.py, ghs_session.py) ----------

    def has(self, cid: int) -> bool:
        """Whether the device has characteristic ``cid``."""
        return cid in self._chars

    @property
    def available(self) -> frozenset[int]:
        """The characteristics the device has (16-bit ids)."""
        return frozenset(self._chars)

    def can(self, cid: int, prop: str) -> bool:
        """Whether characteristic ``cid`` has property ``prop`` (``read``, ``write`` ...)."""
        return cid in self._chars and prop in self._chars[cid].properties

    async def read(self, cid: int) -> bytes:
        """Read a characteristic (bounded, secured; see :meth:`_op`)."""
        return await self._read(cid)

    async def write(self, cid: int, data: bytes) -> None:
        """Write a characteristic with response (bounded, secured)."""
        await self._write(cid, data)

    @property
    def settings(self) -> Any:
        """The central's settings (:class:`~drivers.ble.central.CentralSettings`)."""
        return self._settings

    @property
    def central(self) -> BleCentral:
        """The central that runs this session."""
        return self._central

    @property
    def clock(self) -> ClockObservation | None:
        """This session's clock observation (coincident time stamp)."""
        return self._clock

    def new_event(
        self,
        cid: int,
        raw: bytes,
        measurement: Measurement | None,
        error: DecodeError | None = None,
        **extra: Any,
    ) -> MeasurementEvent:
        """An event for a value decoded by a runner (``error`` when it could not be)."""
        self._touch()
        if error is not None:
            self.status.malformed += 1
            logger.warning(
                "BLE %s: malformed value on 0x%04X (%s); session continues",
                self.status.label,
                cid,
                error.reason,
            )
        return MeasurementEvent(
            device=self.spec.address,
            characteristic=cid,
            raw=raw,
            measurement=measurement,
            error=error,
            hub_wall_ms=self.status.reception_ms(time.time_ns() // 1_000_000),
            hub_mono_ns=time.monotonic_ns(),
            kind=self.spec.kind,
            label=self.status.label,
            device_time=device_time_of(measurement),
            clock=self._clock,
            **extra,
        )

    def emit(self, event: MeasurementEvent) -> None:
        """Hand an event on (see the queue policy in the module docstring)."""
        self._emit(event)

    def touch(self) -> None:
        """Note activity (a value or an indication arrived)."""
        self._touch()

    def arrived(self, cid: int, data: bytearray) -> Measurement | None:
        """A value notified or indicated on ``cid``, decoded (activity noted); None, counted
        as malformed, when it does not decode: the session goes on."""
        self._touch()
        try:
            return decode(cid, bytes(data))
        except DecodeError:
            self.status.malformed += 1
            return None

    # --- the session ---------------------------------------------------------------------

    async def run(self) -> None:
        """Drive the session until it is done (idle, fair share used, or link lost)."""
        if bond_first(self.status.profile, configured=self.spec.bond, bonded=self.status.bonded):
            await self._pair()
        self._map_characteristics()
        await self._read_device_information()
        await settle(self.status.profile)  # the profile may come from what DIS just said
        self._runner = self._service_runner()
        if self._runner is not None:
            self._clock = await self._runner.prepare()
            self.status.clock = self._clock
        else:
            self._clock = await self._clock_sync.read()
        await self._subscribe()
        if self._runner is not None:
            await self._runner.transfer()
        else:
            self._clock = await self._clock_sync.set(self._clock)
            if RECORD_ACCESS_CONTROL_POINT in self._chars:
                await self._racp.download_records()
        await self._collect()
        if self._backpressure:
            raise SessionError(Failure.BACKPRESSURE, "pipeline queue full")
        if not self._disconnected.is_set() and (self.spec.bond or self.status.bonded):
            # Only a bond keeps CCCDs across links (Core 5.3 Vol 3 Part G 3.3.3.3), on the
            # device and in BlueZ: turn them off. Without one, a disconnect ends them, and
            # turning them off first would open a window in which the stack confirms an
            # indication already on its way (ATT, Vol 3 Part F 3.4.7.2) to a handler no
            # longer there: the device would forget a measurement the hub never saw.
            # Disconnecting leaves it unconfirmed, and the device sends it again.
            await self._unsubscribe()
        # A device that disconnects once set up has ended its transfer (it powers down).

    def _service_runner(self) -> CgmRunner | GhsRunner | None:
        """The CGM (CGMS 1.0.2) or GHS (GHSS 1.0) part of this device's session, if any."""
        if CGM_MEASUREMENT in self._chars:
            from drivers.ble.cgm_session import CgmRunner  # noqa: PLC0415 - import cycle

            return CgmRunner(self)
        if LIVE_HEALTH_OBSERVATIONS in self._chars:
            from drivers.ble.ghs_session import GhsRunner  # noqa: PLC0415 - import cycle

            return GhsRunner(self)
        return None

    def _map_characteristics(self) -> None:
        self._chars, entry = map_characteristics(self.client.services)
        if self.spec.address not in self._central.discovery_cache:
            self._central.discovery_cache[self.spec.address] = entry

    async def _read_device_information(self) -> None:
        """DIS strings, the System ID (when the device has one) and Battery Level, once per
        session, reported as events."""
        for cid in [*DEVICE_INFORMATION_STRINGS, SYSTEM_ID, BATTERY_LEVEL]:
            if cid not in self._chars or "read" not in self._chars[cid].properties:
                continue
            raw = await self._read(cid)
            event = self._event(cid, raw)
            if event.measurement is not None:
                self.status.note(event.measurement)
            self._emit(event)

    async def _subscribe(self) -> None:
        runner = self._runner
        wanted = MEASUREMENT_CHARACTERISTICS | {RECORD_ACCESS_CONTROL_POINT}
        if runner is not None:
            wanted = runner.subscriptions()
        for cid in sorted(wanted):
            char = self._chars.get(cid)
            if char is None or not ({"notify", "indicate"} & set(char.properties)):
                continue
            handler = None if runner is None else runner.handler(cid)
            if handler is None:
                handler = (
                    self._racp.on_indication
                    if cid == RECORD_ACCESS_CONTROL_POINT
                    else self._handler(cid)
                )
            await self._op(self._starter(char, handler))
            self._closers.append(self._stopper(char))
        clock = self._chars.get(CURRENT_TIME)
        omron = clock_after_notification(self.status.profile)
        if omron and clock is not None and "notify" in clock.properties:
            await self._op(self._starter(clock, self._clock_sync.on_time_notification))
            self._closers.append(self._stopper(clock))

    def _starter(
        self,
        char: BleakGATTCharacteristic,
        handler: Callable[[BleakGATTCharacteristic, bytearray], None],
    ) -> Callable[[], Awaitable[None]]:
        return lambda: self.client.start_notify(char, handler)

    def _stopper(self, char: BleakGATTCharacteristic) -> Callable[[], Awaitable[None]]:
        return lambda: self.client.stop_notify(char)

    async def _unsubscribe(self) -> None:
        # Peripherals forget CCCDs but BlueZ remembers them: turn them off (blessed-bluez).
        for close in self._closers:
            with contextlib.suppress(BleakError, TimeoutError, SessionError):
                async with asyncio.timeout(self._settings.operation_timeout_s):
                    await close()
        self._closers.clear()

    async def _collect(self) -> None:
        """Wait for values until idle (no value for ``idle_disconnect_s``), the fair share is
        used up while other devices wait for a slot, or the link drops."""
        started = time.monotonic()
        settings = self._settings
        while not self._disconnected.is_set() and not self._backpressure:
            self._activity.clear()
            idle_left = self._last_activity + settings.idle_disconnect_s - time.monotonic()
            if idle_left <= 0:
                return
            if self._central.slots.waiting and time.monotonic() - started > settings.fair_share_s:
                logger.info("BLE %s: yielding the slot to waiting devices", self.status.label)
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(idle_left, settings.fair_share_s)):
                    await self._activity.wait()
            # Python 3.11: a cancel racing the timeout comes out as TimeoutError (drivers/_aio.py).
            reraise_if_cancelling()
            if self._runner is not None and self.tracker.pending:
                # A CGM or GHS link stays up for hours: commit the records the pipeline has
                # stored so far (never waiting), so a restart asks for no more than needed.
                await self.tracker.settle(0)

    # --- RACP (drivers/ble/session_racp.py) --------------------------------------------

    async def racp_exchange(self, request: bytes) -> Any:
        """Write a RACP request and wait for its final indication (the value a RACP handler
        hands to :meth:`racp_answered`); abort after ``racp_idle_timeout_s`` without
        progress (no record received)."""
        return await self._racp.exchange(request)

    def racp_answered(self, value: object) -> None:
        """Hand the final indication of the running RACP procedure to its waiter."""
        self._racp.answered(value)

    # --- values --------------------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = time.monotonic()
        self._activity.set()

    def _event(self, cid: int, raw: bytes, **extra: Any) -> MeasurementEvent:
        measurement: Measurement | None = None
        error: DecodeError | None = None
        try:
            measurement = decode(cid, raw, profile=self.status.profile)
        except DecodeError as exc:
            error = exc
        return self.new_event(cid, raw, measurement, error, **extra)

    def _on_bp_record(self, event: MeasurementEvent) -> None:
        """A Blood Pressure Record value (BLS 1.1.1), to the download's record assembler."""
        # Loaded with the first record: a hub without an enhanced cuff never holds the codec.
        from drivers.ble.bp_records import RecordAssembler, on_record_value  # noqa: PLC0415

        if self._racp.bp_records is None:
            self._racp.bp_records = RecordAssembler()
        on_record_value(self, self._racp.bp_records, event)

    def _handler(self, cid: int) -> Handler:
        def on_value(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            self._touch()
            raw = bytes(data)
            stored = self.downloading and cid in RECORD_CHARACTERISTICS
            event = self._event(cid, raw)
            if cid == BLOOD_PRESSURE_RECORD:
                self._on_bp_record(event)
                return
            m = event.measurement
            if stored or isinstance(m, (GlucoseMeasurement, GlucoseMeasurementContext)):
                seq = (
                    m.sequence_number
                    if isinstance(m, (GlucoseMeasurement, GlucoseMeasurementContext))
                    else None
                )
                if seq is not None and self.tracker.already_committed(seq):
                    self.tracker.duplicates += 1
                    self.status.duplicates += 1
                    return
                if stored:
                    self.status.records_total += 1
                    if seq is None:
                        self.status.records_pending_delete += 1
                event = _with(
                    event,
                    sequence_number=seq,
                    stored=stored,
                    ack=self.tracker.new_ack(seq) if stored else None,
                )
            elif event.device_time is not None:
                if raw in self._replays:
                    self.status.duplicates += 1
                    logger.debug("replayed value dropped as a duplicate")
                    return
                self._replays.append(raw)
            self._emit(event)

        return on_value

    def _emit(self, event: MeasurementEvent) -> None:
        self.status.events += 1
        if self._parked:
            self._parked.append(event)
            return
        try:
            self._central.events.put_nowait(event)
        except asyncio.QueueFull:
            self._parked.append(event)
            self.status.backpressure += 1
            logger.error(
                "BLE %s: pipeline queue full; disconnecting the device (it keeps its data)",
                self.status.label,
            )
            self._backpressure = True
            self._activity.set()


def _with(event: MeasurementEvent, **changes: Any) -> MeasurementEvent:
    return dataclasses.replace(event, **changes)


__all__ = ["MEASUREMENT_CHARACTERISTICS", "DeviceSession", "DiscoveryCacheEntry"]
