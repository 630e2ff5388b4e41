"""Body temperature readings for the tests of the outbox, the uplink and the region: the one
reading type (:class:`gateway.reading.Reading`) with the fields these tests do not vary."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.reading import Reading

#: MDC_TEMP_BODY (ISO/IEEE 11073-10101), in degrees Celsius (UCUM ``Cel``).
BODY_TEMPERATURE = 150364
#: A hub wall clock in 2026 (milliseconds since the epoch).
WALL_MS = 1_795_000_000_000


def body_temperature(i: int, value: Decimal, *, device: str = "dev", **fields: Any) -> Reading:
    """The ``i``-th reading of ``device``'s temperature stream, ``i`` ms after :data:`WALL_MS`
    (``fields`` replace any other field: ``hub_wall_ms``, ``priority``, ``source_key``...)."""
    reading = Reading(
        stream=f"{device}/{BODY_TEMPERATURE}",
        device=device,
        mdc_code=BODY_TEMPERATURE,
        unit="Cel",
        value=value,
        special=None,
        hub_wall_ms=WALL_MS + i,
        hub_mono_ns=i,
    )
    return reading._replace(**fields)
