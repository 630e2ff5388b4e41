"""What the hub stores and sends, built for tests: readings (the one reading type,
:class:`gateway.reading.Reading`, with the fields these tests do not vary) and consent records
(docs/consent.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.reading import Reading
from protocols.categories import NARHUB_BOARD_BASE
from protocols.consent import ConsentRecord, record_from_map

#: MDC_TEMP_BODY (ISO/IEEE 11073-10101), in degrees Celsius (UCUM ``Cel``).
BODY_TEMPERATURE = 150364
#: A sensor board's door-open events (activity) and air temperature (indoor climate), as
#: protocols/categories.py files them.
DOOR = NARHUB_BOARD_BASE + 4
CLIMATE = NARHUB_BOARD_BASE + 1
#: A hub wall clock in 2026 (milliseconds since the epoch).
WALL_MS = 1_795_000_000_000


def reading(
    i: int,
    mdc_code: int,
    value: Decimal | None,
    *,
    unit: str = "1",
    device: str = "dev",
    **fields: Any,
) -> Reading:
    """The ``i``-th reading of ``device``'s ``mdc_code`` stream, clinical, ``i`` ms after
    :data:`WALL_MS` (``fields`` replace any other field: ``hub_wall_ms``, ``priority``...)."""
    made = Reading(
        stream=f"{device}/{mdc_code}",
        device=device,
        mdc_code=mdc_code,
        unit=unit,
        value=value,
        special=None,
        hub_wall_ms=WALL_MS + i,
        hub_mono_ns=i,
    )
    return made._replace(**fields)


def body_temperature(i: int, value: Decimal, **fields: Any) -> Reading:
    """The ``i``-th body temperature (see :func:`reading`)."""
    return reading(i, BODY_TEMPERATURE, value, unit="Cel", **fields)


def consent_record(action: str, recipient: str, categories: list[str], at_ms: int) -> ConsentRecord:
    """A technician's record of the patient's consent (``grant`` or ``withdraw``) to send
    ``categories`` to ``recipient`` from ``at_ms``, recorded then."""
    return record_from_map(
        {
            "action": action,
            "recipient": recipient,
            "categories": categories,
            "from_ms": at_ms,
            "recorded_by": "technician:anna",
            "basis": "patient-consent",
            "recorded_ms": at_ms,
        }
    )
