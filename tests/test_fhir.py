"""FHIR mapping: exact decimals, specials, coded values, codes, and stable identifiers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from drivers.ble import MeasurementEvent
from gateway.pipeline import readings_from_event
from protocols import gatt
from protocols.errors import EncodeError
from protocols.fhir import dumps_exact, observation, observations
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body
from protocols.uplink.body import decode_body
from rig.refday import reference_day

HEADER = BatchHeader("hub-a", "boot", 1, 0, Priority.CLINICAL, 1)


def _obs(reading: WireReading) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        dumps_exact(observation(HEADER, reading)), parse_float=str
    )
    return result


@pytest.mark.parametrize("text", ["37.20", "2.00", "2E+1", "-51.1", "0.0001"])
def test_decimal_is_written_exactly(text: str) -> None:
    resource = _obs(WireReading("s", 150364, "Cel", 0, Decimal(text)))
    line = dumps_exact(observation(HEADER, WireReading("s", 150364, "Cel", 0, Decimal(text))))
    assert f'"value":{text},' in line
    assert resource["valueQuantity"]["value"] == text  # type: ignore[index]


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
    assert resource["dataAbsentReason"]["coding"][0]["code"] == reason  # type: ignore[index]


def test_temperature_has_body_temperature_loinc_once_and_vital_signs_once() -> None:
    resource = _obs(WireReading("s", 188424, "Cel", 0, Decimal("37.0")))  # MDC_TEMP_ORAL
    codes = [c["code"] for c in resource["code"]["coding"]]  # type: ignore[index]
    assert codes == ["188424", "8310-5", "8331-1"]
    assert len(resource["category"]) == 1  # type: ignore[arg-type]


def test_identifier_is_deterministic_and_distinct() -> None:
    a = WireReading("s", 150364, "Cel", 1000, Decimal("37.0"), device="d")
    b = WireReading("s", 150364, "Cel", 1001, Decimal("37.0"), device="d")
    assert _obs(a)["id"] == _obs(a)["id"]
    assert _obs(a)["id"] != _obs(b)["id"]


def test_glucose_meal_context_travels_as_a_coded_observation() -> None:
    measurement = gatt.decode(0x2A34, bytes([0x02, 1, 0, 1]))  # meal = preprandial
    event = MeasurementEvent("AA:BB:CC:DD:EE:FF", 0x2A34, b"", measurement, None, 5, 0)
    (reading,) = readings_from_event(event)
    wire = reading.to_wire()
    (decoded,) = decode_body(encode_body(HEADER, [wire]), HEADER.hub_id).readings
    resource = _obs(decoded)
    assert "valueQuantity" not in resource
    coding = resource["valueCodeableConcept"]["coding"][0]  # type: ignore[index]
    assert coding["code"] == "8417868"  # MDC_CTXT_GLU_MEAL_PREPRANDIAL
    assert "note" not in resource


def test_batch_refuses_a_reading_without_value_or_special() -> None:
    with pytest.raises(EncodeError):
        encode_body(HEADER, [WireReading("s", 1, "", 0, None, None)])


def test_every_kind_of_reference_day_reading_is_a_valid_fhir_r4_observation() -> None:
    """Validated with the fhir.resources model (R4B: R4's Observation with errata)."""
    from fhir.resources.R4B.observation import Observation as FhirObservation

    from rig.refday import iter_wire, reference_day

    seen: set[tuple[int, str, bool]] = set()
    for reading in iter_wire(reference_day()):
        key = (reading.mdc_code, reading.unit, reading.special is None)
        if key in seen:
            continue
        seen.add(key)
        text = dumps_exact(observation(HEADER, reading))
        parsed = FhirObservation.model_validate_json(text)
        assert parsed.status == "final"
        if reading.special is None:
            assert parsed.valueQuantity is not None or parsed.valueCodeableConcept is not None
        else:
            assert parsed.dataAbsentReason is not None
    assert len(seen) > 20  # every stream kind of the day, specials included


def test_readings_sharing_a_time_get_distinct_identifiers_that_survive_a_resend() -> None:
    """Two RR intervals of one Heart Rate Measurement share device, stream, code and time:
    a conditional create on the identifier must not merge them, and the same batch sent
    again (or re-sealed after a crash) must give the same identifiers."""
    rr = [Decimal(v) for v in ("812.5", "798.828125", "812.5")]
    readings = [WireReading("hrm/147240", 147240, "ms", 5, v, device="hrm") for v in rr]
    ids = [o["id"] for o in observations(HEADER, readings)]
    assert len(set(ids)) == 3
    assert ids == [o["id"] for o in observations(HEADER, readings)]
    # The first of equal readings keeps the id a lone reading would have.
    assert ids[0] == observation(HEADER, readings[0])["id"]
    # Equal values stay distinct from each other and from a different precision.
    other = WireReading("hrm/147240", 147240, "ms", 5, Decimal("812.50"), device="hrm")
    assert observation(HEADER, other)["id"] not in ids


def test_no_identifier_collides_on_a_reference_day() -> None:
    """The walk (heart rate and every RR interval) and the first night hour, as batched."""
    day = [d.to_wire() for d in reference_day()]
    walk = [r for r in day if r.mdc_code in (147842, 147240)]
    night = [r for r in day if r.mdc_code in (149530, 150456)][:7200]
    assert len(walk) > 4000
    for part in (walk, night):
        ids = [o["id"] for o in observations(HEADER, part)]
        assert len(set(ids)) == len(part)
