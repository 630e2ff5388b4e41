"""The region's FHIR resources for the issue-24 devices meet the PHD IG 2.0.0 profiles they
claim: a GHS device's ACOM observations (numeric, compound, coded, sample array, string,
supplemental types) and a CGM's glucose with its trend, built from real parts on the hub's
side (decoded GATT values placed in their session, the hub's pipeline, a real batch) and
checked as tests/test_fhir_profiles.py checks the classic profiles (IG source ``HL7/phd``
tag 2.0.0: input/fsh/StructureDefinition.PhdRtsaObservation.fsh,
StructureDefinition.PhdStringObservation.fsh, StructureDefinition.PhdBitsEnumeration
Observation.fsh, StructureDefinition.PhdCompoundObservation.fsh, StructureDefinition.PhdBase
Observation.fsh's supplementalTypesComponent; the IG's examples bits-observation.json and
compound-observation-glucose.json are the vectors of the bit field and the mixed compound)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from fhir_profiles import PHD, violations

from drivers.ble import ClockObservation, MeasurementEvent
from drivers.ble.events import device_time_of
from gateway.pipeline import readings_from_event
from protocols import gatt
from protocols.fhir import Filed, PatientRef, batch_resources, describe, dumps_exact
from protocols.gatt import acom, cgm
from protocols.gatt import observation as mdc
from protocols.gatt.elapsed_time import ElapsedTime, TimeResolution
from protocols.gatt.medfloat import MedFloat
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body
from protocols.uplink.body import decode_body

HUB = "hub-devices24"
PATIENT = PatientRef("urn:oid:1.2.752.0.99", "p-0024")
GHS = "C0:FF:EE:00:24:11"
CGM = "C0:FF:EE:00:24:12"
T0 = 1_795_000_000_000
DIS = {0x2A29: "narhub-sim", 0x2A24: "EMU-1", 0x2A25: "SN00000024", 0x2A26: "1.0.0"}
#: 2026-11-22 08:30:00 UTC as an Elapsed Time (seconds since 2000-01-01, UTC).
STAMP = ElapsedTime(848_651_400, TimeResolution.SECOND, utc=True)
GHS_CLOCK = ClockObservation(
    dt.datetime(2026, 11, 22, 8, 30, 5, tzinfo=dt.UTC), dt.datetime(2026, 11, 22, 8, 30), 5.0
)
START = cgm.CgmSessionStartTime(gatt.DateTime(2026, 11, 22, 6, 0, 0))


def _event(
    device: str, characteristic: int, measurement: Any, t_ms: int, **kw: Any
) -> MeasurementEvent:
    return MeasurementEvent(
        device, characteristic, b"", measurement, None, t_ms, t_ms * 1_000_000,
        device_time=device_time_of(measurement), **kw,
    )  # fmt: skip


def _dis(device: str) -> list[MeasurementEvent]:
    return [
        _event(device, uuid, gatt.decode(uuid, text.encode()), T0) for uuid, text in DIS.items()
    ]


def _observation(
    value: acom.ObservationValue, code: int, **kw: Any
) -> gatt.ReceivedHealthObservation:
    o = acom.HealthObservation(value, observation_type=code, time_stamp=STAMP, patient_id=1, **kw)
    return gatt.ReceivedHealthObservation(o, kw.get("object_id"))


def _ghs_events() -> list[MeasurementEvent]:
    live = gatt.LIVE_HEALTH_OBSERVATIONS
    values = [
        _observation(
            acom.NumericValue(6048, MedFloat(Decimal("36.8"), None)),
            mdc.MDC_TEMP_BODY,
            supplemental_information=(mdc.MDC_MODALITY_SPOT,),
        ),
        _observation(
            acom.CompoundValue(
                tuple(
                    acom.CompoundComponent(c, acom.NumericValue(3872, MedFloat.of(v)))
                    for c, v in ((150021, 121), (150022, 79), (150023, 93))
                )
            ),
            mdc.MDC_PRESS_BLD_NONINV,
        ),
        _observation(acom.DiscreteValue(mdc.MDC_CTXT_GLU_MEAL_FASTING), mdc.MDC_CTXT_GLU_MEAL),
        _observation(
            acom.SampleArrayValue(
                512,
                MedFloat(Decimal("0.01"), None),
                MedFloat.of(0),
                MedFloat(Decimal("0.5"), None),
                25,
                1,
                bytes([100, 120, 140, 120]),
            ),
            150452,
        ),
        _observation(acom.StringValue("resting"), 68512),
        # input/examples/bits-observation.json: MDC_PULS_OXIM_DEV_STATUS with MDER bits 2, 7,
        # 10, 11 and 12 set, all events; on the GHS wire (little-endian) bits 13, 8, 5, 4, 3.
        _observation(
            acom.CompoundStateEventValue(
                b"\xff\xff", b"\xff\xff", _le(1 << 13 | 1 << 8 | 1 << 5 | 1 << 4 | 1 << 3)
            ),
            mdc.MDC_PULS_OXIM_DEV_STATUS,
        ),
        # A bit field of a type ASN1ToHL7 does not list: its integer, no profile.
        _observation(acom.CompoundStateEventValue(b"\x03", b"\x00", b"\x01"), 8_454_999),
        # input/examples/compound-observation-glucose.json: a number, a code and a string.
        _observation(
            acom.CompoundValue(
                (
                    acom.CompoundComponent(
                        160184, acom.NumericValue(4722, MedFloat(Decimal("6.3"), None))
                    ),
                    acom.CompoundComponent(8417864, acom.DiscreteValue(8417872)),
                    acom.CompoundComponent(8417846, acom.StringValue("Somewhere on the body.")),
                )
            ),
            8452097,
        ),
    ]
    return [_event(GHS, live, v, T0 + 1000 * i, clock=GHS_CLOCK) for i, v in enumerate(values)]


def _le(bits: int) -> bytes:
    return bits.to_bytes(2, "little")


def _cgm_event() -> MeasurementEvent:
    record = cgm.CgmMeasurementRecord(
        MedFloat.of(104),
        150,
        trend_mg_dl_per_min=MedFloat(Decimal("-1.2"), None),
        quality_percent=MedFloat.of(96),
    )
    placed = cgm.CgmSessionMeasurement(cgm.CgmMeasurement((record,)), START)
    clock = ClockObservation(
        dt.datetime(2026, 11, 22, 8, 30), dt.datetime(2026, 11, 22, 8, 30), 0.0
    )
    return _event(CGM, gatt.CGM_MEASUREMENT, placed, T0 + 9000, clock=clock)


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    events = [*_dis(GHS), *_ghs_events(), *_dis(CGM), _cgm_event()]
    readings: list[WireReading] = [r.to_wire() for e in events for r in readings_from_event(e)]
    header = BatchHeader(HUB, "b1", 0, T0, Priority.CLINICAL, len(readings))
    wire = list(decode_body(encode_body(header, readings), HUB).readings)
    filed = [Filed(r, PATIENT) for r in wire]
    out = batch_resources(HUB, 3, filed, describe(wire)).all()
    return [json.loads(dumps_exact(r)) for r in out]


def _claims(resources: list[dict[str, Any]], profile: str) -> list[dict[str, Any]]:
    return [r for r in resources if PHD + profile in r.get("meta", {}).get("profile", [])]


def _code(r: dict[str, Any]) -> str:
    return str(r.get("code", {}).get("coding", [{}])[0].get("code"))


def test_valid_fhir_r4_and_every_claim_met(resources: list[dict[str, Any]]) -> None:
    from fhir.resources.R4B.device import Device
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.patient import Patient

    models = {"Device": Device, "Observation": Observation, "Patient": Patient}
    for resource in resources:
        models[resource["resourceType"]].model_validate_json(json.dumps(resource))
    assert violations(resources) == []


def test_ghs_observation_classes_take_their_profiles(resources: list[dict[str, Any]]) -> None:
    (rtsa,) = _claims(resources, "PhdRtsaObservation")
    data = rtsa["valueSampledData"]
    assert data["data"] == "100 120 140 120"  # the samples as the device sent them
    assert (data["factor"], data["origin"]["value"], data["period"]) == (0.01, 0, 20)
    assert data["origin"]["code"] == "1"
    assert not _claims(resources, "PhdStringEnumerationObservation")  # not a 2.0.0 profile
    (string,) = _claims(resources, "PhdStringObservation")
    assert string["valueString"] == "resting"
    assert "note" not in string
    compound = _claims(resources, "PhdCompoundNumericObservation")
    assert [_code(r) for r in compound] == ["150020"]
    assert [c["code"]["coding"][0]["code"] for c in compound[0]["component"]] == [
        "150021",
        "150022",
        "150023",
    ]
    (coded,) = _claims(resources, "PhdCodedEnumerationObservation")
    assert coded["valueCodeableConcept"]["coding"][0]["code"] == str(mdc.MDC_CTXT_GLU_MEAL_FASTING)
    (temperature,) = [
        r for r in _claims(resources, "PhdNumericObservation") if _code(r) == "150364"
    ]
    (supplemental,) = temperature["component"]
    assert supplemental["code"]["coding"][0]["code"] == "68193"
    assert supplemental["valueCodeableConcept"]["coding"][0]["code"] == str(mdc.MDC_MODALITY_SPOT)
    # The stamp (UTC, 08:30:00) corrected by the session's Elapsed Time offset (5 s).
    assert temperature["effectiveDateTime"] == "2026-11-22T08:29:55.000Z"


def test_cgm_glucose_carries_its_trend_as_a_component(resources: list[dict[str, Any]]) -> None:
    glucose = [r for r in resources if _code(r) == "160212"]
    assert len(glucose) == 1  # one Observation: the value, and the trend beside it
    (g,) = glucose
    assert PHD + "PhdNumericObservation" in g["meta"]["profile"]
    assert g["valueQuantity"]["value"] == 104
    assert {c["code"] for c in g["code"]["coding"]} == {"160212", "99504-3"}
    (trend,) = g["component"]
    assert trend["code"]["coding"][0]["code"] == str(mdc.MDC_CONC_GLU_TREND)
    assert trend["valueQuantity"] == {
        "value": -1.2,
        "unit": "mg/dL/min",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL/min",
    }
    assert "cgm-quality-percent:96" in g["note"][0]["text"]
    assert not [r for r in resources if _code(r) == str(mdc.MDC_CONC_GLU_TREND)]
    # The record's time: session start 06:00 + 150 min, on the hub's timeline.
    assert g["effectiveDateTime"] == dt.datetime(2026, 11, 22, 8, 30).astimezone(dt.UTC).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


def test_bit_field_is_the_igs_bits_example(resources: list[dict[str, Any]]) -> None:
    """StructureDefinition.PhdBitsEnumerationObservation.fsh: no value[x], a boolean
    component per reported bit coded ``<type>.<MDER bit>`` in ASN1ToHL7; cleared event bits
    are not reported. The components are those of the IG's bits-observation.json."""
    (bits,) = _claims(resources, "PhdBitsEnumerationObservation")
    assert _code(bits) == "150604"
    assert not [k for k in bits if k.startswith("value")]
    assert [
        (c["code"]["coding"][0]["code"], c["code"]["coding"][0]["display"], c["valueBoolean"])
        for c in bits["component"]
    ] == [
        ("150604.2", "sensor-displaced", True),
        ("150604.7", "signal-pulse-questionable", True),
        ("150604.10", "signal-low-perfusion", True),
        ("150604.11", "signal-poor", True),
        ("150604.12", "signal-inadequate", True),
    ]
    assert {c["code"]["coding"][0]["system"] for c in bits["component"]} == {
        "http://terminology.hl7.org/CodeSystem/ASN1ToHL7"
    }
    (unknown,) = [r for r in resources if _code(r) == "8454999"]
    assert "meta" not in unknown  # ASN1MeasurementBits has no code for it: no claim
    assert unknown["valueQuantity"]["value"] == 1


def test_mixed_compound_is_a_phd_compound_observation(resources: list[dict[str, Any]]) -> None:
    """StructureDefinition.PhdCompoundObservation.fsh, as compound-observation-glucose.json:
    a number (valueQuantity), a code (valueCodeableConcept) and a string (valueString)."""
    (compound,) = _claims(resources, "PhdCompoundObservation")
    assert _code(compound) == "8452097"
    assert not [k for k in compound if k.startswith("value")]
    quantity, code, text = compound["component"]
    assert quantity["valueQuantity"] == {
        "value": 6.3,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert code["code"]["coding"][0]["code"] == "8417864"
    assert code["valueCodeableConcept"]["coding"][0]["code"] == "8417872"
    assert text["code"]["coding"][0]["code"] == "8417846"
    assert text["valueString"] == "Somewhere on the body."
    # The blood pressure (numbers only) stays PhdCompoundNumericObservation.
    assert [_code(r) for r in _claims(resources, "PhdCompoundNumericObservation")] == ["150020"]


def test_cgm_codes_are_pinned_to_their_sources() -> None:
    """MDC_CONC_GLU_TREND: MDC_PART_PHD_DM (128) term 29400, from a public PHD-to-FHIR
    encoder's nomenclature table, whose MDC_CGM_DEV_STAT (term 29452) is the 8418060 of the
    IG's CodeSystem.ASN1ToHL7.fsh (tag 2.0.0). No quality code could be verified: the quality
    stays a flag (test_cgm_glucose_carries_its_trend_as_a_component: one component only)."""
    from protocols.fhir.bits import MEASUREMENT_BITS

    assert mdc.MDC_CONC_GLU_TREND == 128 * 65536 + 29400 == 8418008
    assert mdc.MDC_CGM_DEV_STAT == 128 * 65536 + 29452 == 8418060
    assert MEASUREMENT_BITS[mdc.MDC_CGM_DEV_STAT][0] == ("sensor-session-stopped", "event")
    assert not [ref for ref, _ in mdc.MDC_TABLE.values() if "QUAL" in ref]  # none invented
