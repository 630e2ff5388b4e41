"""Normalised observations: a decoded measurement mapped to MDC, LOINC and UCUM.

Codes follow IEEE 11073-10101 (MDC, 32-bit partition x 65536 + term) and the HL7 FHIR
Personal Health Device IG mapping tables (``health-profiles.md`` section 4.2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from protocols.gatt.medfloat import MedFloat


@dataclass(frozen=True, slots=True)
class Observation:
    """One observed quantity with its codes; the value keeps the device's precision.

    ``value`` is ``None`` only for a special value, named in ``special``.
    """

    mdc_code: int
    loinc: str | None
    value: Decimal | None
    special: str | None
    unit: str
    timestamp: dt.datetime | None = None
    flags: frozenset[str] = frozenset()
    body_site: str | None = None

    @classmethod
    def from_medfloat(
        cls,
        mdc_code: int,
        loinc: str | None,
        m: MedFloat,
        unit: str,
        *,
        timestamp: dt.datetime | None = None,
        flags: frozenset[str] = frozenset(),
        body_site: str | None = None,
    ) -> Observation:
        """Build from a :class:`MedFloat`, mapping a special value to its name."""
        return cls(
            mdc_code=mdc_code,
            loinc=loinc,
            value=m.value,
            special=None if m.special is None else m.special.value,
            unit=unit,
            timestamp=timestamp,
            flags=flags,
            body_site=body_site,
        )


# MDC codes (IEEE 11073-10101) used so far, with the LOINC the PHD IG pairs them with.
MDC_TEMP_BODY = 150364
MDC_TEMP_AXILLA = 188452
MDC_TEMP_EAR = 188428
MDC_TEMP_FINGER = 188432
MDC_TEMP_GIT = 188456
MDC_TEMP_ORAL = 188424
MDC_TEMP_RECT = 188420
MDC_TEMP_TOE = 188448
MDC_TEMP_TYMP = 150392

LOINC_BODY_TEMPERATURE = "8310-5"

#: MDC code -> (reference id, LOINC or None), for display and for the region's FHIR mapping.
MDC_TABLE: dict[int, tuple[str, str | None]] = {
    MDC_TEMP_BODY: ("MDC_TEMP_BODY", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_AXILLA: ("MDC_TEMP_AXILLA", "8328-7"),
    MDC_TEMP_EAR: ("MDC_TEMP_EAR", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_FINGER: ("MDC_TEMP_FINGER", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_GIT: ("MDC_TEMP_GIT", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_ORAL: ("MDC_TEMP_ORAL", "8331-1"),
    MDC_TEMP_RECT: ("MDC_TEMP_RECT", "8332-9"),
    MDC_TEMP_TOE: ("MDC_TEMP_TOE", LOINC_BODY_TEMPERATURE),
    MDC_TEMP_TYMP: ("MDC_TEMP_TYMP", "8333-7"),
}
