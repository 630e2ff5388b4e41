"""The ledger check itself must be able to fail: missing, doubled and foreign readings, and
evictions the tombstones do not account for."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from protocols.fhir import Filed, PatientRef, batch_resources, describe, dumps_exact
from protocols.uplink import WireReading
from protocols.uplink.device_facts import clock_flags
from rig.ledger import (
    FhirReading,
    LedgerEntry,
    Tombstone,
    fhir_reading,
    fhir_readings,
    read_fhir,
    reconcile,
)


def _entry(value: str, device: str = "C0:FF:EE:00:00:01") -> LedgerEntry:
    return LedgerEntry("ble", device, "thermometer", 188424, "Cel", value, None, "0")


def _out(value: str, device: str = "c0:ff:ee:00:00:01") -> FhirReading:
    return FhirReading(device, 188424, "Cel", value)


def test_exact_match_with_the_same_value_twice() -> None:
    ledger = [_entry("37.2"), _entry("37.2"), _entry("36.9")]
    result = reconcile(ledger, [_out("37.20"), _out("37.2"), _out("36.9")])
    assert result.exact
    assert result.produced["thermometer"] == result.delivered["thermometer"] == 3


def test_a_missing_reading_is_reported() -> None:
    result = reconcile([_entry("37.2"), _entry("37.2")], [_out("37.2")])
    assert not result.exact
    assert len(result.missing) == 1
    assert "missing: 1 thermometer" in result.explain()


def test_a_doubled_reading_is_reported() -> None:
    result = reconcile([_entry("37.2")], [_out("37.2"), _out("37.2")])
    assert result.duplicated
    assert not result.missing


def test_a_reading_nobody_produced_is_reported() -> None:
    result = reconcile([_entry("37.2")], [_out("37.2"), _out("40.1")])
    assert result.unexpected


def test_other_devices_and_codes_are_ignored() -> None:
    battery = FhirReading("C0:FF:EE:00:00:01", 67996, "%", "87")
    hub = FhirReading("hub", 188424, "Cel", "1")
    assert reconcile([_entry("37.2")], [_out("37.2"), battery, hub]).exact


def test_settled_part_only_must_have_arrived() -> None:
    ledger = [_entry("37.2"), _entry("36.1")]
    result = reconcile(ledger, [_out("37.2")], settled=ledger[:1])
    assert result.exact


def _board(value: str, seq: int) -> LedgerEntry:
    return LedgerEntry("board", "sim-0001", "air-temperature", 192513, "Cel", value, None, str(seq))


def _board_out(value: str) -> FhirReading:
    return FhirReading("sim-0001", 192513, "Cel", value)


def test_tombstones_explain_absent_readings_of_their_code_oldest_first() -> None:
    ledger = [_entry("37.2"), _board("21.5", 0), _board("21.6", 1), _board("21.7", 2)]
    stones = [Tombstone(192513, "environmental", 2)]
    fhir = [_out("37.2"), _board_out("21.7")]
    result = reconcile(ledger, fhir, tombstones=stones)
    assert result.exact, result.explain()
    assert [e.seq for e in result.evicted] == ["0", "1"]
    assert not reconcile(ledger, fhir).exact  # without the tombstones: two missing


def test_a_tombstone_never_explains_another_code() -> None:
    result = reconcile([_entry("37.2")], [], tombstones=[Tombstone(192513, "environmental", 1)])
    assert len(result.missing) == 1
    assert result.unexplained_evictions == 1
    assert not result.exact


def test_a_tombstone_for_a_reading_that_arrived_is_a_contradiction() -> None:
    stones = [Tombstone(192513, "environmental", 1)]
    result = reconcile([_board("21.5", 0)], [_board_out("21.5")], tombstones=stones)
    assert result.unexplained_evictions == 1
    assert "tombstoned readings not missing" in result.explain()


def test_observation_times_and_flags_are_read() -> None:
    resource = {
        "device": {"identifier": {"value": "C0:FF:EE:00:00:01"}},
        "code": {"coding": [{"code": "188424"}]},
        "effectiveDateTime": "2026-11-22T07:00:00.250Z",
        "valueQuantity": {"value": "37.2", "code": "Cel"},
        "note": [{"text": "flags: device-clock-offset-s:31536000, device-time-suspect"}],
    }
    reading = fhir_reading(resource)
    assert reading is not None
    assert reading.effective_ms == 1_795_330_800_250
    assert reading.flags == {"device-clock-offset-s:31536000", "device-time-suspect"}


def test_the_region_output_is_read_as_the_hub_measured_it(tmp_path: Path) -> None:
    """The receiver's output through the ledger: a compound blood pressure is its three
    components (the ledger counts them apart), devices resolve through their Device
    resources, and the session's clock offset comes from the coincident time stamp."""
    cuff = "C0:FF:EE:00:0D:02"
    t = 1_795_330_800_000
    clock = clock_flags(40, t + 60_000)
    component = clock | {"component-of:150020"}
    readings = [
        WireReading(f"{cuff}/150021", 150021, "mm[Hg]", t, Decimal(128), None, component, cuff),
        WireReading(f"{cuff}/150022", 150022, "mm[Hg]", t, Decimal(83), None, component, cuff),
        WireReading(f"{cuff}/150023", 150023, "mm[Hg]", t, Decimal("98.0"), None, component, cuff),
        WireReading(f"{cuff}/149546", 149546, "/min", t, Decimal(64), None, clock, cuff),
    ]
    resources = batch_resources(
        "hub-x", 3, [Filed(r, PatientRef("urn:x", "p-1")) for r in readings], describe(readings)
    ).all()
    path = tmp_path / "out.ndjson"
    path.write_text("".join(dumps_exact(r) + "\n" for r in resources))
    got = read_fhir(path)
    assert [(r.device, r.mdc, r.unit, r.value) for r in got] == [
        (cuff, 150021, "mm[Hg]", "128"),
        (cuff, 150022, "mm[Hg]", "83"),
        (cuff, 150023, "mm[Hg]", "98.0"),
        (cuff, 149546, "/min", "64"),
    ]
    assert all(r.flags == {"device-clock-offset-s:40"} for r in got)
    assert all(r.effective_ms == t for r in got)
    ledger = [
        LedgerEntry("ble", cuff, "blood_pressure", r.mdc_code, r.unit, str(r.value), None, "0")
        for r in readings
    ]
    result = reconcile(ledger, got)
    assert result.exact, result.explain()
    assert result.delivered["blood_pressure"] == 4


def test_a_value_with_components_and_a_sample_array_are_read() -> None:
    glucose = {
        "resourceType": "Observation",
        "device": {"identifier": {"value": "C0:FF:EE:00:24:01"}},
        "code": {"coding": [{"code": "160212"}]},
        "effectiveDateTime": "2026-11-22T07:00:00.000Z",
        "valueQuantity": {"value": "104", "code": "mg/dL"},
        "component": [
            {"code": {"coding": [{"code": "68193"}]}, "valueCodeableConcept": {"coding": [{}]}},
            {
                "code": {"coding": [{"code": "8418008"}]},
                "valueQuantity": {"value": "-1.2", "code": "mg/dL/min"},
            },
        ],
    }
    got = [(r.mdc, r.unit, r.value) for r in fhir_readings(glucose)]
    assert got == [(160212, "mg/dL", "104"), (8418008, "mg/dL/min", "-1.2")]
    wave = {
        "resourceType": "Observation",
        "device": {"identifier": {"value": "C0:FF:EE:00:24:02"}},
        "code": {"coding": [{"code": "150452"}]},
        "valueSampledData": {
            "origin": {"value": "-1", "code": "mV"},
            "factor": "0.01",
            "data": "100 110",
        },
    }
    assert [(r.unit, r.value) for r in fhir_readings(wave)] == [("mV", "0.00")]
