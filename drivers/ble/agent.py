"""The hub's BlueZ pairing agent: ``org.bluez.Agent1``, registered for the pairing it starts.

BlueZ asks an *agent* whenever a pairing needs a person: the passkey a device shows, a number
to compare, an authorisation. bluetoothd calls the agent of the application that called
``Device1.Pair``, else the default agent; with neither, ``Pair`` fails
(``doc/org.bluez.Device.rst``, "void Pair()"; ``doc/org.bluez.AgentManager.rst``,
"RegisterAgent"). bleak registers none, so the hub brings its own, over dbus-fast.

:class:`PairingAgent` is an async context manager: it connects to the system bus (or the bus
named by ``DBUS_SYSTEM_BUS_ADDRESS``), exports ``org.bluez.Agent1`` at :data:`AGENT_PATH`,
registers it with ``org.bluez.AgentManager1.RegisterAgent`` and ``RequestDefaultAgent``, and
unregisters it on exit. :meth:`PairingAgent.pair` calls ``Device1.Pair`` from the agent's own
connection, so BlueZ uses this agent for it whatever the default agent is.

What the agent answers (``doc/org.bluez.Agent.rst``, methods by name):

* ``RequestPasskey``: the number the device shows, from the technician (``passkey``);
  without one, ``org.bluez.Error.Rejected``.
* ``RequestConfirmation`` (numeric comparison): accepted only when ``confirm`` says the
  numbers match; otherwise ``org.bluez.Error.Rejected``.
* ``RequestAuthorization`` (an incoming Just Works request): accepted only for the device
  being paired.
* ``DisplayPasskey`` / ``Cancel`` / ``Release``: noted.
* ``RequestPinCode`` / ``DisplayPinCode`` (BR/EDR legacy) and ``AuthorizeService``: refused;
  the hub pairs LE health devices only.

Requests for a device other than the one being paired are refused: a neighbour's device
cannot pair with the hub through this agent. What was asked and answered is kept in
:attr:`PairingAttempt.requests` (never a passkey) so that a failure can be explained
(:mod:`drivers.ble.pairing`).
"""

# No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from
# the annotations of the interface's methods, and a postponed ``-> None`` is not one.

import asyncio
import logging

from drivers._aio import Lifecycle
from drivers.ble._dbus import (
    DBusError,
    DBusObjectPath,
    DBusStr,
    DBusUInt16,
    DBusUInt32,
    Message,
    MessageBus,
    MessageType,
    ServiceInterface,
    Variant,
    add_match,
    call_method,
    close_bus,
    connect_system_bus,
    dbus_method,
)
from drivers.ble.agent_types import (
    AgentError,
    AgentRequest,
    Capability,
    ConfirmSource,
    PairingAttempt,
    PairingRefusedError,
    PasskeySource,
    address_of,
)

logger = logging.getLogger(__name__)

#: Where the agent object lives on the hub's connection ("freely definable", Agent API).
AGENT_PATH = "/org/narhub/agent"
BLUEZ = "org.bluez"
AGENT_MANAGER_PATH = "/org/bluez"
_AGENT_MANAGER = "org.bluez.AgentManager1"
_DEVICE = "org.bluez.Device1"
_PROPERTIES = "org.freedesktop.DBus.Properties"
_REJECTED = "org.bluez.Error.Rejected"
_BLUEZ_OWNER_RULE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged',arg0='org.bluez'"
)
_CANCELED = "org.bluez.Error.Canceled"
#: The largest passkey (Agent API, RequestPasskey: "a numeric value between 0-999999").
MAX_PASSKEY = 999_999


class _Agent1(ServiceInterface):
    """``org.bluez.Agent1`` (BlueZ ``doc/org.bluez.Agent.rst``)."""

    def __init__(self, owner: "PairingAgent") -> None:
        super().__init__("org.bluez.Agent1")
        self._owner = owner

    @dbus_method()
    def Release(self) -> None:  # noqa: N802 - D-Bus member names
        """bluetoothd unregistered the agent."""
        self._owner.registered = False

    @dbus_method()
    def RequestPinCode(self, device: DBusObjectPath) -> DBusStr:  # noqa: N802
        """BR/EDR legacy PIN: never for LE health devices."""
        self._owner.refuse(device, "RequestPinCode", "PIN codes are BR/EDR legacy pairing")
        raise AssertionError("unreachable")  # pragma: no cover

    @dbus_method()
    def DisplayPinCode(self, device: DBusObjectPath, pincode: DBusStr) -> None:  # noqa: N802
        """BR/EDR legacy PIN display: refused."""
        self._owner.refuse(device, "DisplayPinCode", "PIN codes are BR/EDR legacy pairing")

    @dbus_method()
    async def RequestPasskey(self, device: DBusObjectPath) -> DBusUInt32:  # noqa: N802
        """The passkey the device displays, as the technician typed it."""
        return await self._owner.passkey_for(device)

    @dbus_method()
    def DisplayPasskey(  # noqa: N802
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> None:
        """The device types the passkey the hub shows (a keyboard device; noted only)."""
        self._owner.note(device, "DisplayPasskey", granted=True)

    @dbus_method()
    async def RequestConfirmation(  # noqa: N802
        self, device: DBusObjectPath, passkey: DBusUInt32
    ) -> None:
        """Numeric comparison: granted only when the technician confirms the numbers match."""
        await self._owner.confirm_for(device, passkey)

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> None:  # noqa: N802
        """Just Works asked to be authorised: only for the device being paired."""
        self._owner.expected(device, "RequestAuthorization")
        self._owner.note(device, "RequestAuthorization", granted=True)

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr) -> None:  # noqa: N802
        """Incoming profile connections: the hub accepts none."""
        self._owner.refuse(device, "AuthorizeService", "the hub accepts no incoming profile")

    @dbus_method()
    def Cancel(self) -> None:  # noqa: N802
        """bluetoothd gave up on the pending request."""
        attempt = self._owner.attempt
        if attempt is not None:
            attempt.requests.append(AgentRequest("Cancel", granted=False, refused_because=None))


class PairingAgent(Lifecycle):
    """The hub's ``org.bluez.Agent1``, registered while the context is entered.

    ``passkey`` and ``confirm`` are how the technician answers; without them the agent
    refuses passkey entry and numeric comparison (a device that needs them is then paired
    with ``narhub ble pair --passkey``). Pairings are one at a time (:meth:`pair`).
    """

    def __init__(
        self,
        *,
        capability: Capability = Capability.KEYBOARD_DISPLAY,
        passkey: PasskeySource | None = None,
        confirm: ConfirmSource | None = None,
        bus_address: str | None = None,
        path: str = AGENT_PATH,
        default: bool = True,
    ) -> None:
        self.capability = capability
        self._passkey = passkey
        self._confirm = confirm
        self._bus_address = bus_address
        self.path = path
        self._default = default
        self._bus: MessageBus | None = None
        self._interface = _Agent1(self)
        self._lock = asyncio.Lock()
        #: True while BlueZ holds the registration.
        self.registered = False
        #: The pairing under way (set by :meth:`pair`).
        self.attempt: PairingAttempt | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Register (what entering ``async with`` does): :meth:`ensure_registered`."""
        await self.ensure_registered()

    async def stop(self) -> None:
        """Unregister and disconnect (what leaving ``async with`` does): :meth:`close`."""
        await self.close()

    async def ensure_registered(self) -> None:
        """Connect and register, or register again: bluetoothd forgets its agents when it
        restarts (its name ``org.bluez`` changes owner, which the agent watches)."""
        if self._bus is None or not self._bus.connected:
            await self.close()
            self._bus = await self._connect()
        if self.registered:
            return
        try:
            await self._manager_call("RegisterAgent", "os", [self.path, str(self.capability)])
            self.registered = True
            if self._default:
                await self._manager_call("RequestDefaultAgent", "o", [self.path])
        except BaseException:
            await self.close()
            raise
        logger.debug("pairing agent registered (%s)", self.capability)

    async def _connect(self) -> MessageBus:
        try:
            bus = await connect_system_bus(self._bus_address)
        except (OSError, ValueError) as exc:
            raise AgentError(
                f"no D-Bus system bus ({exc})",
                "is dbus running? (systemctl status dbus); "
                "DBUS_SYSTEM_BUS_ADDRESS names another bus when set",
            ) from exc
        bus.export(self.path, self._interface)
        bus.add_message_handler(self._on_signal)
        reply = await add_match(bus, _BLUEZ_OWNER_RULE)
        if reply.message_type == MessageType.ERROR:
            logger.debug("AddMatch for bluetoothd's name: %s", reply.error_name)
        return bus

    def _on_signal(self, msg: Message) -> None:
        """bluetoothd went away or restarted: the registration is gone with it."""
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.body
            and msg.body[0] == BLUEZ
        ):
            self.registered = False

    async def close(self) -> None:
        """Unregister (when still registered) and disconnect."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        try:
            if self.registered and bus.connected:
                reply = await _call(
                    bus, AGENT_MANAGER_PATH, _AGENT_MANAGER, "UnregisterAgent", "o", [self.path]
                )
                if reply.message_type == MessageType.ERROR:
                    logger.debug("UnregisterAgent: %s", reply.error_name)
        finally:
            self.registered = False
            bus.remove_message_handler(self._on_signal)
            bus.unexport(self.path, self._interface)
            await close_bus(bus)

    async def _manager_call(self, member: str, signature: str, body: list[object]) -> None:
        reply = await _call(self.bus, AGENT_MANAGER_PATH, _AGENT_MANAGER, member, signature, body)
        if reply.message_type == MessageType.ERROR:
            raise _registration_error(member, str(reply.error_name), reply.body)

    @property
    def bus(self) -> MessageBus:
        """The agent's own D-Bus connection."""
        if self._bus is None:
            raise AgentError("the agent is not running", "use it inside `async with`")
        return self._bus

    # --- pairing -------------------------------------------------------------------------

    async def pair(self, path: str) -> PairingAttempt:
        """``Device1.Pair`` on the device at ``path``, answered by this agent.

        The device is marked trusted first (Device API, "Trusted"), as bleak does, so that
        BlueZ reconnects it without asking. Returns what the agent was asked; a refusal by
        BlueZ raises :class:`PairingRefusedError` with the D-Bus error name and that record.
        """
        async with self._lock:
            attempt = PairingAttempt(address_of(path))
            self.attempt = attempt
            try:
                await self._device_call(
                    path, _PROPERTIES, "Set", "ssv", [_DEVICE, "Trusted", Variant("b", True)]
                )
                await self._device_call(path, _DEVICE, "Pair", "", [])
            except PairingRefusedError as exc:
                exc.attempt = attempt
                raise
            finally:
                self.attempt = None
            return attempt

    async def _device_call(
        self, path: str, interface: str, member: str, signature: str, body: list[object]
    ) -> None:
        reply = await _call(self.bus, path, interface, member, signature, body)
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise PairingRefusedError(str(reply.error_name), detail)

    # --- what the interface asks ---------------------------------------------------------

    def expected(self, device: str, method: str) -> PairingAttempt:
        """The attempt for ``device``; refuses a request for any other device."""
        attempt = self.attempt
        if attempt is None or attempt.address != address_of(device):
            self.refuse(device, method, "not the device being paired")
        assert attempt is not None
        return attempt

    def note(self, device: str, method: str, *, granted: bool, because: str | None = None) -> None:
        """Keep a request in the attempt's record (when it is for the device being paired)."""
        attempt = self.attempt
        if attempt is not None and attempt.address == address_of(device):
            attempt.requests.append(AgentRequest(method, granted, because))

    def refuse(self, device: str, method: str, because: str) -> None:
        """Answer ``org.bluez.Error.Rejected`` (Agent API, "Possible errors")."""
        self.note(device, method, granted=False, because=because)
        logger.info("pairing agent refused %s: %s", method, because)
        raise DBusError(_REJECTED, because)

    async def passkey_for(self, device: str) -> int:
        """RequestPasskey: the technician's number for the device being paired."""
        attempt = self.expected(device, "RequestPasskey")
        if self._passkey is None:
            self.refuse(device, "RequestPasskey", "no passkey was given")
        assert self._passkey is not None
        try:
            passkey = await self._passkey(attempt.address)
        except ValueError as exc:  # what was typed is not a passkey
            self.refuse(device, "RequestPasskey", str(exc))
        if passkey is None:
            self.refuse(device, "RequestPasskey", "no passkey was given")
        assert passkey is not None
        if not 0 <= passkey <= MAX_PASSKEY:
            self.refuse(device, "RequestPasskey", "a passkey has six digits (0-999999)")
        self.note(device, "RequestPasskey", granted=True)
        return passkey

    async def confirm_for(self, device: str, passkey: int) -> None:
        """RequestConfirmation: granted only when the technician says the numbers match."""
        attempt = self.expected(device, "RequestConfirmation")
        confirmed = self._confirm is not None and await self._confirm(attempt.address, passkey)
        if not confirmed:
            self.refuse(device, "RequestConfirmation", "the number was not confirmed")
        self.note(device, "RequestConfirmation", granted=True)


def _registration_error(member: str, error_name: str, body: list[object]) -> AgentError:
    detail = body[0] if body and isinstance(body[0], str) else ""
    said = f"{member} answered {error_name}" + (f" ({detail})" if detail else "")
    if error_name == "org.freedesktop.DBus.Error.ServiceUnknown":
        return AgentError(
            f"bluetoothd is not on the bus ({said})",
            "start it (systemctl start bluetooth) and check the adapter (bluetoothctl show)",
        )
    if error_name == "org.bluez.Error.AlreadyExists":
        return AgentError(said, "another agent of this process is registered; close it first")
    if error_name == "org.freedesktop.DBus.Error.AccessDenied":
        return AgentError(
            said, "the hub's user may not talk to bluetoothd: add it to the bluetooth group"
        )
    return AgentError(said, "check bluetoothd's log (journalctl -u bluetooth)")


async def _call(
    bus: MessageBus, path: str, interface: str, member: str, signature: str, body: list[object]
) -> Message:
    """Call a BlueZ method; the reply, an error reply included."""
    return await call_method(bus, BLUEZ, path, interface, member, signature, body)
