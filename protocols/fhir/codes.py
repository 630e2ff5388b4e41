"""Code systems, profile URLs and codes of the FHIR output (HL7 PHD IG 2.0.0, FHIR R4).

Every URL and code here is taken from the IG's source (the ``HL7/phd`` repository, tag
``2.0.0``, ``input/fsh/``): the profile files name their canonical URL (``^url``) and fixed
codes; the value sets list the codes a coding may take. The file each comes from is named
beside it.
"""

from __future__ import annotations

from protocols.gatt.observation import MDC_TABLE

MDC_SYSTEM = "urn:iso:std:iso:11073:10101"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
#: RFC 3986 URIs as identifier values (FHIR R4 "Identifier": ``urn:uuid:...``).
URI_SYSTEM = "urn:ietf:rfc:3986"

_PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
#: StructureDefinition.PhdNumericObservation.fsh
PHD_NUMERIC = _PHD + "PhdNumericObservation"
#: StructureDefinition.PhdCompoundNumericObservation.fsh
PHD_COMPOUND_NUMERIC = _PHD + "PhdCompoundNumericObservation"
#: StructureDefinition.PhdCodedEnumerationObservation.fsh
PHD_CODED = _PHD + "PhdCodedEnumerationObservation"
#: StructureDefinition.PhdCoincidentTimeStampObservation.fsh
PHD_COINCIDENT_TIME_STAMP = _PHD + "PhdCoincidentTimeStampObservation"
#: StructureDefinition.PhdRtsaObservation.fsh (a sample array: ``valueSampledData``)
PHD_RTSA = _PHD + "PhdRtsaObservation"
#: StructureDefinition.PhdStringObservation.fsh (``valueString``): at tag 2.0.0 the string
#: profile is PhdStringObservation (the IG's example ``stringenum-1234.json`` claims it; the
#: change log's FHIR-48239 reworked the ballot's PhdStringEnumerationObservation)
PHD_STRING = _PHD + "PhdStringObservation"
#: StructureDefinition.PhdBitsEnumerationObservation.fsh (bit fields, :mod:`.bits`)
PHD_BITS = _PHD + "PhdBitsEnumerationObservation"
#: StructureDefinition.PhdCompoundObservation.fsh (components of mixed value types)
PHD_COMPOUND = _PHD + "PhdCompoundObservation"
#: StructureDefinition.PhdBaseObservation.fsh: ``component[supplementalTypesComponent]``
#: code, MDC_ATTR_SUPPLEMENTAL_TYPES (fixed #68193).
MDC_ATTR_SUPPLEMENTAL_TYPES = 68193
#: StructureDefinition.PhdDevice.fsh
PHD_DEVICE = _PHD + "PhdDevice"
#: StructureDefinition.PhgDevice.fsh
PHG_DEVICE = _PHD + "PhgDevice"

#: StructureDefinition.PhdBaseObservation.fsh: the conditional-create identifier's system
#: (slice ``conditionalCreate``, fixed).
CONDITIONAL_CREATE_SYSTEM = _PHD + "PhdBaseObservation"
#: StructureDefinition.PhdBaseObservation.fsh: ``extension[GatewayDevice]`` (FHIR core).
GATEWAY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
#: StructureDefinition.CoincidentTimeStampReference.fsh
COINCIDENT_TIME_STAMP_EXTENSION = _PHD + "CoincidentTimeStampReference"
#: CodeSystem.PhdObservationCategories.fsh; PhdBaseObservation's ``category[PHD-Observation]``
PHD_CATEGORY_SYSTEM = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
PHD_CATEGORY_CODE = "phd"

#: CodeSystem.ContinuaDeviceIdentifiers.fsh: identifier types of PhdDevice / PhgDevice.
CONTINUA_IDENTIFIERS = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"
#: StructureDefinition.PhdDevice.fsh, ``identifier[btmacAddressIdentifier].system``.
BTMAC_SYSTEM = "http://hl7.org/fhir/sid/eui-48/bluetooth"

#: StructureDefinition.PhdDevice.fsh: ``type.coding[PhdCode]`` = MDC_MOC_VMS_MDS_SIMP.
MDC_MOC_VMS_MDS_SIMP = 65573
#: StructureDefinition.PhgDevice.fsh: ``type.coding[MDCType]`` = MDC_MOC_VMS_MDS_AHD.
MDC_MOC_VMS_MDS_AHD = 531981
#: ValueSet.MDCClockTypes.fsh: MDC_ATTR_TIME_ABS, the clock type of a GATT Current Time.
MDC_ATTR_TIME_ABS = 67975
#: ValueSet.MDCDeviceVersionTypes.fsh (codes), displays from the IG's Device examples.
MDC_ID_PROD_SPEC_HW = 531974
MDC_ID_PROD_SPEC_SW = 531975
MDC_ID_PROD_SPEC_FW = 531976
MDC_ID_PROD_SPEC_PROTOCOL = 531977
VERSION_NAMES = {
    MDC_ID_PROD_SPEC_HW: "MDC_ID_PROD_SPEC_HW",
    MDC_ID_PROD_SPEC_SW: "MDC_ID_PROD_SPEC_SW",
    MDC_ID_PROD_SPEC_FW: "MDC_ID_PROD_SPEC_FW",
    MDC_ID_PROD_SPEC_PROTOCOL: "MDC_ID_PROD_SPEC_PROTOCOL",
}

#: ValueSet.DeviceTypes11073MDC.fsh: the specializations narhub's devices map to.
MDC_DEV_SPEC_PROFILE_PULS_OXIM = 528388
MDC_DEV_SPEC_PROFILE_BP = 528391
MDC_DEV_SPEC_PROFILE_TEMP = 528392
MDC_DEV_SPEC_PROFILE_SCALE = 528399
MDC_DEV_SPEC_PROFILE_GLUCOSE = 528401
MDC_DEV_SUB_SPEC_PROFILE_HR = 528525
SPECIALIZATION_NAMES = {
    MDC_DEV_SPEC_PROFILE_PULS_OXIM: "MDC_DEV_SPEC_PROFILE_PULS_OXIM",
    MDC_DEV_SPEC_PROFILE_BP: "MDC_DEV_SPEC_PROFILE_BP",
    MDC_DEV_SPEC_PROFILE_TEMP: "MDC_DEV_SPEC_PROFILE_TEMP",
    MDC_DEV_SPEC_PROFILE_SCALE: "MDC_DEV_SPEC_PROFILE_SCALE",
    MDC_DEV_SPEC_PROFILE_GLUCOSE: "MDC_DEV_SPEC_PROFILE_GLUCOSE",
    MDC_DEV_SUB_SPEC_PROFILE_HR: "MDC_DEV_SUB_SPEC_PROFILE_HR",
}
#: The version of a specialization a Bluetooth health profile device is treated "as if" it
#: implemented (the IG's Bluetooth pulse oximeter example, phd-74E8FFFEFF051C00..., says "1").
SPECIALIZATION_VERSION = "1"


def _specialization(ref_id: str) -> int | None:
    """The specialization a measurement's MDC reference id belongs to."""
    prefixes = (
        ("MDC_PRESS_BLD_NONINV", MDC_DEV_SPEC_PROFILE_BP),
        ("MDC_PULS_RATE_NON_INV", MDC_DEV_SPEC_PROFILE_BP),
        ("MDC_TEMP_", MDC_DEV_SPEC_PROFILE_TEMP),
        ("MDC_MASS_BODY", MDC_DEV_SPEC_PROFILE_SCALE),
        ("MDC_LEN_BODY", MDC_DEV_SPEC_PROFILE_SCALE),
        ("MDC_RATIO_MASS_BODY", MDC_DEV_SPEC_PROFILE_SCALE),
        ("MDC_PULS_OXIM_", MDC_DEV_SPEC_PROFILE_PULS_OXIM),
        ("MDC_CONC_GLU_", MDC_DEV_SPEC_PROFILE_GLUCOSE),
        ("MDC_CONC_HBA1C", MDC_DEV_SPEC_PROFILE_GLUCOSE),
        ("MDC_CTXT_GLU_", MDC_DEV_SPEC_PROFILE_GLUCOSE),
        ("MDC_ECG_", MDC_DEV_SUB_SPEC_PROFILE_HR),
    )
    for prefix, code in prefixes:
        if ref_id.startswith(prefix):
            return code
    return None


#: A measurement's MDC code -> the specialization of a device that reports it.
SPECIALIZATION_OF: dict[int, int] = {
    code: spec
    for code, (ref_id, _) in MDC_TABLE.items()
    if (spec := _specialization(ref_id)) is not None
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

#: Special value -> FHIR dataAbsentReason code (PHD IG "FLOATs" page).
DATA_ABSENT: dict[str, str] = {
    "nan": "not-a-number",
    "nres": "error",
    "+inf": "positive-infinity",
    "-inf": "negative-infinity",
    "reserved": "error",
}

#: Every body-temperature MDC code (generic and per site).
BODY_TEMPERATURE_CODES = frozenset(
    code for code, (ref_id, _) in MDC_TABLE.items() if ref_id.startswith("MDC_TEMP_")
)
