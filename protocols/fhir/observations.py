"""Observation resources: numeric, coded, compound (blood pressure) and coincident time stamp.

Required elements, from the PHD IG 2.0.0 (``HL7/phd``, tag 2.0.0, ``input/fsh/``):

* ``StructureDefinition.PhdBaseObservation.fsh`` (every PHD profile below but the time
  stamp): ``extension[GatewayDevice]`` 1..1 (a Reference to the PhgDevice),
  ``category[PHD-Observation]`` 1..1 (PhdObservationCategories#phd), ``subject`` 1..,
  ``effective[x]`` 1.., ``device`` 1.. with ``device.reference`` 1..1 (a PhdDevice), the
  ``identifier[conditionalCreate]`` slice in its fixed system.
* ``StructureDefinition.PhdNumericObservation.fsh``: ``valueQuantity`` with ``value``,
  ``system`` = UCUM and ``code``, or a ``dataAbsentReason`` for a special value.
* ``StructureDefinition.PhdCompoundNumericObservation.fsh``: no ``value[x]``; each component
  an MDC ``code.coding`` and a UCUM ``valueQuantity`` (or a ``dataAbsentReason``). Blood
  pressure is the IG's example (``input/examples/compound-numeric-blood-pressure.json``:
  MDC 150020 with LOINC 85354-9, components 150021/8480-6, 150022/8462-4, 150023).
* ``StructureDefinition.PhdCompoundObservation.fsh``: no ``value[x]``; each component an
  MDC code and a ``valueQuantity`` (UCUM), ``valueCodeableConcept`` (one MDC coding),
  ``valueString`` or ``valueSampledData`` (with ``lowerLimit`` and ``upperLimit``, which an
  ACOM sample array component does not give: such a compound claims no profile).
* ``StructureDefinition.PhdCodedEnumerationObservation.fsh``: ``valueCodeableConcept``.
* ``StructureDefinition.PhdStringObservation.fsh``: ``valueString``.
* ``StructureDefinition.PhdBitsEnumerationObservation.fsh``: no ``value[x]``; a boolean
  component per bit, coded in ASN1ToHL7 (:mod:`protocols.fhir.bits`).
* ``StructureDefinition.PhdCoincidentTimeStampObservation.fsh``: ``status`` final, an MDC clock
  type from MDCClockTypes in ``code.coding``, ``subject.reference`` to the PhdDevice,
  ``device.reference`` to the PhgDevice, the device's current time in ``valueDateTime``
  (``effective[x]``: the gateway's time at the read).

A resource names a profile in ``meta.profile`` only when it has every element the profile
requires: a measurement claims a PHD profile only when its device's Device is a PhdDevice
(``device`` only ``Reference(PhdDevice)``) and it is a patient's (the hub's own telemetry is
not a PHD's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocols.fhir import acom
from protocols.fhir import codes as c
from protocols.fhir.bits import bits_components
from protocols.fhir.identity import uri_identifier
from protocols.gatt.observation import LOINC_BODY_TEMPERATURE, MDC_TABLE
from protocols.uplink.device_facts import CLOCK_OFFSET_FLAG, CLOCK_READ_FLAG, ClockRead
from protocols.uplink.wire_reading import CODED_FLAG, WireReading

#: Flags that are not shown in a note: what the resource says otherwise.
_UNSHOWN_PREFIXES = (
    f"{CLOCK_OFFSET_FLAG}:",
    f"{CLOCK_READ_FLAG}:",
    "component-of:",
    *acom.CARRIED_PREFIXES,
)
_UNSHOWN = frozenset({CODED_FLAG})


@dataclass(frozen=True, slots=True)
class Context:
    """Who and what one observation names."""

    #: ``Observation.subject``.
    subject: dict[str, Any]
    #: ``Observation.device`` (the PHD's Device, or the gateway for the hub's own readings).
    device: dict[str, Any]
    #: The gateway extension's reference.
    gateway: dict[str, Any]
    #: Whether the observation is a PHD's and may claim the PHD profiles.
    phd: bool


def is_measurement(resource: dict[str, Any]) -> bool:
    """True for an Observation of a reading (not a coincident time stamp, not a Device)."""
    if resource.get("resourceType") != "Observation":
        return False
    codings = resource.get("code", {}).get("coding", [])
    return not codings or codings[0].get("code") != str(c.MDC_ATTR_TIME_ABS)


def iso(t_ms: int) -> str:
    """Epoch ms as an R4 ``dateTime`` / ``instant`` in UTC with milliseconds."""
    moment = dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _code(mdc_code: int) -> tuple[dict[str, Any], list[str]]:
    """The MDC coding of a code and its LOINC codes (body temperature always has 8310-5)."""
    ref_id, loinc = MDC_TABLE.get(mdc_code, (None, None))
    coding: dict[str, Any] = {"system": c.MDC_SYSTEM, "code": str(mdc_code)}
    if ref_id is not None:
        coding["display"] = ref_id
    loincs = [] if loinc is None else [loinc]
    if mdc_code in c.BODY_TEMPERATURE_CODES and LOINC_BODY_TEMPERATURE not in loincs:
        # The vital-signs profile requires 8310-5 even when a site-specific LOINC is added.
        loincs.insert(0, LOINC_BODY_TEMPERATURE)
    return coding, loincs


def _codeable(mdc_code: int) -> tuple[dict[str, Any], list[str]]:
    coding, loincs = _code(mdc_code)
    codings = [coding, *({"system": c.LOINC_SYSTEM, "code": code} for code in loincs)]
    return {"coding": codings}, loincs


def _categories(loincs: Sequence[str], phd: bool) -> list[dict[str, Any]]:
    out = []
    if c.VITAL_SIGNS_LOINC.intersection(loincs):
        out.append({"coding": [{"system": c.CATEGORY_SYSTEM, "code": "vital-signs"}]})
    if phd:
        out.append({"coding": [{"system": c.PHD_CATEGORY_SYSTEM, "code": c.PHD_CATEGORY_CODE}]})
    return out


def shown_flags(flags: frozenset[str]) -> list[str]:
    """The flags an Observation's note shows (sorted)."""
    return sorted(f for f in flags if f not in _UNSHOWN and not f.startswith(_UNSHOWN_PREFIXES))


def _value(reading: WireReading) -> dict[str, Any]:
    """``valueQuantity``, ``valueCodeableConcept`` or ``dataAbsentReason`` of a reading."""
    if reading.value is not None and CODED_FLAG in reading.flags:
        coding, _ = _code(int(reading.value))
        return {"valueCodeableConcept": {"coding": [coding]}}
    if reading.value is not None:
        return {
            "valueQuantity": {
                "value": reading.value,
                "unit": reading.unit,
                "system": c.UCUM_SYSTEM,
                "code": reading.unit,
            }
        }
    reason = c.DATA_ABSENT.get(reading.special or "", "error")
    return {"dataAbsentReason": {"coding": [{"system": c.DATA_ABSENT_SYSTEM, "code": reason}]}}


def _any_value(reading: WireReading) -> dict[str, Any]:
    """A reading's ``value[x]``: sampled data, a string, or as :func:`_value` says."""
    sampled = acom.sampled_data(reading)
    if sampled is not None:
        return {"valueSampledData": sampled}
    text = acom.string_value(reading)
    if text is not None:
        return {"valueString": text}
    return _value(reading)


def _compound_profile(components: Sequence[WireReading]) -> str | None:
    """PhdCompoundNumericObservation when every component is a number (or a special
    value), PhdCompoundObservation when some are codes or strings, none with a sample array
    (PhdCompoundObservation requires its limits) or a bit field (no component type for it)."""
    if any(acom.sampled_data(r) is not None or acom.is_bits(r) for r in components):
        return None
    if any(
        acom.string_value(r) is not None or (r.value is not None and CODED_FLAG in r.flags)
        for r in components
    ):
        return c.PHD_COMPOUND
    return c.PHD_COMPOUND_NUMERIC


def _head(
    resource_id: str,
    identifier: dict[str, Any],
    context: Context,
    profile: str | None,
    time_stamp_id: str | None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "id": resource_id}
    if profile is not None and context.phd:
        resource["meta"] = {"profile": [profile]}
    extensions = [{"url": c.GATEWAY_EXTENSION, "valueReference": context.gateway}]
    if time_stamp_id is not None:
        extensions.append(
            {
                "url": c.COINCIDENT_TIME_STAMP_EXTENSION,
                "valueReference": {"reference": f"Observation/{time_stamp_id}"},
            }
        )
    resource["extension"] = extensions
    resource["identifier"] = [identifier]
    resource["status"] = "final"
    return resource


def _profile(reading: WireReading) -> str | None:
    """The PHD profile a reading's Observation follows (``None``: none it can claim)."""
    if acom.sampled_data(reading) is not None:
        return c.PHD_RTSA
    if acom.string_value(reading) is not None:
        return c.PHD_STRING
    if acom.is_bits(reading):
        return c.PHD_BITS if bits_components(reading) is not None else None
    if reading.value is not None and CODED_FLAG in reading.flags:
        return c.PHD_CODED
    return c.PHD_NUMERIC


def observation(
    reading: WireReading,
    context: Context,
    *,
    resource_id: str,
    identifier: dict[str, Any],
    time_stamp_id: str | None = None,
    components: Sequence[WireReading] = (),
) -> dict[str, Any]:
    """One reading's Observation: PhdNumericObservation, PhdCodedEnumerationObservation,
    PhdRtsaObservation (a sample array), PhdStringObservation (a string) or
    PhdBitsEnumerationObservation (a bit field whose bits ASN1ToHL7 names).

    ``components`` are readings that belong to this one (flag ``component-of:{its code}``:
    a CGM glucose's trend); they become ``component`` elements beside its value, after the
    supplemental types. A component's own flags are a note ``flags {MDC code}: ...``.
    """
    resource = _head(resource_id, identifier, context, _profile(reading), time_stamp_id)
    code, loincs = _codeable(reading.mdc_code)
    categories = _categories(loincs, context.phd)
    if categories:
        resource["category"] = categories
    resource["code"] = code
    resource["subject"] = context.subject
    resource["effectiveDateTime"] = iso(reading.t_ms)
    bits = bits_components(reading) if acom.is_bits(reading) else None
    if bits is None:
        resource.update(_any_value(reading))
    resource["device"] = context.device
    parts = acom.supplemental_components(reading)
    parts += bits or []
    parts += [{"code": _codeable(r.mdc_code)[0], **_value(r)} for r in components]
    if parts:
        resource["component"] = parts
    notes = []
    if flags := shown_flags(reading.flags):
        notes.append({"text": "flags: " + ", ".join(flags)})
    notes.extend(
        {"text": f"flags {r.mdc_code}: " + ", ".join(own)}
        for r in components
        if (own := shown_flags(r.flags - reading.flags))
    )
    if notes:
        resource["note"] = notes
    return resource


def compound_observation(
    compound_code: int,
    components: Sequence[WireReading],
    context: Context,
    *,
    resource_id: str,
    identifier: dict[str, Any],
    time_stamp_id: str | None = None,
) -> dict[str, Any]:
    """One Observation for the components of one measurement (blood pressure: systolic,
    diastolic and mean of MDC_PRESS_BLD_NONINV; an ACOM compound's components),
    PhdCompoundNumericObservation or PhdCompoundObservation (:func:`_compound_profile`).

    Flags all components share are the note ``flags: ...``; a component's own flags (a
    threshold it crossed) are a note ``flags {MDC code}: ...``.
    """
    profile = _compound_profile(components)
    resource = _head(resource_id, identifier, context, profile, time_stamp_id)
    code, loincs = _codeable(compound_code)
    categories = _categories(loincs, context.phd)
    if categories:
        resource["category"] = categories
    resource["code"] = code
    resource["subject"] = context.subject
    resource["effectiveDateTime"] = iso(components[0].t_ms)
    resource["device"] = context.device
    resource["component"] = [
        {"code": _codeable(r.mdc_code)[0], **_any_value(r)} for r in components
    ]
    common = frozenset.intersection(*(r.flags for r in components))
    notes = []
    if shown := shown_flags(common):
        notes.append({"text": "flags: " + ", ".join(shown)})
    notes.extend(
        {"text": f"flags {r.mdc_code}: " + ", ".join(own)}
        for r in components
        if (own := shown_flags(r.flags - common))
    )
    if notes:
        resource["note"] = notes
    return resource


def coincident_time_stamp(
    clock: ClockRead,
    *,
    resource_id: str,
    device: dict[str, Any],
    gateway: dict[str, Any],
    phd: bool,
) -> dict[str, Any]:
    """The session's clock read: the device's current time (``valueDateTime``) when the
    hub's clock said ``effectiveDateTime`` (PhdCoincidentTimeStampObservation; its subject is
    the PHD, its device the gateway)."""
    resource: dict[str, Any] = {"resourceType": "Observation", "id": resource_id}
    if phd:
        resource["meta"] = {"profile": [c.PHD_COINCIDENT_TIME_STAMP]}
    resource["identifier"] = [uri_identifier(f"urn:uuid:{resource_id}")]
    resource["status"] = "final"
    resource["code"] = {
        "coding": [
            {
                "system": c.MDC_SYSTEM,
                "code": str(c.MDC_ATTR_TIME_ABS),
                "display": "MDC_ATTR_TIME_ABS",
            }
        ],
        "text": "Absolute time",
    }
    resource["subject"] = device
    resource["effectiveDateTime"] = iso(clock.read_ms)
    resource["valueDateTime"] = iso(clock.device_ms)
    resource["device"] = gateway
    return resource
