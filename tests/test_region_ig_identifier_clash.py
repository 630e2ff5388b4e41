"""Two different readings that the PHD IG's identifier would call one observation.

The IG's conditional-create identifier is device, patient, type and the PHD's time stamp
(``HL7/phd``, ``input/intro-notes/StructureDefinition-PhdBaseObservation-notes.md``,
"Conditional-create Identifier"). A device whose clock stamps whole minutes or seconds can
take two measurements in one stamp (a patient measures twice, a minute apart, on a cuff that
stamps minutes). The region writes both: the second under narhub's identifier, which every
such Observation carries beside the IG's (:func:`region.state.resolve`), and a resend of
either is still written once: in one batch or across batches, on both state backends.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.fhir import PatientRef
from protocols.fhir.identity import observation_id
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from protocols.uplink.device_facts import clock_flags
from region.enrolment_sqlite import enrol_hub
from region.receiver import Receiver
from region.state import BatchKey, ObservationLine, line_keys, resolve
from region.state_open import open_state
from region.state_sqlite import SqliteState

HUB = "hub-clash"
KEY = new_private_key_pem()
SIGNER = PemBatchSigner(HUB, KEY)
TOPIC = f"narhub/v1/{HUB}/up/clinical"
THERMOMETER = "C0:FF:EE:00:0C:01"
T_MS = 1_763_800_020_000  # a whole second: the device stamps seconds
IG_SYSTEM = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"


def _temperature(value: str) -> WireReading:
    """A thermometer reading whose session read the device clock (so it has a PHD stamp)."""
    return WireReading(
        f"{THERMOMETER}/150364",
        150364,
        "Cel",
        T_MS,
        Decimal(value),
        flags=clock_flags(0, T_MS + 5_000),
        device=THERMOMETER,
    )


def _batch(boot: str, seq: int, readings: list[WireReading]) -> bytes:
    header = BatchHeader(HUB, boot, seq, T_MS, Priority.CLINICAL, len(readings))
    return SIGNER.sign(encode_body(header, readings))


def _observations(lines: list[str]) -> list[dict[str, Any]]:
    resources = [json.loads(line) for line in lines]
    # The temperatures (the coincident time stamp they reference is an Observation too).
    return [r for r in resources if r["resourceType"] == "Observation" and "valueQuantity" in r]


def _value(observation: dict[str, Any]) -> str:
    quantity = observation["valueQuantity"]
    assert isinstance(quantity, dict)
    return str(quantity["value"])


def test_two_measurements_in_one_stamp_are_both_written_and_each_once(tmp_path: Path) -> None:
    state, out = tmp_path / "state.db", tmp_path / "obs.ndjson"
    enrol_hub(state, HUB, PatientRef("urn:test:patient", "p-1"))
    receiver = Receiver(PemBatchVerifier({HUB: public_key_pem(KEY)}), SqliteState(state, out))
    (first,) = _observations(receiver.handle(TOPIC, _batch("b", 0, [_temperature("37.0")])))
    assert [i["system"] for i in first["identifier"]] == [IG_SYSTEM, "urn:ietf:rfc:3986"]
    # Another measurement in the same second, in a later batch: not a resend.
    (second,) = _observations(receiver.handle(TOPIC, _batch("b", 1, [_temperature("37.4")])))
    assert _value(second) == "37.4"
    assert [i["system"] for i in second["identifier"]] == ["urn:ietf:rfc:3986"]
    assert second["id"] == observation_id(second["identifier"][0]["value"])
    # Both again, in one batch with a third in that second: only the third is new.
    again = [_temperature("37.0"), _temperature("37.4"), _temperature("37.8")]
    (third,) = _observations(receiver.handle(TOPIC, _batch("b", 2, again)))
    assert _value(third) == "37.8"
    receiver.close()
    written = _observations(out.read_text().splitlines())
    assert sorted(_value(o) for o in written) == ["37.0", "37.4", "37.8"]
    assert len({o["id"] for o in written}) == 3


def _line(ig_id: str, alias: str, text: str) -> ObservationLine:
    """An Observation under the IG's identifier (``ig_id``) with narhub's (``alias``)."""
    return ObservationLine(
        ig_id,
        json.dumps({"resourceType": "Observation", "id": ig_id, "text": text}),
        alias=alias,
        alternate=json.dumps({"resourceType": "Observation", "id": alias, "text": text}),
    )


def _texts(lines: list[str] | None) -> list[tuple[str, str]]:
    assert lines is not None
    return [(json.loads(line)["id"], json.loads(line)["text"]) for line in lines]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_both_state_backends_resolve_a_clash_alike(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec = str(tmp_path / "state.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    state = open_state(spec, output=tmp_path / "obs.ndjson")
    a, b = _line("P", "a", "A"), _line("P", "b", "B")
    assert _texts(state.commit_batch(BatchKey(HUB, "x", 0), [a])) == [("P", "A")]
    assert _texts(state.commit_batch(BatchKey(HUB, "x", 1), [b])) == [("b", "B")]
    assert _texts(state.commit_batch(BatchKey(HUB, "x", 2), [a, b])) == []
    c, d = _line("P", "c", "C"), _line("P", "d", "D")
    assert _texts(state.commit_batch(BatchKey(HUB, "x", 3), [c, d, c])) == [("c", "C"), ("d", "D")]
    e, f = _line("Q", "e", "E"), _line("Q", "f", "F")
    assert _texts(state.commit_batch(BatchKey(HUB, "x", 4), [e, f])) == [("Q", "E"), ("f", "F")]
    state.close()


def test_resolve_is_the_rule_both_backends_follow() -> None:
    a, b = _line("P", "a", "A"), _line("P", "b", "B")
    plain = ObservationLine("rt", '{"resourceType":"Observation","id":"rt"}')
    first = resolve([a, plain, plain], set())
    assert [o.id for o in first.fresh] == ["P", "rt"]
    assert first.keys == ["P", "a", "rt"]
    later = resolve([a, b], set(first.keys))
    assert [o.id for o in later.fresh] == ["b"]
    assert [o.id for o in later.view] == ["P", "b"]  # the FHIR queue's view of the batch
    assert resolve([b], {*first.keys, "b"}).fresh == []


def test_a_line_recovered_after_a_crash_records_its_alias_too() -> None:
    """Lines written before the transaction that records them (SQLite recovery) are known
    again by both identifiers, so a resend after the restart is not written under the
    alias."""
    resource = {
        "resourceType": "Observation",
        "id": observation_id("ig-value"),
        "identifier": [
            {"system": IG_SYSTEM, "value": "ig-value"},
            {
                "system": "urn:ietf:rfc:3986",
                "value": "urn:uuid:5f3c2c58-1d2b-5d6f-9d7e-0a1b2c3d4e5f",
            },
        ],
    }
    assert line_keys(resource) == [
        observation_id("ig-value"),
        "5f3c2c58-1d2b-5d6f-9d7e-0a1b2c3d4e5f",
    ]


def test_a_recovered_line_with_odd_identifiers_records_only_its_id() -> None:
    """A line in the output that is a resource but not one narhub wrote (identifiers that are
    not a list of objects) is recorded by its id; nothing escapes as AttributeError."""
    for identifiers in ("urn:x", ["first", "second"], [{}, {"system": "urn:ietf:rfc:3986"}]):
        resource = {"resourceType": "Observation", "id": "o-1", "identifier": identifiers}
        assert line_keys(resource) == ["o-1"]
