"""Pairing (bonding) a device, through the hub's agent on BlueZ, with failures explained.

Two entry points, on every backend:

* :func:`pair_client`: pair the device a :class:`bleak.BleakClient` is connected to (what a
  session does when a device needs a bond). On BlueZ it goes through a registered
  :class:`~drivers.ble.agent.PairingAgent`; there is no pairing without one.
* :func:`bond`: what the technician's ``narhub ble pair`` does first: find the device,
  forget any old bond (a device whose battery was changed lost its keys, and a stale bond
  only fails), connect, pair with the technician's passkey or confirmation, disconnect.

A BlueZ refusal becomes a :class:`PairingFailedError` that names BlueZ's error (the names of
``doc/org.bluez.Device.rst``, "void Pair()", "Possible errors"), says in plain words what
happened, and what to do, using what the agent was asked to tell the cases apart (a wrong
passkey and a device that needs one both come back as ``AuthenticationFailed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.ble._bleak import BleakClient, BleakError, BleakScanner, BLEDevice
from drivers.ble.agent_types import (
    AgentError,
    Capability,
    ConfirmSource,
    PairingAttempt,
    PairingRefusedError,
    PasskeySource,
    device_path,
)
from drivers.ble.backends import BleBackend
from drivers.errors import DriverError

if TYPE_CHECKING:
    from drivers.ble.agent import PairingAgent

logger = logging.getLogger(__name__)

_ERR = "org.bluez.Error."

#: BlueZ's Pair errors: (what happened, what to do). ``new_authentication_return`` in
#: BlueZ's src/device.c gives the kernel status behind each name.
BLUEZ_REASONS: dict[str, tuple[str, str]] = {
    _ERR + "AuthenticationFailed": (
        "the device and the hub did not agree on the keys",
        "put the device in pairing mode (see its manual), keep it near the hub and pair again",
    ),
    _ERR + "AuthenticationRejected": (
        "the device rejected the pairing request",
        "put the device in pairing mode (see its manual) and pair again",
    ),
    _ERR + "AuthenticationCanceled": (
        "the link dropped or the pairing was cancelled before it completed",
        "keep the device awake and within a few metres of the hub, and pair again",
    ),
    _ERR + "AuthenticationTimeout": (
        "the pairing was not completed in time",
        "pair again and enter the passkey as soon as the device shows it",
    ),
    _ERR + "ConnectionAttemptFailed": (
        "the hub could not connect to the device",
        "wake the device (take a measurement or press its button), keep it near the hub, "
        "and pair again",
    ),
    _ERR + "AlreadyExists": (
        "BlueZ already holds a bond with the device",
        "pair again: `narhub ble pair` removes the old bond first",
    ),
    _ERR + "InProgress": (
        "another pairing or connection with the device is under way",
        "wait a few seconds and pair again",
    ),
    _ERR + "NotReady": (
        "the Bluetooth adapter is not ready (powered off?)",
        "power it on (bluetoothctl power on) and check `narhub doctor`",
    ),
    _ERR + "Failed": (
        "BlueZ could not pair",
        "pair again; if it keeps failing, restart bluetoothd (systemctl restart bluetooth)",
    ),
    "org.freedesktop.DBus.Error.UnknownObject": (
        "BlueZ no longer knows the device (it stopped advertising)",
        "wake the device and pair again",
    ),
}


class PairingFailedError(DriverError, ConnectionError):
    """Pairing with ``address`` failed: ``bluez_error`` (a D-Bus error name, or ``None`` when
    BlueZ was not reached), ``reason`` in plain words, ``hint`` the fix."""

    def __init__(self, address: str, bluez_error: str | None, reason: str, hint: str) -> None:
        self.address = address
        self.bluez_error = bluez_error
        self.reason = reason
        self.hint = hint
        named = f" ({bluez_error})" if bluez_error else ""
        # No address in the message: it may reach a log at INFO (the field has it).
        super().__init__(f"pairing failed: {reason}{named}. {hint}")


def explain(address: str, refused: PairingRefusedError) -> PairingFailedError:
    """The technician's reading of a BlueZ refusal, using what the agent was asked."""
    error = refused.error_name
    attempt = refused.attempt or PairingAttempt(address)
    reason, hint = BLUEZ_REASONS.get(
        error, ("BlueZ refused the pairing", "pair again; see journalctl -u bluetooth")
    )
    passkey = attempt.asked("RequestPasskey")
    comparison = attempt.asked("RequestConfirmation")
    if passkey is not None and not passkey.granted:
        reason = "the device asks for the 6-digit passkey it shows, and none was given" + (
            f" ({passkey.refused_because})" if passkey.refused_because else ""
        )
        hint = "pair with `narhub ble pair ADDRESS --kind KIND --passkey` and type the number"
    elif passkey is not None and error == _ERR + "AuthenticationFailed":
        reason = "the device did not accept the passkey (a wrong number?)"
        hint = (
            "pair again and type the 6-digit number the device shows then "
            "(it changes at each attempt)"
        )
    elif comparison is not None and not comparison.granted:
        reason = (
            "the device asks to compare a 6-digit number (numeric comparison), "
            "and the technician did not confirm it"
        )
        hint = "pair again with `--passkey` and answer yes only if the device shows the same number"
    return PairingFailedError(address, error, reason, hint)


class PasskeyFormatError(DriverError, ValueError):
    """A passkey that is not the 6-digit number a device shows (``where`` it came from)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}; expected the 6-digit number the device shows")


def parse_passkey(text: str, where: str = "passkey") -> int:
    """A passkey as typed or stored: 1 to 6 digits (Agent API: "between 0-999999")."""
    digits = text.strip()
    if not digits.isascii() or not digits.isdigit():
        raise PasskeyFormatError(where, "not a number")
    if len(digits) > 6:
        raise PasskeyFormatError(where, f"{len(digits)} digits")
    return int(digits)


@dataclass(frozen=True)
class PairingInput:
    """What the person pairing can answer: the passkey a device shows, a number to compare.

    Empty in the hub's service (nobody is there): a device that needs a passkey is then
    refused, with the hint to pair it with ``narhub ble pair --passkey``.
    """

    passkey: PasskeySource | None = None
    confirm: ConfirmSource | None = None

    @classmethod
    def from_file(cls, path: Path) -> PairingInput:
        """The passkey written in ``path`` (a device with a fixed passkey on its label); read
        and checked now, before any radio work. Numeric comparison is refused."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PasskeyFormatError(str(path), f"cannot be read ({exc.strerror})") from exc
        passkey = parse_passkey(text, str(path))

        async def fixed(_address: str) -> int:
            return passkey

        return cls(passkey=fixed)

    @classmethod
    def asking(
        cls,
        ask_passkey: Callable[[str], str],
        ask_confirm: Callable[[str, int], bool],
    ) -> PairingInput:
        """Ask a person, with blocking prompts run off the event loop: ``ask_passkey(address)``
        returns what they typed, ``ask_confirm(address, number)`` whether the device shows
        that number."""

        async def passkey(address: str) -> int:
            typed = await asyncio.to_thread(ask_passkey, address)
            return parse_passkey(typed, "the passkey typed")

        async def confirm(address: str, number: int) -> bool:
            return await asyncio.to_thread(ask_confirm, address, number)

        return cls(passkey=passkey, confirm=confirm)

    def agent(self, capability: Capability = Capability.KEYBOARD_DISPLAY) -> PairingAgent:
        """An agent answering with these sources (enter it with ``async with``). Its D-Bus
        library loads here, with the first BlueZ pairing agent, not with the hub."""
        from drivers.ble.agent import PairingAgent  # noqa: PLC0415 - BlueZ only

        return PairingAgent(capability=capability, passkey=self.passkey, confirm=self.confirm)


def bluez_path(device: BLEDevice | None, address: str) -> str:
    """The BlueZ object path of a device: bleak's own (``details["path"]``) when known."""
    details: Any = None if device is None else device.details
    if isinstance(details, dict) and isinstance(details.get("path"), str):
        return str(details["path"])
    return device_path(address)


async def pair_client(
    client: BleakClient,
    backend: BleBackend,
    agent: PairingAgent | None,
    *,
    device: BLEDevice | None = None,
) -> None:
    """Pair the device ``client`` is connected to.

    On a backend that pairs through BlueZ the ``agent`` must be registered: BlueZ's
    ``Device1.Pair`` is called from the agent's connection, so this agent answers it.
    Other backends (the emulated radio) pair through bleak's ``pair()``.
    """
    address = client.address.upper()
    if not backend.needs_agent:
        try:
            await client.pair()
        except BleakError as exc:
            raise PairingFailedError(
                address, None, f"the device refused to pair ({exc})", "pair again"
            ) from exc
        return
    if agent is None:
        raise PairingFailedError(
            address,
            None,
            "no pairing agent is registered with BlueZ",
            "this is a bug in the hub: pairing must run inside a PairingAgent",
        )
    try:
        await agent.ensure_registered()
    except AgentError as exc:
        raise PairingFailedError(address, None, exc.reason, exc.hint) from exc
    try:
        await agent.pair(bluez_path(device, address))
    except PairingRefusedError as exc:
        if exc.error_name == _ERR + "AlreadyExists":
            return  # bonded already (bleak's own pair() returns early likewise)
        raise explain(address, exc) from exc


async def bond(
    backend: BleBackend,
    address: str,
    pairing: PairingInput,
    *,
    scan_timeout_s: float = 20.0,
    connect_timeout_s: float = 20.0,
    pairing_timeout_s: float = 60.0,
) -> None:
    """Find, unpair (a stale bond only fails), connect to and pair with one device.

    Raises :class:`PairingFailedError` when the device is not found, cannot be reached, or
    the pairing is refused.
    """
    address = address.upper()
    async with contextlib.AsyncExitStack() as stack:
        agent = None
        if backend.needs_agent:
            agent = await stack.enter_async_context(pairing.agent())
        device = await _find(backend, address, scan_timeout_s)
        await _forget(backend, device, connect_timeout_s)
        device = await _find(backend, address, scan_timeout_s)
        client = BleakClient(device, timeout=connect_timeout_s, backend=backend.client_cls)
        try:
            await client.connect()
        except (BleakError, TimeoutError) as exc:
            raise PairingFailedError(
                address,
                None,
                f"the hub could not connect ({exc})",
                BLUEZ_REASONS[_ERR + "ConnectionAttemptFailed"][1],
            ) from exc
        try:
            async with asyncio.timeout(pairing_timeout_s):
                await pair_client(client, backend, agent, device=device)
        except TimeoutError as exc:
            raise PairingFailedError(
                address, None, *BLUEZ_REASONS[_ERR + "AuthenticationTimeout"]
            ) from exc
        finally:
            with contextlib.suppress(BleakError, TimeoutError):
                async with asyncio.timeout(connect_timeout_s):
                    await client.disconnect()
    logger.info("a device was paired (bond stored)")


async def _find(backend: BleBackend, address: str, timeout_s: float) -> BLEDevice:
    kwargs: dict[str, Any] = {"timeout": timeout_s}
    if backend.scanner_cls is not None:
        kwargs["backend"] = backend.scanner_cls
    device = await BleakScanner.find_device_by_address(address, **kwargs)
    if device is None:
        raise PairingFailedError(
            address,
            None,
            f"the device was not heard within {timeout_s:g} s",
            "wake the device (take a measurement or hold its Bluetooth button), keep it near "
            "the hub, and pair again",
        )
    return device


async def _forget(backend: BleBackend, device: BLEDevice, timeout_s: float) -> None:
    """Remove any bond the adapter holds for the device (BlueZ: ``Adapter1.RemoveDevice``)."""
    client = BleakClient(device, timeout=timeout_s, backend=backend.client_cls)
    with contextlib.suppress(BleakError):
        await client.unpair()
