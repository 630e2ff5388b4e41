"""``org.bluez.Device1`` of the virtual BlueZ: one remote device heard by the adapter.

Properties and methods as ``doc/org.bluez.Device.rst`` has them: Address, AddressType,
Name, Alias, Paired, Bonded, Trusted, Blocked, Connected, ServicesResolved, RSSI,
ManufacturerData, ServiceData, UUIDs, Adapter; ``Connect`` (LE connection, then the GATT
database is discovered and ServicesResolved turns true), ``Disconnect`` (also cancels a
``Connect`` under way), ``Pair`` (connects if needed, pairs over SMP with the caller's or
the default agent, fails without one). A bonded device's link is encrypted right after
connecting, as bluetoothd asks for a paired LE device (``BT_IO_SEC_MEDIUM`` in
``device_connect_le``, src/device.c). ``Pair`` failures use the names of
``new_authentication_return`` (src/device.c): an SMP failure is ``AuthenticationFailed``,
a link lost during pairing ``AuthenticationCanceled``, a connection that could not be made
``ConnectionAttemptFailed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, cast

from drivers._aio import cancelling
from drivers.ble._dbus import DBusError, Message, Variant
from drivers.ble.sim._bumble import (
    Address,
    Advertisement,
    AdvertisingData,
    Connection,
    CoreError,
    HCI_Error,
    PairingConfig,
    PairingDelegate,
    connect_le,
    is_connected,
)
from drivers.ble.sim.vbluez.agents import AgentDelegate
from drivers.ble.sim.vbluez.gatt import GattObjects, uuid_str
from drivers.ble.sim.vbluez.objects import Interface, Method, Property

if TYPE_CHECKING:
    from drivers.ble.sim.vbluez.service import VirtualBlueZ

logger = logging.getLogger(__name__)

DEVICE = "org.bluez.Device1"
_UUID_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.SERVICE_DATA_128_BIT_UUID,
)


def _err(name: str, text: str) -> DBusError:
    return DBusError(f"org.bluez.Error.{name}", text)


def advertised(advertisement: Advertisement) -> dict[str, Any]:
    """Device1 properties carried by one advertising report (Core Spec Supplement Part A)."""
    data = advertisement.data
    props: dict[str, Any] = {"RSSI": int(advertisement.rssi)}
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.SHORTENED_LOCAL_NAME
    )
    if name:
        props["Name"] = str(name)
    uuids = [uuid_str(u) for kind in _UUID_LISTS for u in cast(list[Any], data.get(kind) or [])]
    if uuids:
        props["UUIDs"] = uuids
    manufacturer = {
        int(company): _ay(value)
        for company, value in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
    }
    if manufacturer:
        props["ManufacturerData"] = manufacturer
    service_data = {
        uuid_str(uuid): _ay(value)
        for kind in _SERVICE_DATA
        for uuid, value in cast(list[tuple[Any, bytes]], data.get_all(kind))
    }
    if service_data:
        props["ServiceData"] = service_data
    return props


def _ay(value: bytes) -> Variant:
    return Variant("ay", bytes(value))


class VirtualDevice:
    """One ``/org/bluez/hci0/dev_XX_...`` object and the link behind it."""

    def __init__(self, service: VirtualBlueZ, address: Address) -> None:
        self.service = service
        self.address = address
        self.text = str(address).removesuffix("/P").upper()
        self.path = f"{service.adapter_path}/dev_{self.text.replace(':', '_')}"
        self.connection: Connection | None = None
        self.gatt: GattObjects | None = None
        self._connecting: asyncio.Task[Connection] | None = None
        self._pairing = False
        self.delegate: PairingDelegate | None = None
        self.last_report_s = -1e9

    # --- the object ----------------------------------------------------------------------

    def interface(self, paired: bool) -> Interface:
        """``org.bluez.Device1`` with the properties known before any report."""
        random = self.address.address_type != Address.PUBLIC_DEVICE_ADDRESS
        return Interface(
            DEVICE,
            {
                "Address": Property("s", self.text),
                "AddressType": Property("s", "random" if random else "public"),
                "Name": Property("s"),
                "Alias": Property("s", self.text.replace(":", "-"), self._set_alias),
                "Paired": Property("b", paired),
                "Bonded": Property("b", paired),
                "Trusted": Property("b", False, self._set_trusted),
                "Blocked": Property("b", False, self._set_blocked),
                "LegacyPairing": Property("b", False),
                "Connected": Property("b", False),
                "ServicesResolved": Property("b", False),
                "UUIDs": Property("as", []),
                "Adapter": Property("o", self.service.adapter_path),
                "RSSI": Property("n"),
                "ManufacturerData": Property("a{qv}"),
                "ServiceData": Property("a{sv}"),
            },
            {
                "Connect": Method("", "", self._connect_method),
                "Disconnect": Method("", "", self._disconnect_method),
                "Pair": Method("", "", self._pair_method),
                "CancelPairing": Method("", "", self._cancel_pairing),
            },
        )

    def prop(self, name: str) -> Any:
        """A Device1 property's value."""
        return self.service.tree.value(self.path, DEVICE, name)

    def update(self, **changes: Any) -> None:
        """Change Device1 properties (announced with PropertiesChanged)."""
        self.service.tree.update(self.path, DEVICE, changes)

    def heard(self, props: dict[str, Any]) -> None:
        """An advertising report: what it carries, announced (RSSI every time)."""
        if "Name" in props and self.prop("Alias") == self.text.replace(":", "-"):
            props["Alias"] = props["Name"]
        if self.gatt is not None:
            props.pop("UUIDs", None)  # the resolved services win over the advertised ones
        self.update(**props)

    def _set_alias(self, value: Any) -> None:
        self.update(Alias=str(value) or self.prop("Name") or self.text.replace(":", "-"))

    def _set_trusted(self, value: Any) -> None:
        self.update(Trusted=bool(value))

    def _set_blocked(self, value: Any) -> None:
        self.update(Blocked=bool(value))

    # --- Connect / Disconnect ------------------------------------------------------------

    async def _connect_method(self, _msg: Message) -> list[Any]:
        if self.connection is not None:
            raise _err("AlreadyConnected", "Already Connected")
        await self.connect()
        return []

    async def connect(self) -> Connection:
        """An LE connection, the link encrypted when bonded, the GATT database resolved."""
        if self.connection is not None:
            return self.connection
        if self._connecting is not None:
            raise _err("InProgress", "In Progress")
        task = asyncio.get_running_loop().create_task(self._establish(), name="vbluez-connect")
        self._connecting = task
        try:
            return await task
        except asyncio.CancelledError:
            if cancelling():
                raise
            raise _err("Failed", "le-connection-abort-by-local") from None
        finally:
            self._connecting = None

    async def _establish(self) -> Connection:
        service = self.service
        central = await service.radio.central()
        async with service.radio.connect_lock:
            try:
                # Cancellable (Disconnect() during Connect()): drivers.ble.sim._bumble.
                connection = await connect_le(
                    central, self.address, timeout=service.connect_timeout_s
                )
            except (TimeoutError, HCI_Error, CoreError) as exc:
                raise _err("Failed", "le-connection-timeout") from exc
        self.connection = connection
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        if not is_connected(central, connection):  # dropped before we listened
            self._on_disconnection(connection)
            raise _err("Failed", "le-connection-abort-by-remote")
        self.update(Connected=True)
        keystore = central.keystore
        if keystore is not None and await keystore.get(str(connection.peer_address)):
            try:
                await asyncio.wait_for(connection.encrypt(), timeout=service.connect_timeout_s)
            except (HCI_Error, TimeoutError) as exc:
                logger.debug("re-encryption with the stored key failed: %s", exc)
        gatt = GattObjects(service.tree, self.path, connection)
        try:
            await gatt.discover()
        except DBusError:
            gatt.withdraw()
            with contextlib.suppress(HCI_Error):
                await connection.disconnect()
            raise _err("Failed", "le-connection-gatt-browsing") from None
        if self.connection is not connection:
            gatt.withdraw()
            raise _err("Failed", "le-connection-abort-by-remote")
        self.gatt = gatt
        self.update(UUIDs=gatt.service_uuids, ServicesResolved=True)
        return connection

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is not connection:
            return
        self.connection = None
        gatt, self.gatt = self.gatt, None
        if gatt is not None:
            gatt.withdraw()
        self.update(ServicesResolved=False, Connected=False)

    async def _disconnect_method(self, _msg: Message) -> list[Any]:
        pending = self._connecting
        if pending is not None:
            pending.cancel()  # "can be also used to cancel a preceding Connect call"
            return []
        if self.connection is None:
            raise _err("NotConnected", "Not Connected")
        await self.disconnect()
        return []

    async def disconnect(self) -> None:
        """End the link (HCI Disconnect, reason 0x13); the state follows the event."""
        connection = self.connection
        if connection is not None:
            with contextlib.suppress(HCI_Error):
                await connection.disconnect()
            self._on_disconnection(connection)

    # --- Pair ----------------------------------------------------------------------------

    async def _pair_method(self, msg: Message) -> list[Any]:
        agent = self.service.agents.for_pairing(str(msg.sender))
        if agent is None:
            # "In case there is no application agent and also no default agent present,
            # this method will fail." (Device API, "void Pair()")
            raise _err("AuthenticationFailed", "Authentication Failed")
        if self.prop("Paired"):
            raise _err("AlreadyExists", "Already Paired")
        if self._pairing:
            raise _err("InProgress", "In Progress")
        self._pairing = True
        try:
            try:
                connection = await self.connect()
            except DBusError as exc:
                raise _err("ConnectionAttemptFailed", "Page Timeout") from exc
            self.delegate = AgentDelegate(self.service.bus, agent, self.path)
            try:
                await connection.pair()
            except HCI_Error as exc:
                raise _err("AuthenticationCanceled", "Authentication Canceled") from exc
            except asyncio.CancelledError:
                if cancelling():
                    raise
                raise _err("AuthenticationCanceled", "Authentication Canceled") from None
            except Exception as exc:  # bumble's SMP failures (ProtocolError) and the like
                logger.debug("SMP pairing failed: %s", exc)
                raise _err("AuthenticationFailed", "Authentication Failed") from exc
        finally:
            self._pairing = False
            self.delegate = None
        self.update(Paired=True, Bonded=True)
        return []

    def _cancel_pairing(self, _msg: Message) -> list[Any]:
        raise _err("DoesNotExist", "Does Not Exist")

    def pairing_config(self) -> PairingConfig:
        """The adapter's side of a pairing with this device (SMP, Core Spec Vol 3 Part H):
        LE Secure Connections and bonding, without MITM (``BT_SECURITY_MEDIUM`` for a
        Pair: the device's MITM flag decides), IO capability of the agent."""
        delegate = self.delegate or PairingDelegate(PairingDelegate.NO_OUTPUT_NO_INPUT)
        return PairingConfig(
            sc=True,
            mitm=False,
            bonding=True,
            delegate=delegate,
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
