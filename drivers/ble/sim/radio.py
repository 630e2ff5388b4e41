"""One emulated adapter (the hub's central) and the air it shares with emulated peripherals.

Every device gets its own bumble :class:`Controller` on one :class:`LocalLink`, so links,
advertising, connections, SMP pairing (Core Spec Vol 3 Part H) and ATT (Vol 3 Part F) run
through bumble's real link-layer emulation, not a mock.

Fault seams on the air itself (each named, each undone explicitly):

* :meth:`SimRadio.detach` / :meth:`SimRadio.attach`: a device out of range (its advertising
  and packets no longer reach anyone) and back;
* :meth:`SimRadio.stall_scanner`: the adapter silently stops reporting advertisements until
  its scanner is restarted, as BlueZ adapters occasionally do (the central's watchdog case).

Across processes (the virtual rig, ``narhub rig``): the rig's :class:`HciServer` puts the hub's
controller on the rig's link and exposes its HCI (Core Spec Vol 4 Part E) over TCP on loopback;
the hub builds its :class:`SimRadio` with ``transport="tcp-client:127.0.0.1:PORT"`` and runs its
bumble host over that transport, exactly as it would over a USB dongle (``usb:0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from drivers._aio import Lifecycle
from drivers.ble.sim._bumble import (
    Address,
    AsyncPipeSink,
    Controller,
    Device,
    Host,
    LocalLink,
    PairingConfig,
    StreamPacketSource,
    Transport,
    open_transport,
)

logger = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:00:00:00:00:00"


def _pairing_config(_connection: object) -> PairingConfig:
    # LE Secure Connections, bonding, Just Works (no I/O on either side), and the static
    # random address as identity so the key store is keyed by the address bleak uses.
    return PairingConfig(
        sc=True,
        mitm=False,
        bonding=True,
        identity_address_type=PairingConfig.AddressType.RANDOM,
    )


#: HCI reason "connection timeout" (Core Spec Vol 1 Part F 2.8): a supervision timeout.
_SUPERVISION_TIMEOUT = 0x08


class SimRadio:
    """The air: a :class:`LocalLink`, the hub's central device and the peripherals on it."""

    def __init__(
        self, central_address: str = CENTRAL_ADDRESS, *, transport: str | None = None
    ) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._central_address = central_address
        #: A bumble transport name (``tcp-client:127.0.0.1:PORT``): the central's controller
        #: is behind it (in the rig's process) instead of on this radio's own link.
        self.transport_name = transport
        self._transport: Transport | None = None
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._controllers: dict[str, Controller] = {}
        #: The bumble devices on this radio's link, by upper-case address.
        self.devices: dict[str, Device] = {}
        #: One pending LE connection at a time, as on a real controller.
        self.connect_lock = asyncio.Lock()
        #: Fault seam: while set, scanners on this radio receive no advertisements.
        self.scanner_stalled = False
        #: How many times a scanner was (re)started on this radio.
        self.scanner_starts = 0

    def new_device(self, address: str, name: str) -> Device:
        """A new bumble device with its own controller on this radio's link."""
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
        device.name = name
        device.pairing_config_factory = _pairing_config
        self._controllers[address.upper()] = controller
        self.devices[address.upper()] = device
        return device

    def detach(self, address: str) -> None:
        """Take a device out of range: nothing it sends reaches the air any more.

        Every link the device still has times out on both sides, as a supervision timeout
        ends a real link whose peer went silent (Core Spec Vol 6 Part B 4.5.2, reason 0x08):
        a link left on the central's controller would make every later connection to the
        device fail ("connection already exists") and commands on it go unanswered. bumble's
        LocalLink has no such timeout; the controllers' own disconnection handler (the one a
        received LL_TERMINATE_IND runs) ends the links here.
        """
        controller = self._controllers[address.upper()]
        if controller not in self.link.controllers:
            return
        self.time_out_links(address)
        self.link.remove_controller(controller)
        # Off the air in both directions: a controller still holding the link would keep
        # advertising into it (bumble sends through ``controller.link``, which it checks for
        # None before every send), and a central hearing it would open a link to nowhere.
        controller.link = None  # type: ignore[assignment]  # bumble checks it for None

    def time_out_links(self, address: str) -> None:
        """End every link to or from the device at ``address`` on every controller (a
        supervision timeout). Also called a moment after :meth:`detach`: an advertisement
        already on its way when the device left can still open a link to nowhere."""
        controller = self._controllers[address.upper()]
        for other in [controller, *self.link.controllers]:
            for peer, connection in list(other.le_connections.items()):
                if other is controller or str(peer).upper().startswith(address.upper()):
                    other.on_le_disconnected(connection, _SUPERVISION_TIMEOUT)

    def attach(self, address: str) -> None:
        """Bring a detached device back into range."""
        controller = self._controllers[address.upper()]
        controller.link = self.link
        self.link.add_controller(controller)

    def stall_scanner(self) -> None:
        """Fault: scanners go deaf until restarted (the watchdog must notice and restart)."""
        self.scanner_stalled = True

    def central_keys(self) -> set[str]:
        """Addresses the hub's adapter holds a bond (LTK) for (Core Spec Vol 3 Part H 2.4.1)."""
        keystore = None if self._central is None else self._central.keystore
        if keystore is None:
            return set()
        return {str(name) for name in getattr(keystore, "all_keys", {})}

    async def central(self) -> Device:
        """The hub's adapter, powered on at first use (one per radio, like hci0)."""
        async with self._central_lock:
            if self._central is None:
                if self.transport_name is None:
                    central = self.new_device(self._central_address, "narhub")
                else:
                    central = await self._remote_central()
                await central.power_on()
                self._central = central
                logger.debug("sim radio central powered on")
            return self._central

    async def _remote_central(self) -> Device:
        """A bumble host over the transport; its controller lives in the rig's process."""
        assert self.transport_name is not None
        self._transport = await open_transport(self.transport_name)
        central = Device.with_hci(
            "narhub",
            Address(self._central_address),
            self._transport.source,
            self._transport.sink,
        )
        central.pairing_config_factory = _pairing_config
        return central

    async def close(self) -> None:
        """Close the transport to a remote controller (nothing to do for a local one)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()


class _SocketSink:
    """HCI packets from the controller to the connected host (dropped when none is)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def on_packet(self, packet: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(packet)


class HciServer(Lifecycle):
    """The hub's controller on ``radio``'s link, its HCI served over TCP on loopback.

    One host at a time: each connection gets a fresh controller (a hub that restarts finds
    an adapter just powered on). When the host goes away (the hub process was killed) every
    link to that controller is dropped by the peripherals, as a supervision timeout would
    (Core Spec Vol 6 Part B 4.5.2), and the controller leaves the air.
    """

    def __init__(
        self,
        radio: SimRadio,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        central_address: str = CENTRAL_ADDRESS,
    ) -> None:
        self.radio = radio
        self.host = host
        self.port = port
        self._address = central_address
        self._server: asyncio.Server | None = None
        self._current: asyncio.Task[None] | None = None
        #: Host connections accepted so far (one per hub start).
        self.connections = 0

    @property
    def transport_name(self) -> str:
        """What the hub passes as ``ble.sim_transport``."""
        return f"tcp-client:{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve the controller's HCI (:attr:`port` is then the one bound)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("sim radio HCI served on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop serving and end the host connection under way."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        current = self._current
        if current is not None and not current.done():
            current.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await current
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        previous = self._current
        if previous is not None and not previous.done():
            previous.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        self._current = asyncio.current_task()
        self.connections += 1
        source = StreamPacketSource()
        controller = Controller(
            "narhub-hci",
            host_source=source,
            host_sink=_SocketSink(writer),
            link=self.radio.link,
            public_address=self._address,
        )
        logger.info("sim radio: a hub host connected")
        try:
            while data := await reader.read(65536):
                source.data_received(data)
        except ConnectionError:
            pass
        finally:
            logger.info("sim radio: the hub host went away")
            await self._drop_links(controller)
            if controller in self.radio.link.controllers:
                self.radio.link.remove_controller(controller)
            writer.close()

    async def _drop_links(self, controller: Controller) -> None:
        """Peripherals end every link to ``controller`` (the host behind it is gone)."""
        central = Address(self._address)
        for device in list(self.radio.devices.values()):
            for connection in list(device.connections.values()):
                if connection.peer_address == central or str(connection.peer_address).startswith(
                    self._address
                ):
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(2.0):
                            await connection.disconnect(0x08)
        controller.host = None
