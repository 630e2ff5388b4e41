"""The base of every emulated health device: a bumble GATT server with a drifting clock,
Device Information, Battery, optional Current Time, stored indications, and fault injection.

What a subclass adds is its health service (built with :mod:`protocols.gatt` encoders, so the
bytes on the emulated air are the bytes a real device sends). What every device shares:

* **Device Information Service 0x180A** (DIS 1.1): manufacturer, model, serial, firmware.
* **Battery Service 0x180F** (BAS 1.0): Battery Level 0x2A19, read + notify.
* **Current Time Service 0x1805** (CTS 1.1) when the real devices have it: Current Time
  0x2A2B read/notify/write, backed by a :class:`~drivers.ble.sim.device_state.DeviceClock`
  that drifts and can be set.
* **Bonding**: with ``bonding_required`` the health characteristics' values and CCCDs need an
  encrypted link (ATT error 0x0F *Insufficient Encryption* until then, Core Spec Vol 3 Part F
  3.4.1.1 and Part C 10.3), as GLS/CGMS mandate and cuffs and scales do in transfer mode.
  ``pairing`` picks the method (:mod:`drivers.ble.sim.security`): Just Works, a passkey the
  device displays, or numeric comparison.
* **Stored indications**: measurements taken while no central listens are kept (bounded, like
  a device's memory) and indicated in order once a central enables indications; each is
  dropped from memory only after the ATT Handle Value Confirmation (Vol 3 Part F 3.4.7.3).
* **Faults** (:class:`~drivers.ble.sim.device_state.Faults`): refuse connections, drop the
  link after N records or N notifications, stall reads, corrupt payloads, go out of range
  while advertising.

Behaviour that looks random (values, jitter) comes from ``random.Random(seed)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, TypeVar, cast

from drivers._aio import Lifecycle
from drivers.ble.sim._bumble import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    UUID,
    AdvertisingData,
    ATT_Error,
    Attribute,
    Characteristic,
    CharacteristicValue,
    Connection,
    Descriptor,
    Service,
)
from drivers.ble.sim.device_state import DeviceClock, DeviceDefaults, DeviceStats, Faults
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.security import DeviceSecurity, PairingMode
from protocols.gatt import (
    BATTERY_LEVEL,
    CURRENT_TIME,
    FIRMWARE_REVISION,
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    SERIAL_NUMBER,
    AdjustReason,
    BatteryLevel,
    CurrentTime,
    DecodeError,
    DeviceInformationString,
    decode,
    encode,
)
from protocols.gatt.device import SystemId
from protocols.gatt.numbers import (
    BATTERY_SERVICE,
    CURRENT_TIME_SERVICE,
    DEVICE_INFORMATION_SERVICE,
    SYSTEM_ID,
)

logger = logging.getLogger(__name__)

#: HCI reason codes used when the device ends a link (Core Spec Vol 1 Part F).
REMOTE_USER_TERMINATED = 0x13
CONNECTION_TIMEOUT = 0x08

#: How long a device that left range still answers a connection request already under way.
_LEAVING_S = 0.05

#: ATT application error: a written value is out of range (Vol 3 Part F 3.4.1.1).
VALUE_NOT_ALLOWED = 0x13
#: ATT error "insufficient authentication" (Vol 3 Part F 3.4.1.1).
_INSUFFICIENT_AUTHENTICATION = 0x05

Properties = Characteristic.Properties
_V = TypeVar("_V")


def _constant(value: bytes) -> Callable[[], bytes]:
    def read() -> bytes:
        return value

    return read


def _uuid(uuid16: int) -> UUID:
    return UUID.from_16_bits(uuid16)


def written(uuid16: int, value: bytes, kind: type[_V]) -> _V:
    """A value a central wrote, decoded as ``kind``; else ATT error 0x13 Value Not Allowed."""
    try:
        decoded = decode(uuid16, bytes(value))
    except DecodeError as exc:
        raise ATT_Error(VALUE_NOT_ALLOWED) from exc
    if not isinstance(decoded, kind):
        raise ATT_Error(VALUE_NOT_ALLOWED)
    return decoded


class EmulatedDevice(Lifecycle):
    """A health device on the emulated radio; subclasses add their service.

    Use as an async context manager (or :meth:`start` / :meth:`stop`): background work runs
    in tasks owned by the device and is cancelled on exit.
    """

    #: The health service advertised (16-bit UUID).
    service_uuid: ClassVar[int] = 0
    #: Memory for undelivered indications (oldest dropped first when full, as devices do).
    memory_size: ClassVar[int] = 100
    #: What the device is unless its constructor is told otherwise (name, bonding, DIS...).
    defaults: ClassVar[DeviceDefaults] = DeviceDefaults()

    def __init__(
        self,
        radio: SimRadio,
        address: str,
        *,
        name: str | None = None,
        seed: int = 0,
        clock: DeviceClock | None = None,
        bonding_required: bool | None = None,
        current_time: bool | None = None,
        manufacturer: str | None = None,
        model: str | None = None,
        firmware: str | None = None,
        battery_percent: int = 87,
        advertising_interval_ms: float = 20.0,
        pairing: PairingMode = PairingMode.JUST_WORKS,
        device_information: bool | None = None,
        drops_unencrypted_reads: bool | None = None,
    ) -> None:
        """A keyword left out (None) takes the class's :attr:`defaults`.

        ``device_information``: False for a device without DIS 0x180A (a Beurer BM85).
        ``drops_unencrypted_reads``: a read on a link not yet encrypted ends the link
        instead of an ATT error (what a device that must be bonded before anything else is
        read does to a central that did not pair first; counted in ``stats.unbonded_reads``)."""
        given = self.defaults.given(
            name=name,
            bonding_required=bonding_required,
            current_time=current_time,
            manufacturer=manufacturer,
            model=model,
            firmware=firmware,
            device_information=device_information,
            drops_unencrypted_reads=drops_unencrypted_reads,
        )
        self.radio = radio
        self.drops_unencrypted_reads = given.drops_unencrypted_reads
        self.address = address
        self.name = given.name
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - emulated behaviour, not security
        self.clock = clock if clock is not None else DeviceClock()
        self.bonding_required = given.bonding_required
        self.faults = Faults()
        self.stats = DeviceStats()
        self.battery_percent = battery_percent
        self._dis = {
            MANUFACTURER_NAME: given.manufacturer,
            MODEL_NUMBER: given.model,
            SERIAL_NUMBER: f"SN{seed:08d}",
            FIRMWARE_REVISION: given.firmware,
        }
        self._advertising_interval_ms = advertising_interval_ms
        self.device = radio.new_device(address, self.name)
        #: How the device pairs (:mod:`drivers.ble.sim.security`), and the passkey it shows.
        self.security = DeviceSecurity(pairing, random.Random(seed + 1))  # noqa: S311
        self.device.pairing_config_factory = self.security.config
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connection: Connection | None = None
        self._lost: asyncio.Future[None] | None = None
        self._cccd: dict[int, int] = {}
        self._changed = asyncio.Condition()
        self._generation = 0
        self._outbox: deque[tuple[Characteristic[bytes], bytes]] = deque(maxlen=self.memory_size)
        self._started = False
        self._in_range = True
        self._advertising_when_left = False
        self._battery = self._characteristic(
            BATTERY_LEVEL,
            Properties.READ | Properties.NOTIFY,
            read=lambda: encode(BatteryLevel(self.battery_percent)),
        )
        services = [*self.build_services(), self._battery_service()]
        if given.device_information:
            services.append(self._dis_service())
        self._current_time: Characteristic[bytes] | None = None
        if given.current_time:
            self._current_time = self._characteristic(
                CURRENT_TIME,
                Properties.READ | Properties.NOTIFY | Properties.WRITE,
                read=lambda: encode(CurrentTime.from_datetime(self.clock.now(), AdjustReason(0))),
                write=self._write_current_time,
            )
            services.append(Service(_uuid(CURRENT_TIME_SERVICE), [self._current_time]))
        self.device.add_services(services)
        self.device.on("connection", self._on_connection)
        self.device.gatt_server.on("characteristic_subscription", self._on_subscription)

    # --- what subclasses provide ---------------------------------------------------------

    def build_services(self) -> list[Service]:
        """The device's health service(s)."""
        raise NotImplementedError

    def on_subscribed(self, characteristic: Characteristic[bytes], enabled: bool) -> None:
        """A central changed a CCCD (hook; the base already wakes the flusher)."""

    # --- GATT building blocks ------------------------------------------------------------

    def _characteristic(
        self,
        uuid16: int,
        properties: Characteristic.Properties,
        *,
        read: Callable[[], bytes] | None = None,
        write: Callable[[Connection | None, bytes], Awaitable[None] | None] | None = None,
        protected: bool = False,
    ) -> Characteristic[bytes]:
        """A characteristic whose reads go through the stall fault; ``protected`` ones need
        an encrypted link when the device requires bonding (CCCD included)."""
        secure = protected and self.bonding_required
        permissions = Attribute.Permissions(0)
        if read is not None:
            permissions |= Attribute.READABLE
            if secure:
                permissions |= Attribute.READ_REQUIRES_ENCRYPTION
        if write is not None:
            permissions |= Attribute.WRITEABLE
            if secure:
                permissions |= Attribute.WRITE_REQUIRES_ENCRYPTION

        async def read_value(_connection: Connection | None) -> bytes:
            if (
                self.drops_unencrypted_reads
                and _connection is not None
                and not _connection.is_encrypted
            ):
                self.stats.unbonded_reads += 1
                await _connection.disconnect(REMOTE_USER_TERMINATED)
                raise ATT_Error(_INSUFFICIENT_AUTHENTICATION)
            stall_s = self.faults.stall_reads_s.get(uuid16)
            if stall_s:
                # A task of the device's own, so that stopping the device ends the stall too.
                await self.spawn(asyncio.sleep(stall_s), "stalled-read")
            return b"" if read is None else read()

        value: Any = CharacteristicValue(read=read_value, write=cast(Any, write))
        characteristic: Characteristic[bytes] = Characteristic(
            _uuid(uuid16), properties, permissions, value
        )
        if properties & (Properties.NOTIFY | Properties.INDICATE):
            cccd_permissions = Attribute.READABLE | Attribute.WRITEABLE
            if secure:
                cccd_permissions |= Attribute.WRITE_REQUIRES_ENCRYPTION
            cccd = Descriptor(
                GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                cccd_permissions,
                self.device.gatt_server.make_descriptor_value(characteristic),
            )
            characteristic.descriptors = [cccd]
        return characteristic

    def _measurement(self, uuid16: int, *, indicate: bool) -> Characteristic[bytes]:
        """A health value sent by indication (else notification), protected by bonding."""
        properties = Properties.INDICATE if indicate else Properties.NOTIFY
        return self._characteristic(uuid16, properties, protected=True)

    def _fixed(self, uuid16: int, value: bytes, *, protected: bool = True) -> Characteristic[bytes]:
        """A read-only characteristic whose value never changes (a Feature, a location)."""
        return self._characteristic(
            uuid16, Properties.READ, read=_constant(value), protected=protected
        )

    def _service(self, *characteristics: Characteristic[bytes]) -> Service:
        """The device's health service (:attr:`service_uuid`) holding ``characteristics``."""
        return Service(_uuid(self.service_uuid), list(characteristics))

    def _dis_service(self) -> Service:
        chars = [
            self._characteristic(
                uuid16,
                Properties.READ,
                read=_constant(encode(DeviceInformationString(uuid16, text))),
            )
            for uuid16, text in self._dis.items()
        ]
        system_id = encode(SystemId.from_address(self.address))  # DIS: from the address
        chars.append(self._characteristic(SYSTEM_ID, Properties.READ, read=_constant(system_id)))
        return Service(_uuid(DEVICE_INFORMATION_SERVICE), chars)

    def _battery_service(self) -> Service:
        return Service(_uuid(BATTERY_SERVICE), [self._battery])

    def _write_current_time(self, _connection: Connection | None, value: bytes) -> None:
        when = written(CURRENT_TIME, value, CurrentTime).to_datetime()
        if when is None:
            raise ATT_Error(VALUE_NOT_ALLOWED)
        self.clock.set(when)
        self._bump()
        logger.debug("emulated device clock set by a central")

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Power on, start the device's background work, and advertise."""
        if self._started:
            return
        self._started = True
        await self.device.power_on()
        self.device.advertising_data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        self.service_uuid.to_bytes(2, "little"),
                    ),
                ]
            )
        )
        self.spawn(self._flush_loop(), "flush")
        self.on_started()
        if self.advertises_at_start():
            await self.advertise()

    def on_started(self) -> None:
        """Hook: start periodic behaviour (streams, sleep cycles)."""

    def advertises_at_start(self) -> bool:
        """Whether the device advertises as soon as it starts."""
        return True

    async def stop(self) -> None:
        """Cancel background work, stop advertising and drop connections."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._tasks.clear()
        if not self._started:
            return
        self._started = False
        if not self._in_range:
            self.radio.attach(self.address)
            self._in_range = True
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        for connection in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                await connection.disconnect()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task owned by the device (cancelled by :meth:`stop`)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"sim-{self.name}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "emulated device task %s failed", task.get_name(), exc_info=task.exception()
            )

    async def advertise(self) -> None:
        """Advertise (connectable), restarting after each disconnection."""
        if not self.device.is_advertising:
            await self.device.start_advertising(
                auto_restart=True,
                advertising_interval_min=self._advertising_interval_ms,
                advertising_interval_max=self._advertising_interval_ms,
            )

    async def stop_advertising(self) -> None:
        """Stop advertising (asleep)."""
        if self.device.is_advertising:
            await self.device.stop_advertising()

    # --- faults --------------------------------------------------------------------------

    async def drop_link(self, reason: int = CONNECTION_TIMEOUT) -> None:
        """Drop the current link as a supervision timeout would (HCI reason 0x08)."""
        connection = self._connection
        if connection is not None:
            self.stats.drops += 1
            with contextlib.suppress(Exception):
                await connection.disconnect(reason)

    async def go_out_of_range(self) -> None:
        """Leave radio range while advertising: the link times out, nobody hears the ads.

        Advertising stops before the link drops, so that the central cannot connect again in
        the moment before the device leaves the air (a link nobody can end: the central's
        controller would keep it forever); it resumes on :meth:`come_back_in_range`.
        """
        self._advertising_when_left = self.device.is_advertising
        await self.stop_advertising()
        await self.drop_link(CONNECTION_TIMEOUT)
        await self.stop_advertising()  # bumble restarts advertising after a disconnection
        self.radio.detach(self.address)
        self._in_range = False
        # An advertisement already on its way may still open a link: it times out too.
        await asyncio.sleep(_LEAVING_S)
        self.radio.time_out_links(self.address)

    def come_back_in_range(self) -> None:
        """Return into radio range (and advertise again if it did when it left)."""
        if not self._in_range:
            self.radio.attach(self.address)
            self._in_range = True
            if self._advertising_when_left:
                self.spawn(self.advertise(), "advertise")

    # --- connections and subscriptions ---------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a central is connected."""
        return self._connection is not None

    def _on_connection(self, connection: Connection) -> None:
        if self.faults.refuse_connections > 0:
            self.faults.refuse_connections -= 1
            self.stats.refused += 1
            self.spawn(connection.disconnect(REMOTE_USER_TERMINATED), "refuse")
            return
        self.stats.connections += 1
        self._connection = connection
        self._lost = asyncio.get_running_loop().create_future()
        self._cccd = {}
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        self.on_connected()
        self._bump()

    def on_connected(self) -> None:
        """Hook: a central connected."""

    def on_disconnected(self) -> None:
        """Hook: the central disconnected (or the link dropped)."""

    def _on_disconnection(self, connection: Connection) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        self._cccd = {}
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        self.on_disconnected()
        self._bump()

    def _on_subscription(
        self, _bearer: object, characteristic: Characteristic[bytes], notify: bool, indicate: bool
    ) -> None:
        self._cccd[characteristic.handle] = int(notify) | int(indicate) << 1
        self.on_subscribed(characteristic, notify or indicate)
        self._bump()

    def subscribed(self, characteristic: Characteristic[bytes], *, indicate: bool) -> bool:
        """True when the connected central enabled notifications (indications) on it."""
        return bool(self._cccd.get(characteristic.handle, 0) & (2 if indicate else 1))

    def _bump(self) -> None:
        self._generation += 1
        self.spawn(self._notify_changed(), "changed")

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (re-checked at every connection/CCCD change)."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _wait_for_change(self, generation: int) -> None:
        await self.wait_until(lambda: self._generation != generation)

    async def wait_subscribed(self) -> None:
        """Wait until a central has enabled the device's main measurement characteristic."""
        await self.wait_until(lambda: self._connection is not None and bool(self._cccd))

    # --- sending -------------------------------------------------------------------------

    def corrupt(self, payload: bytes) -> bytes:
        """Apply the malformed-payload fault to a measurement payload."""
        if self.faults.malformed_next > 0:
            self.faults.malformed_next -= 1
            self.stats.malformed_sent += 1
            return payload[:2]
        return payload

    async def send(
        self, characteristic: Characteristic[bytes], payload: bytes, *, indicate: bool
    ) -> bool:
        """Notify or indicate ``payload``; True once delivered (indication confirmed).

        False when no central is subscribed or the link dropped before delivery.
        """
        connection, lost = self._connection, self._lost
        if (
            connection is None
            or lost is None
            or not self.subscribed(characteristic, indicate=indicate)
        ):
            return False
        if indicate:
            sending: Awaitable[None] = self.device.indicate_subscriber(
                connection, characteristic, payload
            )
        else:
            sending = self.device.notify_subscriber(connection, characteristic, payload)
        task = asyncio.ensure_future(sending)
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled() or task.exception() is not None:
            return False
        self.stats.delivered += 1
        await self._count_down_notifications()
        return True

    async def _count_down_notifications(self) -> None:
        remaining = self.faults.drop_after_notifications
        if remaining is None:
            return
        remaining -= 1
        self.faults.drop_after_notifications = remaining if remaining > 0 else None
        if remaining <= 0:
            await self.drop_link()

    async def count_down_records(self) -> bool:
        """Apply the drop-after-records fault for one sent stored record; True if dropped."""
        remaining = self.faults.drop_after_records
        if remaining is None:
            return False
        remaining -= 1
        self.faults.drop_after_records = remaining if remaining > 0 else None
        if remaining <= 0:
            await self.drop_link()
            return True
        return False

    def store(self, characteristic: Characteristic[bytes], payload: bytes) -> None:
        """Keep a measurement in memory until a central confirms its indication."""
        self._outbox.append((characteristic, payload))
        self._bump()

    @property
    def stored(self) -> int:
        """Measurements in memory, not yet delivered."""
        return len(self._outbox)

    def on_outbox_empty(self) -> None:
        """Hook: every stored measurement was delivered."""

    async def _flush_loop(self) -> None:
        while True:
            generation = self._generation
            await self.wait_until(
                lambda: bool(self._outbox) and self.subscribed(self._outbox[0][0], indicate=True)
            )
            characteristic, payload = self._outbox[0]
            if await self.send(characteristic, self.corrupt(payload), indicate=True):
                if self._outbox and self._outbox[0][1] == payload:
                    self._outbox.popleft()
                    self.stats.stored_confirmed_ms.append(time.time_ns() // 1_000_000)
                if not self._outbox:
                    self.on_outbox_empty()
            else:
                # Not delivered (link lost): wait for the next change of state.
                await self._wait_for_change(generation)


__all__ = ["DeviceClock", "DeviceDefaults", "DeviceStats", "EmulatedDevice", "Faults", "Properties"]
