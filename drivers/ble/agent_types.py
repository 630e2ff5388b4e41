"""The pairing agent's types, without D-Bus: what the hub's pairing code and the central need
to name without loading a D-Bus library (``drivers/ble/agent.py`` imports ``dbus_fast``
through ``drivers/ble/_dbus.py``, and only a BlueZ backend needs it: BlueZ Agent API,
``doc/org.bluez.Agent.rst``, ``doc/org.bluez.AgentManager.rst``)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from drivers.errors import DriverError


class Capability(enum.StrEnum):
    """IO capabilities an agent registers with (AgentManager API, RegisterAgent)."""

    DISPLAY_ONLY = "DisplayOnly"
    DISPLAY_YES_NO = "DisplayYesNo"
    KEYBOARD_ONLY = "KeyboardOnly"
    NO_INPUT_NO_OUTPUT = "NoInputNoOutput"
    KEYBOARD_DISPLAY = "KeyboardDisplay"


#: The passkey the device shows, asked for one device address; ``None``: none to give.
PasskeySource = Callable[[str], Awaitable[int | None]]
#: Whether the number shown for a device (address, number) matches the device's.
ConfirmSource = Callable[[str, int], Awaitable[bool]]


class AgentError(DriverError, ConnectionError):
    """The agent could not be registered with BlueZ (``reason``: what BlueZ said)."""

    def __init__(self, reason: str, hint: str) -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(f"pairing agent not registered: {reason}. {hint}")


@dataclass(frozen=True)
class AgentRequest:
    """One call BlueZ made to the agent: the Agent1 method, and whether it was granted."""

    method: str
    granted: bool
    #: Why a request was refused (``None`` when granted).
    refused_because: str | None = None


@dataclass
class PairingAttempt:
    """The requests BlueZ made while one device was being paired."""

    address: str
    requests: list[AgentRequest] = field(default_factory=list)

    def asked(self, method: str) -> AgentRequest | None:
        """The last request of ``method`` (an Agent1 method name), if any."""
        for request in reversed(self.requests):
            if request.method == method:
                return request
        return None


def address_of(device_path: str) -> str:
    """``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF`` -> ``AA:BB:CC:DD:EE:FF`` (Device API path)."""
    tail = device_path.rsplit("/", 1)[-1]
    return tail.removeprefix("dev_").replace("_", ":").upper()


def device_path(address: str, adapter: str = "hci0") -> str:
    """The BlueZ object path of a device (Device API: ``/org/bluez/{hciN}/dev_{BDADDR}``)."""
    return f"/org/bluez/{adapter}/dev_{address.upper().replace(':', '_')}"


class PairingRefusedError(DriverError, ConnectionError):
    """``Device1.Pair`` answered with a D-Bus error (``error_name``, BlueZ's text)."""

    def __init__(self, error_name: str, detail: str) -> None:
        self.error_name = error_name
        self.detail = detail
        #: What the agent was asked during the attempt (set by :meth:`PairingAgent.pair`).
        self.attempt: PairingAttempt | None = None
        super().__init__(f"{error_name}: {detail}" if detail else error_name)
