"""The outbox's own readings: a damaged store moved aside, readings evicted over the quota.

Both travel as the hub's telemetry with narhub private codes (docs/protocols/uplink.md), so the
region learns of them like of any reading (docs/pipeline.md, "Quota, eviction, tombstones" and
"A damaged database").
"""

from __future__ import annotations

import time
from decimal import Decimal

from gateway.reading import Reading
from protocols.uplink import Priority, WireReading

#: narhub private telemetry codes (docs/protocols/uplink.md): 2 x 65536 + 0xF100 + n.
NARHUB_TELEMETRY_BASE = 2 * 65536 + 0xF100
#: A tombstone: value = readings evicted from one stream (``{readings}``), see docs/pipeline.md.
MDC_NARHUB_EVICTED = NARHUB_TELEMETRY_BASE + 5
#: The hub found its store damaged at start, moved it aside and started a fresh one (value 1).
MDC_NARHUB_STORE_RECOVERED = NARHUB_TELEMETRY_BASE + 6
#: The device name of the hub's own readings.
HUB_DEVICE = "hub"
FLAG_EVICTED = "evicted"
FLAG_STORE_RECOVERED = "store-damaged-moved-aside"


def recovery_reading(now_ms: int) -> Reading:
    """The reading that tells the region a damaged store was moved aside at start."""
    return Reading(
        stream=f"{HUB_DEVICE}/store-recovered",
        device=HUB_DEVICE,
        mdc_code=MDC_NARHUB_STORE_RECOVERED,
        unit="1",
        value=Decimal(1),
        special=None,
        hub_wall_ms=now_ms,
        hub_mono_ns=time.monotonic_ns(),
        priority=Priority.TELEMETRY,
        flags=frozenset({FLAG_STORE_RECOVERED}),
    )


def tombstone_reading(
    stream: str,
    mdc: int,
    *,
    priority: Priority,
    evicted: int,
    first_ms: int,
    last_ms: int,
    evicted_ms: int,
) -> WireReading:
    """One tombstone as it travels: ``evicted`` readings of ``stream`` (of code ``mdc``,
    ``priority``) taken between ``first_ms`` and ``last_ms`` were evicted at ``evicted_ms``."""
    return WireReading(
        stream=f"{HUB_DEVICE}/evicted/{stream}",
        mdc_code=MDC_NARHUB_EVICTED,
        unit="{readings}",
        t_ms=first_ms,
        value=Decimal(evicted),
        flags=frozenset(
            {
                FLAG_EVICTED,
                f"evicted-priority:{priority.topic_name}",
                f"evicted-mdc:{mdc}",
                f"evicted-last-ms:{last_ms}",
                f"evicted-at-ms:{evicted_ms}",
            }
        ),
        device=HUB_DEVICE,
    )
