"""Readings to HL7 FHIR R4 Observations, following the FHIR Personal Health Device IG.

Pure mapping: a :class:`~protocols.uplink.WireReading` plus its batch header becomes an
Observation resource (a JSON-ready dict) with the MDC code (``urn:iso:std:iso:11073:10101``),
the LOINC code where the IG pairs one, a UCUM ``valueQuantity`` that keeps the device's
precision, or a ``dataAbsentReason`` for a special value (PHD IG "FLOATs" page).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from protocols.gatt import observation as gatt_obs
from protocols.gatt.observation import MDC_TABLE
from protocols.uplink.batch import CODED_FLAG, BatchHeader, WireReading

MDC_SYSTEM = "urn:iso:std:iso:11073:10101"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
PHD_NUMERIC_PROFILE = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation"
PHD_CODED_PROFILE = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCodedEnumerationObservation"
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
#: Namespace for the deterministic Observation identifiers (a UUIDv5 per reading).
IDENTIFIER_NAMESPACE = uuid.UUID("4d2f6a3e-3f0c-5b7e-9a51-6e6172687562")

#: Special value -> FHIR dataAbsentReason code (PHD IG "FLOATs" page; docs/protocols/phd.md 1.3).
DATA_ABSENT: dict[str, str] = {
    "nan": "not-a-number",
    "nres": "error",
    "+inf": "positive-infinity",
    "-inf": "negative-infinity",
    "reserved": "error",
}

#: LOINC codes that make an observation a FHIR vital sign.
VITAL_SIGNS_LOINC = frozenset(
    {
        "8310-5",
        "8328-7",
        "8331-1",
        "8332-9",
        "8333-7",
        "8480-6",
        "8462-4",
        "8867-4",
        "29463-7",
        "8302-2",
        "39156-5",
        "2708-6",
        "59408-5",
        "85354-9",
        "9279-1",
    }
)


#: Every body-temperature MDC code (generic and per site).
BODY_TEMPERATURE_CODES = frozenset(
    code for code, (ref_id, _) in MDC_TABLE.items() if ref_id.startswith("MDC_TEMP_")
)


def _identity(reading: WireReading) -> tuple[str, str, str, str, str]:
    value = str(reading.value) if reading.value is not None else f"special:{reading.special}"
    return reading.device, reading.stream, str(reading.mdc_code), str(reading.t_ms), value


def reading_identifier(hub_id: str, reading: WireReading, occurrence: int = 0) -> str:
    """A stable identifier for a reading: the same reading always maps to the same id, and
    two different readings never share one.

    Lets the region use a conditional create (``If-None-Exist: identifier=...``) so that a
    batch delivered twice yields one Observation. The key is the hub, device, stream, MDC
    code, time and the exact value (or special value): two RR intervals of one Heart Rate
    Measurement (HRS 3.1) share their time but not their value. ``occurrence`` tells apart
    readings equal in all of that (the n-th such reading of a batch,
    :func:`observations`); the first keeps the plain key.
    """
    parts = [hub_id, *_identity(reading)]
    if occurrence:
        parts.append(f"#{occurrence}")
    return str(uuid.uuid5(IDENTIFIER_NAMESPACE, "|".join(parts)))


def _iso(t_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def observations(
    header: BatchHeader, readings: Sequence[WireReading], *, patient_reference: str | None = None
) -> list[dict[str, Any]]:
    """The Observations of a batch's readings, in order, each with its own identifier.

    Readings equal in every identifying field (:func:`reading_identifier`) are numbered in
    the order the batch carries them, which is the order the hub stored them in.
    """
    seen: dict[tuple[str, ...], int] = {}
    out = []
    for r in readings:
        key = _identity(r)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        out.append(
            observation(header, r, patient_reference=patient_reference, occurrence=occurrence)
        )
    return out


def observation(
    header: BatchHeader,
    reading: WireReading,
    *,
    patient_reference: str | None = None,
    occurrence: int = 0,
) -> dict[str, Any]:
    """The FHIR R4 Observation for one reading (PhdNumericObservation shape).

    ``occurrence``: see :func:`reading_identifier` (use :func:`observations` for a batch).
    """
    ref_id, loinc = MDC_TABLE.get(reading.mdc_code, (None, None))
    mdc_coding: dict[str, Any] = {"system": MDC_SYSTEM, "code": str(reading.mdc_code)}
    if ref_id is not None:
        mdc_coding["display"] = ref_id
    codings = [mdc_coding]
    categories: list[dict[str, Any]] = []
    loincs = [] if loinc is None else [loinc]
    if reading.mdc_code in BODY_TEMPERATURE_CODES and gatt_obs.LOINC_BODY_TEMPERATURE not in loincs:
        # The vital-signs profile requires 8310-5 even when a site-specific LOINC is added.
        loincs.insert(0, gatt_obs.LOINC_BODY_TEMPERATURE)
    codings.extend({"system": LOINC_SYSTEM, "code": code} for code in loincs)
    if VITAL_SIGNS_LOINC.intersection(loincs):
        categories.append({"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs"}]})
    identifier = reading_identifier(header.hub_id, reading, occurrence)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": identifier,
        "meta": {"profile": [PHD_NUMERIC_PROFILE]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{identifier}"}],
        "status": "final",
        "code": {"coding": codings},
        "effectiveDateTime": _iso(reading.t_ms),
        "device": {"identifier": {"system": "urn:narhub:device", "value": reading.device}},
    }
    if categories:
        resource["category"] = categories
    if patient_reference is not None:
        resource["subject"] = {"reference": patient_reference}
    if reading.value is not None and CODED_FLAG in reading.flags:
        # Coded enumeration (PHD IG PhdCodedEnumerationObservation): the value is an MDC code.
        resource["meta"] = {"profile": [PHD_CODED_PROFILE]}
        code = str(reading.value)
        value_ref, _ = MDC_TABLE.get(int(reading.value), (None, None))
        value_coding: dict[str, Any] = {"system": MDC_SYSTEM, "code": code}
        if value_ref is not None:
            value_coding["display"] = value_ref
        resource["valueCodeableConcept"] = {"coding": [value_coding]}
    elif reading.value is not None:
        resource["valueQuantity"] = {
            "value": reading.value,
            "unit": reading.unit,
            "system": UCUM_SYSTEM,
            "code": reading.unit,
        }
    else:
        resource["dataAbsentReason"] = {
            "coding": [
                {
                    "system": DATA_ABSENT_SYSTEM,
                    "code": DATA_ABSENT.get(reading.special or "", "error"),
                }
            ]
        }
    shown_flags = sorted(reading.flags - {CODED_FLAG})
    if shown_flags:
        resource["note"] = [{"text": "flags: " + ", ".join(shown_flags)}]
    return resource


_DECIMAL_MARK = "\u0000dec:"


def _mark_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + str(value)
    if isinstance(value, dict):
        return {k: _mark_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_decimals(v) for v in value]
    return value


def dumps_exact(resource: dict[str, Any]) -> str:
    """JSON text in which every Decimal is written as its exact digits (``2.0`` stays ``2.0``).

    FHIR's ``decimal`` keeps precision (R4 datatypes, "decimal"); passing through ``float``
    would lose it, so Decimals are emitted verbatim as JSON numbers.
    """
    text = json.dumps(_mark_decimals(resource), separators=(",", ":"), ensure_ascii=False)
    out = []
    start = 0
    needle = '"' + json.dumps(_DECIMAL_MARK)[1:-1]
    while (i := text.find(needle, start)) >= 0:
        end = text.index('"', i + 1)
        out.append(text[start:i])
        out.append(text[i + len(needle) : end])
        start = end + 1
    out.append(text[start:])
    return "".join(out)


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of the exact JSON text (for audit lines)."""
    return hashlib.sha256(dumps_exact(resource).encode()).hexdigest()
