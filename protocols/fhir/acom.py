"""The Observation shapes of ACOM observation classes beyond numbers and codes (PHD IG 2.0.0).

A GHS device's observations (IEEE 11073-10206 ACOM) reach the region as readings whose flags
carry what a number cannot (:mod:`protocols.gatt.mapping.ghs`). This module turns them into
the IG's elements:

* a **sample array** (flag ``sampled-data:<period ms> <factor> <origin> <samples...>``) is a
  ``valueSampledData`` (``StructureDefinition.PhdRtsaObservation.fsh``: ``origin`` with value,
  UCUM system and code, ``factor``, ``period``, ``dimensions`` 1, ``data`` the samples as the
  device sent them: the IG's RTSA mapping keeps the device's scaling, y = data x factor +
  origin);
* a **string** (special ``text``, flag ``text:<string>``) is a ``valueString``
  (``StructureDefinition.PhdStringObservation.fsh``);
* **supplemental types** (flags ``supplemental-type:<MDC code>``) are the base profile's
  ``component[supplementalTypesComponent]``: code MDC_ATTR_SUPPLEMENTAL_TYPES (68193), the
  type as a ``valueCodeableConcept`` (``StructureDefinition.PhdBaseObservation.fsh``).

A bit-field (compound state/event) reading becomes PhdBitsEnumerationObservation when the
IG's ASN1ToHL7 code system names its bits (:mod:`protocols.fhir.bits`); otherwise it keeps
its integer value and masks and claims no profile (docs/protocols/phd.md 2.11).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from protocols.fhir import codes as c
from protocols.gatt.mapping.ghs import SAMPLED_DATA_FLAG, TEXT_FLAG, TEXT_SPECIAL
from protocols.uplink.wire_reading import WireReading

SUPPLEMENTAL_PREFIX = "supplemental-type:"
BITS_PREFIX = "bits-"

#: Flag prefixes that an element of the resource carries (never shown in the note).
CARRIED_PREFIXES = (SAMPLED_DATA_FLAG, TEXT_FLAG, SUPPLEMENTAL_PREFIX)


def _flag(reading: WireReading, prefix: str) -> str | None:
    for flag in reading.flags:
        if flag.startswith(prefix):
            return flag.removeprefix(prefix)
    return None


def sampled_data(reading: WireReading) -> dict[str, Any] | None:
    """The ``valueSampledData`` of a sample-array reading, ``None`` for another reading (or a
    flag that does not parse: the reading is then an ordinary number)."""
    text = _flag(reading, SAMPLED_DATA_FLAG)
    if text is None:
        return None
    parts = text.split(" ")
    if len(parts) < 4:  # period, factor, origin and at least one sample
        return None
    try:
        period, factor, origin = (Decimal(p) for p in parts[:3])
        samples = [int(p) for p in parts[3:]]
    except (InvalidOperation, ValueError):
        return None
    return {
        "origin": {
            "value": origin,
            "unit": reading.unit,
            "system": c.UCUM_SYSTEM,
            "code": reading.unit,
        },
        "period": period,
        "factor": factor,
        "dimensions": 1,
        "data": " ".join(str(s) for s in samples),
    }


def string_value(reading: WireReading) -> str | None:
    """The ``valueString`` of a string reading, ``None`` for another reading."""
    if reading.value is not None or reading.special != TEXT_SPECIAL:
        return None
    return _flag(reading, TEXT_FLAG)


def is_bits(reading: WireReading) -> bool:
    """A bit-field (compound state/event) reading: an integer and its masks in flags."""
    return any(flag.startswith(BITS_PREFIX) for flag in reading.flags)


def supplemental_components(reading: WireReading) -> list[dict[str, Any]]:
    """``component[supplementalTypesComponent]`` for each supplemental type of the reading."""
    out = []
    for flag in sorted(reading.flags):
        if not flag.startswith(SUPPLEMENTAL_PREFIX):
            continue
        code = flag.removeprefix(SUPPLEMENTAL_PREFIX)
        if not code.isdigit():
            continue
        out.append(
            {
                "code": {
                    "coding": [
                        {
                            "system": c.MDC_SYSTEM,
                            "code": str(c.MDC_ATTR_SUPPLEMENTAL_TYPES),
                            "display": "MDC_ATTR_SUPPLEMENTAL_TYPES",
                        }
                    ]
                },
                "valueCodeableConcept": {"coding": [{"system": c.MDC_SYSTEM, "code": code}]},
            }
        )
    return out
