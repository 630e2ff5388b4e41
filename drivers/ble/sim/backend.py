"""bleak backends (:class:`BaseBleakClient`, :class:`BaseBleakScanner`) on a bumble central.

These are real bleak backends: :class:`bleak.BleakClient` and :class:`bleak.BleakScanner`
receive them through ``backend=`` and the rest of bleak (service resolution, callbacks,
context management) runs unchanged, exactly as with BlueZ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal, cast

from drivers._aio import cancelling
from drivers.ble._bleak import (
    AdvertisementData,
    BaseBleakClient,
    BaseBleakScanner,
    BleakError,
    BleakGATTCharacteristic,
    BleakGATTDescriptor,
    BleakGATTProtocolError,
    BleakGATTService,
    BleakGATTServiceCollection,
    BLEDevice,
    NotifyCallback,
    normalize_uuid_str,
)
from drivers.ble.backends import BleBackend
from drivers.ble.sim._bumble import (
    Address,
    Advertisement,
    AdvertisingData,
    ATT_Error,
    CharacteristicProxy,
    CommandTimeoutError,
    Connection,
    CoreError,
    DescriptorProxy,
    HCI_Error,
    Peer,
    connect_le,
    drop_subscriber,
    is_connected,
    property_names,
)
from drivers.ble.sim.radio import SimRadio

logger = logging.getLogger(__name__)

#: How long a connection attempt's cancel may take to be confirmed by the controller.
_CANCEL_GRACE_S = 2.0


def _uuid_str(uuid: Any) -> str:
    """bumble UUID -> bleak's lower-case 128-bit string."""
    return normalize_uuid_str(str(uuid.to_hex_str("-")))


@contextlib.asynccontextmanager
async def _translated(address: str, what: str) -> AsyncIterator[None]:
    """bumble errors as bleak raises them on BlueZ.

    * an ATT Error Response (Core Spec Vol 3 Part F 3.4.1.1) becomes
      :class:`BleakGATTProtocolError` with its error code;
    * bumble cancels a pending ATT request when the link drops: that ``CancelledError`` is
      not ours (the task is not being cancelled), so it becomes a :class:`BleakError`; a real
      cancellation of the calling task propagates untouched.
    """
    try:
        yield
    except ATT_Error as exc:
        raise BleakGATTProtocolError(int(exc.error_code)) from exc
    except asyncio.CancelledError:
        if cancelling():
            raise
        raise BleakError(f"{what}: link to {address} lost") from None
    except (HCI_Error, TimeoutError, CommandTimeoutError) as exc:
        # An HCI command the controller never answered (bumble's CommandTimeoutError is no
        # TimeoutError) is a failed operation, as BlueZ reports a timed-out command.
        raise BleakError(f"{what}: {exc!r}") from exc


class SimBleakClient(BaseBleakClient):
    """A bleak client backend whose radio is a bumble central on a :class:`SimRadio`."""

    radio: ClassVar[SimRadio]

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 10.0),
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        services = kwargs.pop("services", None)
        self._service_filter: set[str] | None = None if services is None else set(services)

    @property
    def name(self) -> str:
        """The address, as BlueZ reports before the name is known."""
        return str(self.address).replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU."""
        return 23 if self._connection is None else int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        """True between a successful connect and the disconnection."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, re-encrypt when bonded, and discover the GATT database.

        As BlueZ does for a bonded device, the link is encrypted with the stored LTK right
        after connecting (Core Spec Vol 3 Part H 2.4.4.1); a peer that lost the bond refuses,
        and the link stays unencrypted (the session then pairs again). Only the services in
        ``services=`` are discovered when bleak was given a filter.
        """
        central = await self.radio.central()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            # A controller has one LE Create Connection pending at a time (Core Spec Vol 4
            # Part E 7.8.12); BlueZ queues the others, and so does the emulated adapter.
            async with asyncio.timeout_at(deadline):
                await self.radio.connect_lock.acquire()
        except TimeoutError as exc:
            raise BleakError(f"device {self.address} not connectable: {exc}") from exc
        try:
            # bumble's own timeout, not a cancellation: on expiry the host sends LE Create
            # Connection Cancel (7.8.13) and waits for the controller's LE Connection Complete
            # (0x02), as BlueZ does, so the attempt never stays pending in the controller and
            # the next device can be connected. The outer bound only guards that wait.
            remaining_s = max(deadline - loop.time(), 0.001)
            async with asyncio.timeout(remaining_s + _CANCEL_GRACE_S):
                connection = await connect_le(central, Address(self.address), timeout=remaining_s)
        except (TimeoutError, HCI_Error, CoreError) as exc:
            raise BleakError(f"device {self.address} not connectable: {exc}") from exc
        finally:
            self.radio.connect_lock.release()
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        if not is_connected(central, connection):  # dropped before we listened
            self._on_disconnection(0)
            raise BleakError(f"device {self.address} disconnected as it connected")
        async with _translated(self.address, "connect"):
            keystore = central.keystore
            if keystore is not None and await keystore.get(str(connection.peer_address)):
                try:
                    await asyncio.wait_for(connection.encrypt(), timeout=self._timeout)
                except (HCI_Error, TimeoutError, CommandTimeoutError) as exc:
                    logger.debug("re-encryption with the stored key failed: %s", exc)
            if pair:
                await connection.pair()
            peer = Peer(connection)
            self._peer = peer
            self.services = await asyncio.wait_for(self._discover(peer), timeout=self._timeout)
        if self._connection is None:
            raise BleakError(f"device {self.address} disconnected during service discovery")

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._peer = None
        self.services = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        await peer.discover_services()
        for service in peer.services:
            if (
                self._service_filter is not None
                and _uuid_str(service.uuid) not in self._service_filter
            ):
                continue
            await service.discover_characteristics()
            bleak_service = BleakGATTService(service, service.handle, _uuid_str(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                await char.discover_descriptors()
                props = property_names(char.properties)
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    _uuid_str(char.uuid),
                    cast(Any, props),
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, _uuid_str(desc.type), bleak_char)
                    )
        return collection

    def _require(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"device {self.address} is not connected")
        return self._connection

    async def disconnect(self) -> None:
        """Disconnect; a no-op when already disconnected."""
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(HCI_Error):
                await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond over SMP (Core Spec Vol 3 Part H 2.3), LE Secure Connections."""
        connection = self._require()
        async with _translated(self.address, "pair"):
            try:
                await connection.pair()
            except (ATT_Error, HCI_Error, asyncio.CancelledError, TimeoutError):
                raise
            except Exception as exc:  # bumble's SMP failures have no common base
                raise BleakError(f"pairing with {self.address} failed: {exc}") from exc

    async def unpair(self) -> None:
        """Forget the bond (delete the stored keys) and disconnect, as BlueZ RemoveDevice."""
        central = await self.radio.central()
        if central.keystore is not None:
            await central.keystore.delete(str(Address(self.address)))
        await self.disconnect()

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """ATT Read (Long) of a characteristic value."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        async with _translated(self.address, "read"):
            return bytearray(await proxy.read_value())

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """ATT Read of a descriptor."""
        self._require()
        proxy = cast(DescriptorProxy, descriptor.obj)
        async with _translated(self.address, "read descriptor"):
            return bytearray(await proxy.read_value())

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """ATT Write Request (response=True) or Write Command."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        async with _translated(self.address, "write"):
            await proxy.write_value(bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """ATT Write Request to a descriptor."""
        self._require()
        proxy = cast(DescriptorProxy, descriptor.obj)
        async with _translated(self.address, "write descriptor"):
            await proxy.write_value(bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enable notifications (preferred) or indications by writing the CCCD."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        try:
            async with _translated(self.address, "subscribe"):
                await proxy.subscribe(subscriber, prefer_notify=True)
        except BaseException:
            drop_subscriber(proxy, subscriber)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disable notifications and indications."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        async with _translated(self.address, "unsubscribe"):
            await proxy.unsubscribe()


class SimBleakScanner(BaseBleakScanner):
    """A bleak scanner backend fed by the bumble central's advertisement reports."""

    radio: ClassVar[SimRadio]

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode == "active"
        self._listening = False

    async def start(self) -> None:
        """Start scanning (clears what was seen, as bleak requires); heals a stalled scanner."""
        self.seen_devices = {}
        self.radio.scanner_stalled = False
        self.radio.scanner_starts += 1
        central = await self.radio.central()
        central.on("advertisement", self._on_advertisement)
        self._listening = True
        await central.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        """Stop scanning."""
        central = await self.radio.central()
        if self._listening:
            central.remove_listener("advertisement", self._on_advertisement)
            self._listening = False
        await central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        if self.radio.scanner_stalled:
            return
        data = advertisement.data
        name_field = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        ):
            uuids.extend(_uuid_str(u) for u in (data.get(kind) or []))
        if not self.is_allowed_uuid(uuids):
            return
        name = str(name_field) if name_field else None
        address = str(advertisement.address).removesuffix("/P")
        adv = AdvertisementData(
            local_name=name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=int(advertisement.rssi),
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, name, advertisement, adv)
        self.call_detection_callbacks(device, adv)


def bind_backend(radio: SimRadio) -> tuple[type[SimBleakClient], type[SimBleakScanner]]:
    """Backend classes bound to ``radio`` (bleak instantiates backends from a class)."""
    client = type("SimBleakClient", (SimBleakClient,), {"radio": radio})
    scanner = type("SimBleakScanner", (SimBleakScanner,), {"radio": radio})
    return client, scanner


def open_backend(*, transport: str | None) -> BleBackend:
    """The ``sim`` backend with its own radio (``drivers.ble.backends.open_backend``)."""
    radio = SimRadio(transport=transport)
    client, scanner = bind_backend(radio)
    return BleBackend("sim", client, scanner, closer=radio.close)
