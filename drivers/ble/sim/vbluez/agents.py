"""``org.bluez.AgentManager1`` of the virtual BlueZ, and the calls back to the agents.

As bluetoothd (``doc/org.bluez.AgentManager.rst``): one agent per D-Bus connection,
registered with a capability ("" means ``KeyboardDisplay``); ``RequestDefaultAgent`` makes
it the default (the last one asked wins; when it goes, the one before is default again); an
agent disappears with its connection. ``Device1.Pair`` uses the caller's own agent, else
the default one, and fails without either (``doc/org.bluez.Device.rst``, "void Pair()").

:class:`AgentDelegate` is the bumble pairing delegate of the virtual adapter during one
``Pair``: bumble's SMP questions become Agent1 calls (``doc/org.bluez.Agent.rst``) —
passkey entry becomes ``RequestPasskey``, numeric comparison ``RequestConfirmation``, a
passkey to show ``DisplayPasskey``. An agent's error answer is a negative reply, and the
pairing then fails (``passkey_cb`` / ``confirm_cb`` in BlueZ's src/device.c). Just Works
started by the adapter asks nothing, as the kernel does not confirm locally initiated
pairing (``tk_request`` in Linux net/bluetooth/smp.c).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from drivers.ble._dbus import DBusError, Message, MessageBus, MessageType, call_method
from drivers.ble.sim._bumble import PairingDelegate
from drivers.ble.sim.vbluez.objects import Interface, Method

logger = logging.getLogger(__name__)

_AGENT = "org.bluez.Agent1"
#: bluetoothd waits this long for an agent's answer (``REQUEST_TIMEOUT`` in src/agent.c).
AGENT_TIMEOUT_S = 60.0

CAPABILITIES = {
    "": PairingDelegate.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT,
    "KeyboardDisplay": PairingDelegate.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT,
    "DisplayOnly": PairingDelegate.DISPLAY_OUTPUT_ONLY,
    "DisplayYesNo": PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
    "KeyboardOnly": PairingDelegate.KEYBOARD_INPUT_ONLY,
    "NoInputNoOutput": PairingDelegate.NO_OUTPUT_NO_INPUT,
}


@dataclass(frozen=True)
class Agent:
    """A registered agent: its connection's unique name, object path and capability."""

    owner: str
    path: str
    capability: str


def _err(name: str, text: str) -> DBusError:
    return DBusError(f"org.bluez.Error.{name}", text)


class AgentManager:
    """The registered agents, and ``org.bluez.AgentManager1`` at ``/org/bluez``."""

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self._defaults: list[str] = []

    def interface(self) -> Interface:
        """``org.bluez.AgentManager1``."""
        return Interface(
            "org.bluez.AgentManager1",
            methods={
                "RegisterAgent": Method("os", "", self._register),
                "UnregisterAgent": Method("o", "", self._unregister),
                "RequestDefaultAgent": Method("o", "", self._request_default),
            },
        )

    def _register(self, msg: Message) -> list[Any]:
        path, capability = msg.body
        if capability not in CAPABILITIES:
            raise _err("InvalidArguments", "Invalid Arguments in method call")
        if msg.sender in self.agents:
            raise _err("AlreadyExists", "Already Exists")
        self.agents[str(msg.sender)] = Agent(str(msg.sender), str(path), str(capability))
        return []

    def _unregister(self, msg: Message) -> list[Any]:
        agent = self.agents.get(str(msg.sender))
        if agent is None or agent.path != msg.body[0]:
            raise _err("DoesNotExist", "Does Not Exist")
        self.forget(agent.owner)
        return []

    def _request_default(self, msg: Message) -> list[Any]:
        agent = self.agents.get(str(msg.sender))
        if agent is None or agent.path != msg.body[0]:
            raise _err("DoesNotExist", "Does Not Exist")
        if agent.owner in self._defaults:
            self._defaults.remove(agent.owner)
        self._defaults.append(agent.owner)
        return []

    def forget(self, owner: str) -> None:
        """The agent of ``owner`` is gone (unregistered, or its connection closed)."""
        self.agents.pop(owner, None)
        if owner in self._defaults:
            self._defaults.remove(owner)

    def for_pairing(self, sender: str) -> Agent | None:
        """The caller's own agent, else the default one (Device API, "void Pair()")."""
        own = self.agents.get(sender)
        if own is not None:
            return own
        return self.agents.get(self._defaults[-1]) if self._defaults else None


class AgentDelegate(PairingDelegate):
    """bumble's pairing questions, asked of one agent for one device."""

    def __init__(self, bus: MessageBus, agent: Agent, device_path: str) -> None:
        super().__init__(io_capability=CAPABILITIES[agent.capability])
        self._bus = bus
        self._agent = agent
        self._device = device_path

    async def _ask(self, member: str, signature: str, body: list[Any]) -> Message | None:
        """An Agent1 call; ``None`` when the agent answered with an error (or not at all)."""
        agent = self._agent
        try:
            async with asyncio.timeout(AGENT_TIMEOUT_S):
                reply = await call_method(
                    self._bus, agent.owner, agent.path, _AGENT, member, signature, body
                )
        except TimeoutError:
            await self._cancel()
            return None
        if reply is None or reply.message_type == MessageType.ERROR:
            logger.debug(
                "agent answered %s to %s", None if reply is None else reply.error_name, member
            )
            return None
        return reply

    async def _cancel(self) -> None:
        await call_method(self._bus, self._agent.owner, self._agent.path, _AGENT, "Cancel")

    async def accept(self) -> bool:
        return True

    async def confirm(self, auto: bool = False) -> bool:
        # Just Works started by the adapter: not confirmed by anyone (module docstring).
        return True

    async def get_number(self) -> int | None:
        reply = await self._ask("RequestPasskey", "o", [self._device])
        return None if reply is None else int(reply.body[0])

    async def compare_numbers(self, number: int, digits: int) -> bool:
        reply = await self._ask("RequestConfirmation", "ou", [self._device, number])
        return reply is not None

    async def display_number(self, number: int, digits: int) -> None:
        await self._ask("DisplayPasskey", "ouq", [self._device, number, 0])
