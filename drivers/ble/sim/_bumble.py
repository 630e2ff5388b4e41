"""The one module that imports bumble; the emulated radio imports bumble names from here.

:class:`Controller` is bumble's emulated controller with one correction (below); everything
else is bumble's own.
"""

import asyncio
import contextlib
from collections.abc import Callable

from bumble import hci
from bumble.att import ATT_Error, Attribute
from bumble.controller import Controller as _BumbleController
from bumble.core import UUID, AdvertisingData, CommandTimeoutError
from bumble.core import BaseBumbleError as CoreError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy
from bumble.gatt_client import Client as GattClient
from bumble.hci import Address, HCI_Error
from bumble.host import Host
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, StreamPacketSource, Transport


class Controller(_BumbleController):
    """bumble's emulated controller, with LE Create Connection Cancel as the spec has it, and
    a link whose peer is gone ended by supervision timeout.

    Core Spec Vol 4 Part E 7.8.13: the cancel ends the pending LE Create Connection, and the
    controller then sends an LE Connection Complete event with status *Unknown Connection
    Identifier* (0x02); with nothing pending it answers *Command Disallowed* (0x0C). bumble's
    controller (0.0.236) answers success and keeps the connection pending: once a hub gave up
    on a device that had stopped advertising (a cuff gone to sleep), every later LE Create
    Connection was refused with Command Disallowed and the hub reached no device at all until
    that one advertised again.
    """

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """End the pending connection attempt (Vol 4 Part E 7.8.13, 7.7.65.1)."""
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failed = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # After the Command Complete of this command (sent once this handler returns).
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def create_le_connection(self, peer_address: hci.Address) -> None:
        """Connect; a stale link to the peer is first ended by supervision timeout.

        When both ends terminate a link at once, bumble (0.0.236) can leave the central's
        side of it behind while the peripheral's is gone; every later connection to that
        peripheral is then refused ("Connection ... already exists?") and the device is lost
        for good (a cuff that went to sleep while the hub disconnected). On air, a link whose
        peer no longer answers ends by supervision timeout (Core Spec Vol 6 Part B 4.5.2),
        reported as Disconnection Complete with reason 0x08 (Vol 4 Part E 7.7.5).
        """
        stale = self.le_connections.get(peer_address)
        if stale is not None and not self._peer_has_link(peer_address):
            self.on_le_disconnected(stale, hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
        super().create_le_connection(peer_address)

    def _peer_has_link(self, peer_address: hci.Address) -> bool:
        link = self.link
        peer = None if link is None else link.find_le_controller(peer_address)
        if peer is None:
            return False
        ours = {bytes(self.public_address), bytes(self.random_address)}
        return any(bytes(c.peer_address) in ours for c in peer.le_connections.values())


#: A characteristic's property bits by the names BlueZ's ``GattCharacteristic1.Flags`` and
#: bleak use (BlueZ ``doc/org.bluez.GattCharacteristic.rst``; Core 5.3 Vol 3 Part G 3.3.1.1).
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


def property_names(properties: int) -> list[str]:
    """The names of the property bits set in ``properties``, in bit order."""
    return [name for bit, name in _PROPERTY_NAMES if properties & bit]


def drop_subscriber(proxy: CharacteristicProxy[bytes], subscriber: Callable[[bytes], None]) -> None:
    """Undo a failed ``proxy.subscribe(subscriber)``.

    bumble registers a subscriber before it writes the CCCD and has no API to take it back
    when that write is refused (for instance insufficient encryption); left behind, it would
    deliver every value twice after a retry that follows pairing. This reaches into bumble's
    subscriber tables, so it lives here, next to bumble's import.
    """
    wrapped = proxy.subscribers.pop(subscriber, None)
    gatt = proxy.client
    for table in (gatt.notification_subscribers, gatt.indication_subscribers):
        registered = table.get(proxy.handle)
        if registered is not None:
            registered.discard(wrapped)


#: How long an abandoned connection attempt may take to settle after its cancel.
_ABANDON_SETTLE_S = 5.0


async def connect_le(device: Device, address: Address, *, timeout: float) -> Connection:  # noqa: ASYNC109 - bumble's own timeout (it cancels on air), passed on
    """``device.connect(address, timeout=...)``, safe to cancel.

    bumble's own timeout sends LE Create Connection Cancel (Core Spec Vol 4 Part E 7.8.13);
    a *cancelled* ``connect`` does not: the controller keeps connecting, and when the peer
    advertises again the link completes with no host waiting for it (bumble asserts on the
    LE Connection Complete, 7.7.65.1), so the peer holds a link to nowhere and stops
    advertising. The kernel cancels a pending connection when BlueZ's ``Device1.Disconnect``
    cancels a ``Connect``: so does this, and a connection that completed anyway is ended."""
    connecting = asyncio.ensure_future(device.connect(address, timeout=timeout))
    try:
        return await asyncio.shield(connecting)
    except asyncio.CancelledError:
        await _abandon(device, connecting)
        raise


def is_connected(device: Device, connection: Connection) -> bool:
    """Whether ``connection`` is still one of ``device``'s links. A peer may drop a link
    as soon as it is made, before the caller of :func:`connect_le` listens for its
    disconnection: check after listening."""
    return device.connections.get(connection.handle) is connection


async def _abandon(device: Device, connecting: asyncio.Future[Connection]) -> None:
    # Nothing pending any more: the attempt ended (or completed) on its own.
    with contextlib.suppress(CoreError, HCI_Error, TimeoutError):
        await device.send_command(hci.HCI_LE_Create_Connection_Cancel_Command())
    try:
        async with asyncio.timeout(_ABANDON_SETTLE_S):
            late = await connecting
    except (CoreError, HCI_Error, TimeoutError, asyncio.CancelledError):
        return  # cancelled (LE Connection Complete with status 0x02) or failed
    with contextlib.suppress(CoreError, HCI_Error):  # already gone
        await late.disconnect()


__all__ = [
    "GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR",
    "UUID",
    "ATT_Error",
    "Address",
    "Advertisement",
    "AdvertisingData",
    "AsyncPipeSink",
    "Attribute",
    "Characteristic",
    "CharacteristicProxy",
    "CharacteristicValue",
    "CommandTimeoutError",
    "Connection",
    "Controller",
    "CoreError",
    "Descriptor",
    "DescriptorProxy",
    "Device",
    "GattClient",
    "HCI_Error",
    "Host",
    "LocalLink",
    "PairingConfig",
    "PairingDelegate",
    "Peer",
    "Service",
    "ServiceProxy",
    "StreamPacketSource",
    "Transport",
    "connect_le",
    "drop_subscriber",
    "is_connected",
    "open_transport",
    "property_names",
]
