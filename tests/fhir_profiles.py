"""The required elements of the PHD IG 2.0.0 profiles narhub claims, as checks.

Written from the IG's FSH, repository ``HL7/phd`` at tag ``2.0.0`` (commit
5af8412f26a40456084790f8d23a822f04f469ae), each check naming its file under ``input/fsh/``.
Only cardinalities (``1..``), fixed values (``= ... (exactly)``), ``only`` types and required
bindings to the value sets listed here are checked; ``ref`` resolves a literal reference
within the checked set, so a reference's target profile is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
#: identifier.type's code system in the IG 2.0.0 (its examples and the SYSID slice's pattern).
CONTINUA_IDENTIFIERS = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"

#: ValueSet.DeviceTypes11073MDC.fsh
DEVICE_TYPES = frozenset(
    {528385, 528384, 528388, 528390, 528391, 528392, 528397, 528399, 528401, 528402, 528403}
    | {528404, 528405, 528406, 528408, 528409, 528412, 528413, 528425, 528426, 528455}
    | {528456, 528457, 528484, *range(528501, 528515), 528524, 528525, *range(528532, 528537)}
)
#: ValueSet.MDCDeviceVersionTypes.fsh
VERSION_TYPES = frozenset({531974, 531975, 531976, 531977, 532352, 67912})
#: ValueSet.MDCClockTypes.fsh
CLOCK_TYPES = frozenset({67975, 68226, 67983, 68072})
_VALUES = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean",
           "valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime",
           "valueDateTime", "valuePeriod")  # fmt: skip

Resolve = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def _profiles(resource: dict[str, Any] | None) -> list[str]:
    return [] if resource is None else list(resource.get("meta", {}).get("profile", []))


def _mdc_codes(concept: dict[str, Any] | None) -> list[int]:
    return [
        int(c["code"])
        for c in (concept or {}).get("coding", [])
        if c.get("system") == MDC and str(c.get("code", "")).isdigit()
    ]


def _ucum(q: dict[str, Any], element: str, system_rule: str = "= UCUM") -> list[str]:
    """A UCUM quantity at ``element``: value 1.., system = UCUM, code 1.."""
    out = []
    if "value" not in q:
        out.append(f"{element}.value 1..")
    if q.get("system") != UCUM:
        out.append(f"{element}.system {system_rule}")
    if not q.get("code"):
        out.append(f"{element}.code 1..")
    return out


def _quantity(q: dict[str, Any]) -> list[str]:
    """PhdNumericObservation / PhdCompoundNumericObservation: value 1.., system = UCUM, code 1.."""
    return _ucum(q, "valueQuantity")


def _quantity_or_absent(element: dict[str, Any], missing: str) -> list[str]:
    """A valueQuantity (checked by :func:`_quantity`) or a dataAbsentReason: ``missing`` when
    neither is there."""
    if "valueQuantity" in element:
        return _quantity(element["valueQuantity"])
    return [] if "dataAbsentReason" in element else [missing]


def _no_value(o: dict[str, Any]) -> list[str]:
    """``value[x] ..0``"""
    return ["value[x] ..0"] if any(k in o for k in _VALUES) else []


def _value_only(o: dict[str, Any], key: str, type_name: str) -> list[str]:
    """``value[x] only <type_name>``: no value[x] element but ``key``."""
    return [f"value[x] only {type_name}"] if any(k in o for k in _VALUES if k != key) else []


def _reference(
    reference: dict[str, Any] | None, ref: Resolve, element: str, missing: str, profile: str
) -> list[str]:
    """``element`` a literal reference (``missing`` when it is not one) to a resource that
    claims ``profile`` (``<element> only Reference(<profile>)``)."""
    if not reference or "reference" not in reference:
        return [missing]
    if PHD + profile not in _profiles(ref(reference)):
        return [f"{element} only Reference({profile})"]
    return []


def phd_base(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdBaseObservation.fsh"""
    out = []
    gateways = [e for e in o.get("extension", []) if e.get("url") == GATEWAY]
    if len(gateways) != 1:
        out.append("extension[GatewayDevice] 1..1")
    elif PHD + "PhgDevice" not in _profiles(ref(gateways[0].get("valueReference"))):
        out.append("extension[GatewayDevice].value[x] only Reference(PhgDevice)")
    times = [
        e for e in o.get("extension", []) if e.get("url") == PHD + "CoincidentTimeStampReference"
    ]
    if len(times) > 1:
        out.append("extension[CoincidentTimeStamp] 0..1")
    for e in times:
        target = ref(e.get("valueReference"))
        if PHD + "PhdCoincidentTimeStampObservation" not in _profiles(target):
            out.append(
                "CoincidentTimeStampReference only Reference(PhdCoincidentTimeStampObservation)"
            )
    phd_categories = [
        cat
        for cat in o.get("category", [])
        if any(
            c.get("system") == "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
            and c.get("code") == "phd"
            for c in cat.get("coding", [])
        )
    ]
    if len(phd_categories) != 1:
        out.append("category[PHD-Observation] 1..1 (PhdObservationCategories#phd)")
    for ident in o.get("identifier", []):
        if ident.get("system") == PHD + "PhdBaseObservation":
            if not ident.get("value"):
                out.append("identifier[conditionalCreate].value 1..")
            if "type" in ident:
                out.append("identifier[conditionalCreate].type ..0")
    if (
        len([i for i in o.get("identifier", []) if i.get("system") == PHD + "PhdBaseObservation"])
        > 1
    ):
        out.append("identifier[conditionalCreate] 0..1")
    if "subject" not in o:
        out.append("subject 1..")
    if "effectiveDateTime" not in o and "effectivePeriod" not in o:
        out.append("effective[x] 1.. (dateTime or Period)")
    out.extend(_reference(o.get("device"), ref, "device", "device.reference 1..1", "PhdDevice"))
    if o.get("status") not in {"final", "preliminary", "entered-in-error"}:
        out.append("status final or preliminary")
    return out


GATEWAY = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"


def phd_numeric(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdNumericObservation.fsh"""
    out = phd_base(o, ref)
    others = [k for k in _VALUES if k in o and k != "valueQuantity"]
    if others:
        out.append(f"value[x] only Quantity (has {others})")
    return out + _quantity_or_absent(o, "valueQuantity or dataAbsentReason")


def phd_compound_numeric(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdCompoundNumericObservation.fsh"""
    out = phd_base(o, ref) + _no_value(o)
    for comp in o.get("component", []):
        if not _mdc_codes(comp.get("code")):
            out.append("component[compound].code.coding[MdcType] 1..1 (MDC)")
        out.extend(_quantity_or_absent(comp, "component valueQuantity or dataAbsentReason"))
    return out


def phd_coded(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdCodedEnumerationObservation.fsh"""
    out = phd_base(o, ref) + _value_only(o, "valueCodeableConcept", "CodeableConcept")
    if "valueCodeableConcept" not in o and "dataAbsentReason" not in o:
        out.append("valueCodeableConcept or dataAbsentReason")
    return out


def phd_rtsa(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdRtsaObservation.fsh"""
    out = phd_base(o, ref) + _value_only(o, "valueSampledData", "SampledData")
    data = o.get("valueSampledData")
    if data is None:
        if "dataAbsentReason" not in o:
            out.append("valueSampledData or dataAbsentReason")
        return out
    out += _ucum(data.get("origin", {}), "valueSampledData.origin", "= UCUM (exactly)")
    if "factor" not in data:
        out.append("valueSampledData.factor 1..")
    return out


def phd_string(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdStringObservation.fsh (``value[x] only string``)"""
    out = phd_base(o, ref) + _value_only(o, "valueString", "string")
    if "valueString" not in o:
        out.append("value[x] 1..")
    return out


ASN1_TO_HL7 = "http://terminology.hl7.org/CodeSystem/ASN1ToHL7"
UNSUPPORTED = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def phd_bits(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdBitsEnumerationObservation.fsh: ``value[x] ..0``; a
    bitsComponent's code from ASN1MeasurementBits (required; here: an ASN1ToHL7 code
    "<Observation.code>.<MDER bit>"), ``value[x] only boolean`` or the dataAbsentReason
    ``unsupported``."""
    out = phd_base(o, ref) + _no_value(o)
    (own,) = _mdc_codes(o.get("code")) or [None]
    for comp in o.get("component", []):
        codings = comp.get("code", {}).get("coding", [])
        bits = [c for c in codings if c.get("system") == ASN1_TO_HL7]
        if not bits:
            if 68193 not in _mdc_codes(comp.get("code")):  # supplementalTypesComponent
                out.append("component: neither bitsComponent nor supplementalTypesComponent")
            continue
        type_code, _, bit = str(bits[0].get("code", "")).partition(".")
        if type_code != str(own) or not bit.isdigit():
            out.append("bitsComponent.code from ASN1MeasurementBits (<type>.<bit>)")
        values = [k for k in _VALUES if k in comp]
        absent = [
            c.get("code")
            for c in comp.get("dataAbsentReason", {}).get("coding", [])
            if c.get("system") == UNSUPPORTED
        ]
        if values not in (["valueBoolean"], []) or (not values and absent != ["unsupported"]):
            out.append("bitsComponent.value[x] only boolean (or dataAbsentReason unsupported)")
    return out


def phd_compound(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdCompoundObservation.fsh: ``value[x] ..0``; a component's value
    only Quantity (value, system = UCUM, code), CodeableConcept (coding 1..1, the MdcType
    slice: system MDC, code), string or SampledData (origin, period, factor, lowerLimit,
    upperLimit, dimensions, data), or a dataAbsentReason."""
    out = phd_base(o, ref) + _no_value(o)
    for comp in o.get("component", []):
        if not _mdc_codes(comp.get("code")):
            out.append("component[measurement].code from MDCValueSet")
        values = [k for k in _VALUES if k in comp]
        if len(values) > 1 or (values and values[0] not in _COMPOUND_VALUES):
            out.append(
                f"component.value[x] only Quantity, CodeableConcept, string, SampledData ({values})"
            )
        elif not values and "dataAbsentReason" not in comp:
            out.append("component value[x] or dataAbsentReason")
        if "valueQuantity" in comp:
            out.extend(_quantity(comp["valueQuantity"]))
        concept = comp.get("valueCodeableConcept")
        if concept is not None and (len(concept.get("coding", [])) != 1 or not _mdc_codes(concept)):
            out.append("component.valueCodeableConcept.coding 1..1 (MdcType: MDC)")
        data = comp.get("valueSampledData")
        if data is not None:
            out.extend(
                f"component.valueSampledData.{k} 1.."
                for k in (
                    "origin",
                    "period",
                    "factor",
                    "lowerLimit",
                    "upperLimit",
                    "dimensions",
                    "data",
                )
                if k not in data
            )
    return out


_COMPOUND_VALUES = ("valueQuantity", "valueCodeableConcept", "valueString", "valueSampledData")


def phd_coincident_time_stamp(o: dict[str, Any], ref: Resolve) -> list[str]:
    """StructureDefinition.PhdCoincidentTimeStampObservation.fsh"""
    out = []
    if o.get("status") != "final":
        out.append("status = final (exactly)")
    if not CLOCK_TYPES.intersection(_mdc_codes(o.get("code"))):
        out.append("code.coding[MDCType] 1..1 from MDCClockTypes")
    out.extend(_reference(o.get("subject"), ref, "subject", "subject.reference 1..", "PhdDevice"))
    out.extend(_reference(o.get("device"), ref, "device", "device.reference 1..1", "PhgDevice"))
    values = [k for k in _VALUES if k in o]
    if values not in (["valueDateTime"], ["valueQuantity"]) and not (
        not values and "dataAbsentReason" in o
    ):
        out.append("value[x] only dateTime or Quantity (or dataAbsentReason)")
    out.extend(f"{k} 0..0" for k in ("derivedFrom", "hasMember", "specimen", "focus") if k in o)
    return out


#: identifier[systemIdIdentifier].system (exactly), StructureDefinition.PhdDevice.fsh.
EUI64_SYSTEM = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
#: The EUI-64 as the IG writes it
#: (HL7/phd input/intro-notes/StructureDefinition-PhdDevice-notes.md).
_EUI64 = re.compile(r"^[0-9A-F]{2}(-[0-9A-F]{2}){7}$")


def _system_id(ident: dict[str, Any]) -> list[str]:
    """identifier[systemIdIdentifier] 0..1: type SYSID, system exactly, value 1.."""
    out = []
    codings = ident.get("type", {}).get("coding", [])
    if {"system": CONTINUA_IDENTIFIERS, "code": "SYSID"} not in [
        {k: c.get(k) for k in ("system", "code")} for c in codings
    ]:
        out.append("identifier[systemIdIdentifier].type = ContinuaDeviceIdentifiers#SYSID")
    if ident.get("system") != EUI64_SYSTEM:
        out.append("identifier[systemIdIdentifier].system (exactly)")
    if not _EUI64.match(str(ident.get("value", ""))):
        out.append("identifier[systemIdIdentifier].value 1.. (EUI-64, XX-XX-..)")
    return out


def _device_common(d: dict[str, Any]) -> list[str]:
    out = []
    if not d.get("identifier"):
        out.append("identifier 1..")
    for ident in d.get("identifier", []):
        types = [c.get("code") for c in ident.get("type", {}).get("coding", [])]
        if "BTMAC" in types:
            if ident.get("system") != "http://hl7.org/fhir/sid/eui-48/bluetooth":
                out.append("identifier[btmacAddressIdentifier].system (exactly)")
            if not ident.get("value"):
                out.append("identifier[btmacAddressIdentifier].value 1..")
        if "SYSID" in types or ident.get("system") == EUI64_SYSTEM:
            out.extend(_system_id(ident))
    if "parent" in d:
        out.append("parent ..0")
    specializations = d.get("specialization", [])
    if not specializations:
        out.append("specialization[MDCType] 1..")
    out.extend(
        "specialization.systemType.coding from DeviceTypes11073MDC"
        for spec in specializations
        if not DEVICE_TYPES.intersection(_mdc_codes(spec.get("systemType")))
    )
    versions = d.get("version", [])
    if not any(VERSION_TYPES.intersection(_mdc_codes(v.get("type"))) for v in versions):
        out.append("version[MDCType] 1..* (type from MDCDeviceVersionTypes)")
    return out


def phd_device(d: dict[str, Any], _ref: Resolve) -> list[str]:
    """StructureDefinition.PhdDevice.fsh"""
    out = _device_common(d)
    if not d.get("manufacturer"):
        out.append("manufacturer 1..")
    if not d.get("modelNumber"):
        out.append("modelNumber 1..")
    if 65573 not in _mdc_codes(d.get("type")):
        out.append("type.coding[PhdCode] = MDC#65573")
    out.extend(
        "specialization.version 1.."
        for spec in d.get("specialization", [])
        if not spec.get("version")
    )
    return out


def phg_device(d: dict[str, Any], _ref: Resolve) -> list[str]:
    """StructureDefinition.PhgDevice.fsh"""
    out = _device_common(d)
    if 531981 not in _mdc_codes(d.get("type")):
        out.append("type.coding[MDCType] = MDC#531981 (exactly)")
    return out


CHECKS: dict[str, Callable[[dict[str, Any], Resolve], list[str]]] = {
    PHD + "PhdNumericObservation": phd_numeric,
    PHD + "PhdCompoundNumericObservation": phd_compound_numeric,
    PHD + "PhdCodedEnumerationObservation": phd_coded,
    PHD + "PhdRtsaObservation": phd_rtsa,
    PHD + "PhdStringObservation": phd_string,
    PHD + "PhdBitsEnumerationObservation": phd_bits,
    PHD + "PhdCompoundObservation": phd_compound,
    PHD + "PhdCoincidentTimeStampObservation": phd_coincident_time_stamp,
    PHD + "PhdDevice": phd_device,
    PHD + "PhgDevice": phg_device,
}


def resolver(resources: Iterable[dict[str, Any]]) -> Resolve:
    """Resolves ``{"reference": "Type/id"}`` within ``resources``."""
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}

    def resolve(reference: dict[str, Any] | None) -> dict[str, Any] | None:
        if not reference or "reference" not in reference:
            return None
        return by_ref.get(str(reference["reference"]))

    return resolve


def violations(resources: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(resource id, claimed profile, missing element) for every claim not met."""
    ref = resolver(resources)
    out = []
    for resource in resources:
        for profile in _profiles(resource):
            check = CHECKS.get(profile)
            if check is None:
                out.append((resource["id"], profile, "a profile narhub does not check"))
                continue
            out.extend((resource["id"], profile, v) for v in check(resource, ref))
    return out
