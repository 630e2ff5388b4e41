"""Sensor-link messages, version 1 (docs/protocols/sensor-link.md §3, CDDL in
``docs/protocols/sensor-link.cddl``).

Each message is a frozen dataclass; the field names are the spec's names. Integer map keys
and type numbers live here and nowhere else on the CPython side. Values are integers scaled by
the sensor kind's decimal exponent (§4), so no floating point crosses the link.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

PROTOCOL_VERSION = 1


class MessageType(enum.IntEnum):
    """Key ``0`` of every message map (spec §3.1)."""

    HELLO = 1
    READINGS = 2
    ACK = 3
    TIME = 4
    CONFIG = 5
    PING = 6
    PONG = 7
    REBOOT = 8
    ERROR = 9


class Capability(enum.IntFlag):
    """HELLO ``capabilities`` bits (spec §3.2)."""

    FLASH_LOG = 1
    TIME = 2
    CONFIG = 4
    REBOOT = 8


class SelfTest(enum.IntFlag):
    """HELLO ``selftest`` bits: a set bit is a *failed* boot check (spec §3.2)."""

    CODEC = 1
    FLASH = 2
    TEMPERATURE_HUMIDITY = 4
    PRESSURE_PAD = 8


class ErrorCode(enum.IntEnum):
    """ERROR ``code`` values (spec §3.10)."""

    MALFORMED = 1
    UNSUPPORTED_VERSION = 2
    OUT_OF_RANGE = 3
    UNSUPPORTED = 4


@dataclass(frozen=True, slots=True)
class SensorKind:
    """One row of the sensor-kind table (spec §4): what a reading's integer value means.

    ``value x 10**exponent`` is the quantity in the UCUM unit ``unit``.
    """

    code: int
    name: str
    unit: str
    exponent: int


#: The sensor-kind table (spec §4). Unknown codes are kept as numbers, never rejected.
SENSOR_KINDS: dict[int, SensorKind] = {
    k.code: k
    for k in (
        SensorKind(1, "air-temperature", "Cel", -2),
        SensorKind(2, "relative-humidity", "%", -2),
        SensorKind(3, "motion-events", "{events}", 0),
        SensorKind(4, "door-open", "1", 0),
        SensorKind(5, "pressure-pad-load", "%", -2),
        SensorKind(6, "occupancy", "1", 0),
    )
}


@dataclass(frozen=True, slots=True)
class SensorRef:
    """A sensor on a board: its kind code (spec §4) and instance index."""

    kind: int
    index: int


@dataclass(frozen=True, slots=True)
class Hello:
    """Board HELLO (spec §3.2): sent at boot, when asked, and while unlinked."""

    version: int
    board_id: str
    boot_id: int
    firmware: str
    sensors: tuple[SensorRef, ...]
    capabilities: int
    max_frame: int
    selftest: int


@dataclass(frozen=True, slots=True)
class HubHello:
    """Hub HELLO (spec §3.2): asks the board for its HELLO."""

    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One reading inside READINGS (spec §3.3); its sequence number is implied by position.

    Attributes:
        kind: sensor-kind code (spec §4); unknown codes are kept.
        index: sensor instance on the board.
        mono_ms: board monotonic time since boot, ms.
        value: integer value; the quantity is ``value x 10**exponent`` of the kind's unit.
        wall_ms: Unix time in ms (UTC) if the board had a TIME sync in that boot, else None.
    """

    kind: int
    index: int
    mono_ms: int
    value: int
    wall_ms: int | None = None

    def quantity(self) -> tuple[Decimal, str] | None:
        """The exact quantity and UCUM unit, or ``None`` for an unknown kind."""
        k = SENSOR_KINDS.get(self.kind)
        if k is None:
            return None
        return Decimal(self.value).scaleb(k.exponent), k.unit


@dataclass(frozen=True, slots=True)
class Readings:
    """READINGS (spec §3.3): contiguous readings ``first_seq, first_seq + 1, ...`` of one boot.

    ``base_seq`` is the oldest reading of ``boot_id`` the board still holds unacknowledged:
    everything below it was acknowledged (or dropped and counted) earlier.
    """

    boot_id: int
    first_seq: int
    base_seq: int
    readings: tuple[ReadingRow, ...]


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK (spec §3.4): every reading of ``boot_id`` with sequence <= ``seq`` is committed."""

    boot_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class Time:
    """TIME (spec §3.5): the hub's wall clock, Unix ms UTC, sent only when the hub is synced."""

    wall_ms: int


@dataclass(frozen=True, slots=True)
class Config:
    """CONFIG (spec §3.6): hub to board sets, board to hub reports the whole configuration.

    Attributes:
        intervals_ms: ``(kind, sampling interval ms)`` pairs, sorted by kind.
        thresholds: ``(kind, threshold in the kind's scaled integer units)`` pairs.
    """

    intervals_ms: tuple[tuple[int, int], ...] = ()
    thresholds: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Ping:
    """PING (spec §3.7)."""

    nonce: int


@dataclass(frozen=True, slots=True)
class Pong:
    """PONG (spec §3.8): the nonce and the board's counters."""

    nonce: int
    pending: int
    dropped: int
    bad_frames: int
    unknown: int


@dataclass(frozen=True, slots=True)
class Reboot:
    """REBOOT (spec §3.9): the board flushes its log and resets."""


@dataclass(frozen=True, slots=True)
class Error:
    """ERROR (spec §3.10): a reply to a message that could not be applied."""

    code: int
    about: int


BoardMessage = Hello | Readings | Config | Pong | Error
HubMessage = HubHello | Ack | Time | Config | Ping | Reboot | Error
Message = Hello | HubHello | Readings | Ack | Time | Config | Ping | Pong | Reboot | Error

#: The type number (key ``0``) of each message class; both HELLOs are type 1 (spec §3.1's
#: table of messages).
MESSAGE_TYPES: dict[type, MessageType] = {
    Hello: MessageType.HELLO,
    HubHello: MessageType.HELLO,
    Readings: MessageType.READINGS,
    Ack: MessageType.ACK,
    Time: MessageType.TIME,
    Config: MessageType.CONFIG,
    Ping: MessageType.PING,
    Pong: MessageType.PONG,
    Reboot: MessageType.REBOOT,
    Error: MessageType.ERROR,
}


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A well-formed message whose type this side does not handle; ignored and counted."""

    type: int
