"""bleak backends (:class:`BaseBleakClient`, :class:`BaseBleakScanner`) on a bumble central.

These are real bleak backends: :class:`bleak.BleakClient` and :class:`bleak.BleakScanner`
receive them through ``backend=`` and the rest of bleak (service resolution, callbacks,
context management) runs unchanged, exactly as with BlueZ.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Literal, cast

from drivers.ble._bleak import (
    AdvertisementData,
    BaseBleakClient,
    BaseBleakScanner,
    BleakError,
    BleakGATTCharacteristic,
    BleakGATTDescriptor,
    BleakGATTService,
    BleakGATTServiceCollection,
    BLEDevice,
    NotifyCallback,
    normalize_uuid_str,
)
from drivers.ble.sim._bumble import (
    Address,
    Advertisement,
    AdvertisingData,
    Characteristic,
    CharacteristicProxy,
    Connection,
    DescriptorProxy,
    HCI_Error,
    Peer,
)
from drivers.ble.sim.radio import SimRadio

logger = logging.getLogger(__name__)

_PROPERTY_NAMES: list[tuple[int, str]] = [
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
]


def _uuid_str(uuid: Any) -> str:
    """bumble UUID -> bleak's lower-case 128-bit string."""
    return normalize_uuid_str(str(uuid.to_hex_str("-")))


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
        """Connect, discover the whole GATT database, and build bleak's service collection."""
        central = await self.radio.central()
        try:
            connection = await asyncio.wait_for(
                central.connect(Address(self.address)), timeout=self._timeout
            )
        except (TimeoutError, HCI_Error) as exc:
            raise BleakError(f"device {self.address} not connectable: {exc}") from exc
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        if pair:
            await connection.pair()
        peer = Peer(connection)
        self._peer = peer
        self.services = await self._discover(peer)

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
            await service.discover_characteristics()
            bleak_service = BleakGATTService(service, service.handle, _uuid_str(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                await char.discover_descriptors()
                props = [name for bit, name in _PROPERTY_NAMES if char.properties & bit]
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
            await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair (and bond) over SMP."""
        await self._require().pair()

    async def unpair(self) -> None:
        """Unpairing is not emulated yet."""
        raise BleakError("unpair is not supported by the sim backend")

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """ATT Read (Long) of a characteristic value."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        return bytearray(await proxy.read_value())

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """ATT Read of a descriptor."""
        self._require()
        proxy = cast(DescriptorProxy, descriptor.obj)
        return bytearray(await proxy.read_value())

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """ATT Write Request (response=True) or Write Command."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        await proxy.write_value(bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """ATT Write Request to a descriptor."""
        self._require()
        proxy = cast(DescriptorProxy, descriptor.obj)
        await proxy.write_value(bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enable notifications (preferred) or indications by writing the CCCD."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        await proxy.subscribe(lambda value: callback(bytearray(value)), prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disable notifications and indications."""
        self._require()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
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
        """Start scanning (clears what was seen, as bleak requires)."""
        self.seen_devices = {}
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
