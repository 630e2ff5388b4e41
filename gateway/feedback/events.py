"""What the hub tells the feedback component: small frozen events, never a reading's value.

The hub emits them where things happen (docs/feedback.md, "Events"); the component's
:meth:`~gateway.feedback.component.Feedback.notify` takes them without waiting. Devices are
named by their address here, inside the hub's memory only: the component logs kinds, never
addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.reading import Reading
from protocols.uplink import Priority
from protocols.uplink.device_facts import FLAG_DEVICE_INFO


@dataclass(frozen=True, slots=True)
class ReadingStored:
    """Readings of a paired device are committed to the outbox; ``taken_ms`` is the newest
    one's effective time (epoch ms, as it travels in a batch)."""

    device: str
    taken_ms: int
    continuous: bool = False


@dataclass(frozen=True, slots=True)
class BatchAcknowledged:
    """The broker answered a batch: ``reason_code`` below 0x80 and not 0x10 means a recipient
    took it (MQTT 5.0 section 3.4.2.1). ``message`` is the signed batch, read for which
    devices' readings it carried."""

    message: bytes
    reason_code: int


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """A device reported its battery level (Battery Service, Battery Level 0x2A19)."""

    device: str
    percent: int


@dataclass(frozen=True, slots=True)
class UplinkConnection:
    """The connection to the region came up or went down."""

    connected: bool


@dataclass(frozen=True, slots=True)
class ClockTrust:
    """Whether the hub trusts its wall clock (docs/pipeline.md, "The hub's clock")."""

    trusted: bool


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """A device was seen (connected, advertised) without a reading: it is not silent."""

    device: str


@dataclass(frozen=True, slots=True)
class StatusRequested:
    """Someone pressed the status button."""


FeedbackEvent = (
    ReadingStored
    | BatchAcknowledged
    | BatteryLevel
    | UplinkConnection
    | ClockTrust
    | DeviceSeen
    | StatusRequested
)

#: MQTT 5.0 reason code 0x10: accepted, but nobody subscribed (the batch is kept and resent).
NO_MATCHING_SUBSCRIBERS = 0x10
#: Reason codes from 0x80 are failures (MQTT 5.0 section 2.4).
REASON_FAILURE_THRESHOLD = 0x80


def delivered(event: BatchAcknowledged) -> bool:
    """True when a recipient took the batch (not refused, not "no matching subscribers")."""
    code = event.reason_code
    return code < REASON_FAILURE_THRESHOLD and code != NO_MATCHING_SUBSCRIBERS


def stored_events(readings: Iterable[Reading], devices: Mapping[str, str]) -> list[ReadingStored]:
    """One :class:`ReadingStored` per paired device (``devices``: upper-case address ->
    kind) among committed readings, at clinical or alert priority; boards, the hub's own
    readings and a device's Device Information strings (``device-info``,
    protocols/uplink/device_facts.py) do not count. One pass, nothing kept of the rest."""
    newest: dict[str, tuple[int, bool]] = {}
    for r in readings:
        if r.priority > Priority.CLINICAL or (r.flags and FLAG_DEVICE_INFO in r.flags):
            continue
        device = r.device.upper()
        if device not in devices:
            continue
        taken = r.effective_ms()
        old = newest.get(device)
        if old is None or taken >= old[0]:
            newest[device] = (taken, r.continuous)
    return [ReadingStored(d, t, c) for d, (t, c) in newest.items()]
