"""What the feedback component reads from the running hub on its own (every
:data:`PROBE_INTERVAL_S`), turned into events when it changes: battery levels, the
connection to the region, the clock's trust."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.feedback.events import BatteryLevel, ClockTrust, FeedbackEvent, UplinkConnection

#: The probe's period, seconds.
PROBE_INTERVAL_S = 2.0


def _unknown() -> bool | None:
    return None


def _no_batteries() -> Mapping[str, int | None]:
    return {}


@dataclass(frozen=True)
class HubProbe:
    """Callables over the running hub; each returns None (or nothing) when it cannot tell."""

    batteries: Callable[[], Mapping[str, int | None]] = _no_batteries
    uplink_connected: Callable[[], bool | None] = _unknown
    clock_trusted: Callable[[], bool | None] = _unknown


async def watch(
    probe: HubProbe,
    notify: Callable[[FeedbackEvent], None],
    *,
    interval_s: float = PROBE_INTERVAL_S,
) -> None:
    """Read the probe every ``interval_s`` and notify what changed (until cancelled).
    Unknown values (None) are not events."""
    batteries: dict[str, int | None] = {}
    uplink: bool | None = None
    clock: bool | None = None
    while True:
        for address, percent in probe.batteries().items():
            if percent is not None and batteries.get(address) != percent:
                notify(BatteryLevel(address, percent))
            batteries[address] = percent
        connected = probe.uplink_connected()
        if connected is not None and connected != uplink:
            notify(UplinkConnection(connected))
        uplink = connected
        trusted = probe.clock_trusted()
        if trusted is not None and trusted != clock:
            notify(ClockTrust(trusted))
        clock = trusted
        await asyncio.sleep(interval_s)  # a poll period, not a synchronisation
