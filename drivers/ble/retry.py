"""Retries with jittered exponential backoff, chosen by the kind of failure.

As in Home Assistant's bleak-retry-connector: a device that is asleep or out of range is
retried patiently, a link that dropped mid-transfer is resumed at once, a stalled device
gets room, and a pairing failure waits long (the patient has to press a button).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

from drivers.ble._bleak import (
    BleakDBusError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from drivers.errors import DriverError


class Failure(enum.Enum):
    """Why a session ended badly."""

    UNREACHABLE = "unreachable"  # not advertising, out of range, refused the connection
    LINK_LOST = "link-lost"  # the link dropped during the session
    STALLED = "stalled"  # a GATT operation or a RACP procedure timed out
    AUTHENTICATION = "authentication"  # pairing failed or the bond is refused
    PROTOCOL = "protocol"  # the device answered with an error (ATT, RACP)
    BACKPRESSURE = "backpressure"  # the pipeline's queue was full


#: (initial delay, cap) in seconds per failure.
DELAYS_S: dict[Failure, tuple[float, float]] = {
    Failure.UNREACHABLE: (1.0, 60.0),
    Failure.LINK_LOST: (0.05, 5.0),
    Failure.STALLED: (2.0, 120.0),
    Failure.AUTHENTICATION: (10.0, 600.0),
    Failure.PROTOCOL: (5.0, 300.0),
    Failure.BACKPRESSURE: (1.0, 30.0),
}

_AUTH_CODES = frozenset(
    {
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHORIZATION,
    }
)


class SessionError(DriverError):
    """A session ended for a classified reason (``failure``)."""

    def __init__(self, failure: Failure, reason: str) -> None:
        self.failure = failure
        self.reason = reason
        super().__init__(f"{failure.value}: {reason}")


def is_auth_error(exc: BaseException) -> bool:
    """True for ATT insufficient authentication/encryption (Core Spec Vol 3 Part F 3.4.1.1).

    BlueZ reports those ATT errors as ``org.bluez.Error.NotPermitted`` "Not paired"
    (``create_gatt_dbus_error`` in BlueZ's src/gatt-client.c), which bleak passes on as a
    :class:`BleakDBusError`, not as a GATT protocol error.
    """
    if isinstance(exc, BleakDBusError):
        return exc.dbus_error == "org.bluez.Error.NotPermitted" and (
            exc.dbus_error_details == "Not paired"
        )
    return isinstance(exc, BleakGATTProtocolError) and exc.code in _AUTH_CODES


def classify(exc: BaseException) -> Failure | None:
    """The failure class of an exception from a session, ``None`` when not a known one."""
    if isinstance(exc, SessionError):
        return exc.failure
    if isinstance(exc, TimeoutError):
        return Failure.STALLED
    if is_auth_error(exc):
        return Failure.AUTHENTICATION
    if isinstance(exc, BleakGATTProtocolError):
        return Failure.PROTOCOL
    if isinstance(exc, (BleakError, DriverError, ConnectionError)):
        return Failure.UNREACHABLE
    return None


@dataclass
class RetryPolicy:
    """Per-device backoff state: delays grow per failure class, reset after a success.

    Delays use "equal jitter" (half fixed, half uniform) so a fleet spreads out but never
    retries in a hot loop. ``scale`` shrinks every delay (tests, the bench).
    """

    scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: dict[Failure, int] = field(default_factory=dict)

    def delay_s(self, failure: Failure) -> float:
        """The delay before the next attempt after ``failure``."""
        initial, cap = DELAYS_S[failure]
        n = self.attempts.get(failure, 0)
        self.attempts[failure] = n + 1
        ceiling = min(cap, initial * (2**n)) * self.scale
        return float(ceiling / 2 + self.rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        """A session succeeded."""
        self.attempts.clear()
