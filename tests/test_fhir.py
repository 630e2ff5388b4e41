"""FHIR mapping: exact decimals, specials, coded values, codes, compound blood pressure, and
stable identifiers (PHD IG 2.0.0, ``HL7/phd`` tag 2.0.0; the profiles' required elements are
checked in tests/test_fhir_profiles.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble import MeasurementEvent
from gateway.pipeline import readings_from_event
from protocols import gatt
from protocols.errors import EncodeError
from protocols.fhir import Filed, PatientRef, batch_resources, describe, dumps_exact
from protocols.fhir.identity import EPOCH_2000_S, patient_id, phd_time_stamp
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body
from protocols.uplink.body import decode_body
from protocols.uplink.device_facts import ClockRead, clock_flags, clock_read
from rig.refday import reference_day

HEADER = BatchHeader("hub-a", "boot", 1, 0, Priority.CLINICAL, 1)
PATIENT = PatientRef("urn:oid:1.2.752.0.99", "p-0042")
CUFF = "C0:FF:EE:00:0D:02"


def _resources(
    readings: Sequence[WireReading], patient: PatientRef | None = PATIENT
) -> list[dict[str, Any]]:
    """The Observations of readings filed to ``patient``, as a receiver writes them (JSON)."""
    out = batch_resources("hub-a", 3, [Filed(r, patient) for r in readings], describe(readings))
    return [json.loads(dumps_exact(o), parse_float=str, parse_int=str) for o in out.observations]


def _obs(reading: WireReading) -> dict[str, Any]:
    (resource,) = _resources([reading])
    return resource


@pytest.mark.parametrize("text", ["37.20", "2.00", "2E+1", "-51.1", "0.0001"])
def test_decimal_is_written_exactly(text: str) -> None:
    reading = WireReading("s", 150364, "Cel", 0, Decimal(text))
    (resource,) = batch_resources("hub-a", 3, [Filed(reading, PATIENT)], {}).observations
    assert f'"value":{text},' in dumps_exact(resource)
    assert _obs(reading)["valueQuantity"]["value"] == text


@pytest.mark.parametrize(
    ("special", "reason"),
    [
        ("nan", "not-a-number"),
        ("nres", "error"),
        ("+inf", "positive-infinity"),
        ("-inf", "negative-infinity"),
        ("reserved", "error"),
    ],
)
def test_special_values_become_data_absent_reason(special: str, reason: str) -> None:
    resource = _obs(WireReading("s", 150364, "Cel", 0, None, special))
    assert "valueQuantity" not in resource
    assert resource["dataAbsentReason"]["coding"][0]["code"] == reason


def test_temperature_has_body_temperature_loinc_once_and_vital_signs_once() -> None:
    resource = _obs(WireReading("s", 188424, "Cel", 0, Decimal("37.0")))  # MDC_TEMP_ORAL
    codes = [c["code"] for c in resource["code"]["coding"]]
    assert codes == ["188424", "8310-5", "8331-1"]
    vital = [c for c in resource["category"] if c["coding"][0]["code"] == "vital-signs"]
    assert len(vital) == 1


def test_every_observation_has_a_subject_the_patient_by_identifier() -> None:
    resource = _obs(WireReading("s", 150364, "Cel", 0, Decimal("37.0"), device=CUFF))
    assert resource["subject"] == {
        "reference": f"Patient/{patient_id(PATIENT)}",
        "type": "Patient",
        "identifier": {"system": PATIENT.system, "value": PATIENT.value},
    }
    assert resource["device"] == {"reference": "Device/phd-C0FFEE000D02"}


def test_each_patient_is_one_patient_resource_with_the_pseudonym_only() -> None:
    """FHIR R4 Patient (every element 0..): the identifier and nothing that names anyone."""
    from fhir.resources.R4B.patient import Patient

    other = PatientRef(PATIENT.system, "p-0043")
    readings = [WireReading("s", 150364, "Cel", t, Decimal("37.0"), device=CUFF) for t in (0, 1)]
    filed = [Filed(readings[0], PATIENT), Filed(readings[1], other), Filed(readings[1], PATIENT)]
    out = batch_resources("hub-a", 3, filed, {})
    assert out.all()[: len(out.patients)] == out.patients  # referenced ones first
    assert [p["identifier"] for p in out.patients] == [
        [{"system": PATIENT.system, "value": PATIENT.value}],
        [{"system": other.system, "value": other.value}],
    ]
    for resource in out.patients:
        assert set(resource) == {"resourceType", "id", "identifier"}
        Patient.model_validate_json(dumps_exact(resource))
    ids = {p["id"] for p in out.patients}
    assert {o["subject"]["reference"] for o in out.observations} == {f"Patient/{i}" for i in ids}
    # The same pseudonym in another batch: the same Patient (its id is the pseudonym's).
    again = batch_resources("hub-b", 3, [Filed(readings[0], PATIENT)], {})
    assert again.patients == out.patients[:1]


def test_glucose_meal_context_travels_as_a_coded_observation() -> None:
    measurement = gatt.decode(0x2A34, bytes([0x02, 1, 0, 1]))  # meal = preprandial
    event = MeasurementEvent("AA:BB:CC:DD:EE:FF", 0x2A34, b"", measurement, None, 5, 0)
    (reading,) = readings_from_event(event)
    (decoded,) = decode_body(encode_body(HEADER, [reading.to_wire()]), HEADER.hub_id).readings
    resource = _obs(decoded)
    assert "valueQuantity" not in resource
    coding = resource["valueCodeableConcept"]["coding"][0]
    assert coding["code"] == "8417868"  # MDC_CTXT_GLU_MEAL_PREPRANDIAL
    assert "note" not in resource


def _blood_pressure(t_ms: int, flags: frozenset[str] = frozenset()) -> list[WireReading]:
    """What the hub sends for one cuff measurement (protocols/gatt/blood_pressure.py)."""
    part = flags | {"component-of:150020"}
    return [
        WireReading(f"{CUFF}/150021", 150021, "mm[Hg]", t_ms, Decimal(128), None, part, CUFF),
        WireReading(f"{CUFF}/150022", 150022, "mm[Hg]", t_ms, Decimal(83), None, part, CUFF),
        WireReading(f"{CUFF}/150023", 150023, "mm[Hg]", t_ms, Decimal("98.0"), None, part, CUFF),
        WireReading(f"{CUFF}/149546", 149546, "/min", t_ms, Decimal(64), None, flags, CUFF),
    ]


def test_blood_pressure_is_one_compound_observation_and_pulse_its_own() -> None:
    """IG example input/examples/compound-numeric-blood-pressure.json: MDC 150020 + LOINC
    85354-9, components 150021/8480-6, 150022/8462-4 and 150023, no value of its own."""
    bp, pulse = _resources(_blood_pressure(1_763_800_001_000))
    assert [c["code"] for c in bp["code"]["coding"]] == ["150020", "85354-9"]
    assert "valueQuantity" not in bp
    components = [[c["code"] for c in comp["code"]["coding"]] for comp in bp["component"]]
    assert components == [["150021", "8480-6"], ["150022", "8462-4"], ["150023"]]
    assert [comp["valueQuantity"]["value"] for comp in bp["component"]] == ["128", "83", "98.0"]
    assert bp["effectiveDateTime"] == pulse["effectiveDateTime"] == "2025-11-22T08:26:41.000Z"
    assert [c["code"] for c in pulse["code"]["coding"]] == ["149546", "8867-4"]
    assert pulse["valueQuantity"]["value"] == "64"


def test_a_threshold_one_component_crossed_is_noted_on_that_component_only() -> None:
    readings = _blood_pressure(1_763_800_001_000)
    readings[0] = WireReading(**{**_fields(readings[0]), "flags": readings[0].flags | {"x-hi"}})
    bp, _ = _resources(readings)
    assert bp["note"] == [{"text": "flags 150021: x-hi"}]


def _fields(r: WireReading) -> dict[str, Any]:
    return {name: getattr(r, name) for name in WireReading.__dataclass_fields__}


def test_two_cuff_measurements_at_one_time_stay_two_observations() -> None:
    t = 1_763_800_001_000
    first, second = _blood_pressure(t), _blood_pressure(t)
    second[0] = WireReading(**{**_fields(second[0]), "value": Decimal(140)})
    resources = _resources([*first[:3], *second[:3]])
    assert len(resources) == 2
    assert {r["component"][0]["valueQuantity"]["value"] for r in resources} == {"128", "140"}
    assert resources[0]["id"] != resources[1]["id"]


def test_components_split_across_batches_are_both_kept_under_distinct_identifiers() -> None:
    """A hub never splits one measurement across batches (gateway/pipeline.py raises all its
    components to alert together), but an older hub or a chunk boundary might: each part is
    written, under its own identifier, so a conditional create keeps both."""
    t = 1_763_800_001_000
    clock = clock_flags(40, t + 99_000)
    readings = _blood_pressure(t, clock)
    (systolic,) = _resources(readings[:1])
    rest = _resources(readings[1:3])
    (whole,) = _resources(readings[:3])
    ids = {systolic["identifier"][0]["value"], rest[0]["identifier"][0]["value"]}
    assert len(ids) == 2
    assert whole["identifier"][0]["value"] not in ids


def test_identifier_of_a_time_stamped_reading_follows_the_ig_rule() -> None:
    """input/intro-notes/StructureDefinition-PhdBaseObservation-notes.md (Conditional-create
    Identifier): device-patient-type-timestamp, the PHD's own stamp in seconds since
    2000-01-01 (input/pagecontent/GeneratingtheTimeStampPartIdentifier.md)."""
    t = 1_763_800_001_000  # the corrected time; the device's clock was 40 s ahead
    bp, _ = _resources(_blood_pressure(t, clock_flags(40, t + 99_000)))
    stamp = (t // 1000 + 40) - EPOCH_2000_S
    ig, narhub = bp["identifier"]
    assert ig == {
        "system": "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation",
        "value": f"C0FFEE000D02-p-0042-urn:oid:1.2.752.0.99-150020-{stamp}",
    }
    # narhub's identifier beside it (second: a conditional create takes the first), under
    # which the region writes the reading when the IG's names another (region.state.resolve).
    assert narhub["system"] == "urn:ietf:rfc:3986"
    assert narhub["value"].startswith("urn:uuid:")


def test_time_stamp_entry_matches_the_ig_example() -> None:
    """HL7/phd input/pagecontent/GeneratingtheTimeStampPartIdentifier.md: 2021-11-22
    11:56:30 with a millisecond resolution is "690897360.567" (its example's .567 is a
    sub-second part of the stamp)."""
    t_ms = (EPOCH_2000_S + 690_897_360) * 1000 + 567
    assert phd_time_stamp(t_ms, 0) == "690897360.567"
    assert phd_time_stamp(t_ms - 567 - 40_000, 40) == "690897360"


def test_identifier_is_deterministic_distinct_and_names_the_patient() -> None:
    a = WireReading("s", 150364, "Cel", 1000, Decimal("37.0"), device="d")
    b = WireReading("s", 150364, "Cel", 1001, Decimal("37.0"), device="d")
    assert _obs(a)["id"] == _obs(a)["id"]
    assert _obs(a)["id"] != _obs(b)["id"]
    other = _resources([a], PatientRef(PATIENT.system, "p-0043"))[0]
    assert other["id"] != _obs(a)["id"]


def test_readings_sharing_a_time_get_distinct_identifiers_that_survive_a_resend() -> None:
    """Two RR intervals of one Heart Rate Measurement share device, stream, code and time:
    a conditional create on the identifier must not merge them, and the same batch sent
    again (or re-sealed after a crash) must give the same identifiers."""
    rr = [Decimal(v) for v in ("812.5", "798.828125", "812.5")]
    readings = [WireReading("hrm/147240", 147240, "ms", 5, v, device="hrm") for v in rr]
    ids = [o["id"] for o in _resources(readings)]
    assert len(set(ids)) == 3
    assert ids == [o["id"] for o in _resources(readings)]
    # The first of equal readings keeps the id a lone reading would have.
    assert ids[0] == _obs(readings[0])["id"]
    other = WireReading("hrm/147240", 147240, "ms", 5, Decimal("812.50"), device="hrm")
    assert _obs(other)["id"] not in ids


def test_no_identifier_collides_on_a_reference_day() -> None:
    """The walk (heart rate and every RR interval) and the first night hour, as batched."""
    day = [d.to_wire() for d in reference_day()]
    walk = [r for r in day if r.mdc_code in (147842, 147240)]
    night = [r for r in day if r.mdc_code in (149530, 150456)][:7200]
    assert len(walk) > 4000
    for part in (walk, night):
        ids = [o["id"] for o in _resources(part)]
        assert len(set(ids)) == len(part)


def test_batch_refuses_a_reading_without_value_or_special() -> None:
    with pytest.raises(EncodeError):
        encode_body(HEADER, [WireReading("s", 1, "", 0, None, None)])


def test_every_kind_of_reference_day_reading_is_a_valid_fhir_r4_observation() -> None:
    """Validated with the fhir.resources model (R4B: R4's Observation with errata)."""
    from fhir.resources.R4B.observation import Observation as FhirObservation

    from rig.refday import iter_wire

    seen: set[tuple[int, str, bool]] = set()
    for reading in iter_wire(reference_day()):
        key = (reading.mdc_code, reading.unit, reading.special is None)
        if key in seen:
            continue
        seen.add(key)
        for resource in batch_resources("hub-a", 3, [Filed(reading, PATIENT)], {}).all():
            if resource["resourceType"] != "Observation":
                continue
            parsed = FhirObservation.model_validate_json(dumps_exact(resource))
            assert parsed.status == "final"
            assert parsed.subject is not None
            if reading.special is None:
                assert parsed.valueQuantity is not None or parsed.valueCodeableConcept is not None
            else:
                assert parsed.dataAbsentReason is not None
    assert len(seen) > 20  # every stream kind of the day, specials included


@given(st.integers(-(10**7), 10**7), st.integers(0, 2**45))
def test_clock_flags_round_trip(offset_s: int, read_ms: int) -> None:
    assert clock_read(clock_flags(offset_s, read_ms)) == ClockRead(read_ms, offset_s)


@given(st.frozensets(st.text(max_size=40), max_size=5))
def test_clock_read_of_arbitrary_flags_is_none_or_a_read(flags: frozenset[str]) -> None:
    result = clock_read(flags)
    assert result is None or isinstance(result.offset_s, int)


@pytest.mark.parametrize(
    "flags",
    [
        {"device-clock-offset-s:40"},
        {"device-clock-read-ms:1000"},
        {"device-clock-offset-s:4.5", "device-clock-read-ms:1000"},
        {"device-clock-offset-s:NaN", "device-clock-read-ms:1000"},
        {"device-clock-offset-s:", "device-clock-read-ms:x"},
    ],
)
def test_an_incomplete_or_malformed_clock_read_is_none(flags: set[str]) -> None:
    assert clock_read(frozenset(flags)) is None


def test_a_suspect_time_stamp_keeps_its_time_stamp_reference_but_not_the_ig_identifier() -> None:
    """The hub may have replaced an implausible stamp by the reception time: the PHD's stamp
    cannot be recovered for the IG's identifier; the session's clock read still says how the
    stamp was judged."""
    t = 1_763_800_001_000
    flags = clock_flags(31_536_000, t) | {"device-time-suspect"}
    (pulse,) = _resources([WireReading(f"{CUFF}/149546", 149546, "/min", t, Decimal(60), None,
                                       flags, CUFF)])  # fmt: skip
    assert pulse["identifier"][0]["system"] == "urn:ietf:rfc:3986"
    urls = [e["url"] for e in pulse["extension"]]
    assert "http://hl7.org/fhir/uv/phd/StructureDefinition/CoincidentTimeStampReference" in urls
    assert pulse["note"] == [{"text": "flags: device-time-suspect"}]
