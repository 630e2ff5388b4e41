"""What the feedback component reads from the running hub on its own (every
:data:`PROBE_INTERVAL_S`), turned into events when it changes: battery levels, the
connection to the region, the clock's trust."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
