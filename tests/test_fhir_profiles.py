"""The region's FHIR resources meet the PHD IG 2.0.0 profiles they claim, and claim none they
do not meet.

Real parts from the hub's side: GATT values decoded by :mod:`protocols.gatt`, mapped by the
hub's pipeline (:func:`gateway.pipeline.readings_from_event`, Device Information and the
session clock included), sent through a real batch, filed to a patient and mapped by
:mod:`protocols.fhir`. Structure is validated with ``fhir.resources`` (R4B models); each
claimed profile's required elements are checked by tests/fhir_profiles.py, written from the
IG's FSH (``HL7/phd`` tag 2.0.0: input/fsh/StructureDefinition.PhdBaseObservation.fsh,
StructureDefinition.PhdNumericObservation.fsh, StructureDefinition.PhdCompoundNumeric
Observation.fsh, StructureDefinition.PhdCodedEnumerationObservation.fsh,
StructureDefinition.PhdCoincidentTimeStampObservation.fsh, StructureDefinition.PhdDevice.fsh,
StructureDefinition.PhgDevice.fsh).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from fhir_profiles import PHD, violations

from drivers.ble import ClockObservation, MeasurementEvent
from gateway.pipeline import readings_from_event
from protocols import gatt
from protocols.fhir import Filed, PatientRef, batch_resources, describe, dumps_exact
from protocols.uplink import BatchHeader, Priority, WireReading, encode_body
from protocols.uplink.body import decode_body

HUB = "hub-profiles"
PATIENT = PatientRef("urn:oid:1.2.752.0.99", "p-0042")
CUFF = "C0:FF:EE:00:0D:02"
THERMOMETER = "C0:FF:EE:00:0D:01"
BARE = "C0:FF:EE:00:0D:09"  # a thermometer that reported no Device Information
OXIMETER = "C0:FF:EE:00:0D:04"
METER = "C0:FF:EE:00:0D:05"
BOARD = "e14e9647eee4d728"
T0 = 1_795_000_000_000
#: The session read the device clock 40 s ahead of the hub's.
CLOCK = ClockObservation(
    dt.datetime(2026, 11, 22, 8, 30, 40), dt.datetime(2026, 11, 22, 8, 30), 40.0
)

#: BLS 1.1 3.1: flags (time stamp, pulse rate), 120/80/93 mmHg SFLOAT, 2026-11-22 08:30:00,
#: pulse 70.
BP = bytes([0x06, 0x78, 0, 0x50, 0, 0x5D, 0, 0xEA, 0x07, 11, 22, 8, 30, 0, 0x46, 0])
#: HTS 1.0 3.1: flags (time stamp), 37.2 Cel FLOAT (372 x 10^-1), 2026-11-22 08:31:00.
TEMPERATURE = bytes([0x02, 0x74, 0x01, 0x00, 0xFF, 0xEA, 0x07, 11, 22, 8, 31, 0])
#: PLXS 1.0 3.2: flags 0, SpO2 98 %, pulse rate 72 (SFLOAT).
PLX = bytes([0x00, 0x62, 0x00, 0x48, 0x00])
#: GLS 1.0 3.2: context of sequence 1, meal (flag 0x02): preprandial.
MEAL = bytes([0x02, 1, 0, 1])
DIS = {0x2A29: "A&D Medical", 0x2A24: "UA-651BLE", 0x2A25: "5130412", 0x2A26: "BLP008_d017"}


def _event(device: str, characteristic: int, raw: bytes, t_ms: int) -> MeasurementEvent:
    measurement = gatt.decode(characteristic, raw)
    return MeasurementEvent(
        device,
        characteristic,
        raw,
        measurement,
        None,
        t_ms,
        t_ms * 1_000_000,
        device_time=getattr(
            getattr(measurement, "time_stamp", None), "to_datetime", lambda: None
        )(),
        clock=CLOCK,
    )


def _dis(device: str) -> list[MeasurementEvent]:
    return [_event(device, uuid, text.encode(), T0) for uuid, text in DIS.items()]


def _wire_readings() -> list[WireReading]:
    system_id = gatt.encode(gatt.SystemId.from_address(CUFF))
    events = [
        *_dis(CUFF),
        _event(CUFF, gatt.SYSTEM_ID, system_id, T0),
        _event(CUFF, 0x2A35, BP, T0 + 1000),
        *_dis(THERMOMETER),
        _event(THERMOMETER, 0x2A1C, TEMPERATURE, T0 + 2000),
        _event(BARE, 0x2A1C, TEMPERATURE, T0 + 3000),
        *_dis(OXIMETER),
        _event(OXIMETER, 0x2A5F, PLX, T0 + 4000),
        *_dis(METER),
        _event(METER, 0x2A34, MEAL, T0 + 5000),
    ]
    readings = [r.to_wire() for e in events for r in readings_from_event(e)]
    board = WireReading(
        f"{BOARD}/1/0", 2 * 65536 + 0xF001, "Cel", T0 + 6000, Decimal("21.5"), device=BOARD
    )
    tombstone = WireReading(
        "hub/evicted/hub/telemetry", 2 * 65536 + 0xF105, "1", T0, Decimal(20), None,
        frozenset({"evicted", "evicted-priority:telemetry"}), "hub",
    )  # fmt: skip
    items = [*readings, board, tombstone]
    header = BatchHeader(HUB, "b1", 0, T0, Priority.CLINICAL, len(items))
    return list(decode_body(encode_body(header, items), HUB).readings)


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    readings = _wire_readings()
    filed = [Filed(r, None if r.device == "hub" else PATIENT) for r in readings]
    out = batch_resources(HUB, 3, filed, describe(readings)).all()
    return [json.loads(dumps_exact(r)) for r in out]


def _claims(resources: list[dict[str, Any]], profile: str) -> list[dict[str, Any]]:
    return [r for r in resources if PHD + profile in r.get("meta", {}).get("profile", [])]


def test_every_resource_is_valid_fhir_r4(resources: list[dict[str, Any]]) -> None:
    from fhir.resources.R4B.device import Device
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.patient import Patient

    models = {"Device": Device, "Observation": Observation, "Patient": Patient}
    for resource in resources:
        models[resource["resourceType"]].model_validate_json(json.dumps(resource))


def test_every_claimed_profile_has_its_required_elements(resources: list[dict[str, Any]]) -> None:
    assert violations(resources) == []


def test_the_profiles_claimed_are_the_expected_ones(resources: list[dict[str, Any]]) -> None:
    devices = {r["id"]: r for r in resources if r["resourceType"] == "Device"}
    assert [d["id"] for d in _claims(resources, "PhgDevice")] == [f"phg-{HUB}"]
    assert {d["id"] for d in _claims(resources, "PhdDevice")} == {
        "phd-C0FFEE000D02", "phd-C0FFEE000D01", "phd-C0FFEE000D04", "phd-C0FFEE000D05"
    }  # fmt: skip
    # No Device Information: no manufacturer or model, so no PhdDevice, and its reading is
    # no PhdNumericObservation (device only Reference(PhdDevice)).
    assert "meta" not in devices["phd-C0FFEE000D09"]
    assert "meta" not in devices["dev-e14e9647eee4d728"]
    by_device: dict[str, list[dict[str, Any]]] = {}
    for o in resources:
        if o["resourceType"] == "Observation" and "device" in o:
            by_device.setdefault(o["device"]["reference"], []).append(o)
    assert all("meta" not in o for o in by_device["Device/phd-C0FFEE000D09"])
    assert all("meta" not in o for o in by_device["Device/dev-e14e9647eee4d728"])
    assert len(_claims(resources, "PhdCompoundNumericObservation")) == 1
    assert len(_claims(resources, "PhdCodedEnumerationObservation")) == 1
    # Pulse (cuff), temperature, SpO2 and pulse rate (oximeter).
    assert len(_claims(resources, "PhdNumericObservation")) == 4
    # One session clock read per device with time-stamped readings: cuff and thermometers.
    stamps = [
        r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "67975"
    ]
    assert len(stamps) == 3
    assert len(_claims(resources, "PhdCoincidentTimeStampObservation")) == 2


def test_the_time_stamp_holds_the_device_clock_against_the_hub_clock(
    resources: list[dict[str, Any]],
) -> None:
    (cuff_stamp,) = [
        r for r in resources if r.get("subject") == {"reference": "Device/phd-C0FFEE000D02"}
    ]
    hub = dt.datetime.fromisoformat(cuff_stamp["effectiveDateTime"])
    device = dt.datetime.fromisoformat(cuff_stamp["valueDateTime"])
    assert (device - hub).total_seconds() == 40
    assert hub == CLOCK.hub_time.astimezone(dt.UTC)
    (bp,) = _claims(resources, "PhdCompoundNumericObservation")
    refs = [e["valueReference"] for e in bp["extension"]]
    assert {"reference": f"Observation/{cuff_stamp['id']}"} in refs
    # The measurement's time is its stamp corrected by the offset (08:30:00 - 40 s).
    taken = dt.datetime.fromisoformat(bp["effectiveDateTime"])
    assert taken == dt.datetime(2026, 11, 22, 8, 29, 20).astimezone(dt.UTC)


def test_the_hubs_own_reading_is_about_the_hub(resources: list[dict[str, Any]]) -> None:
    (tombstone,) = [
        r
        for r in resources
        if r.get("code", {}).get("coding", [{}])[0].get("code") == str(2 * 65536 + 0xF105)
    ]
    assert tombstone["subject"] == tombstone["device"] == {"reference": f"Device/phg-{HUB}"}
    assert "meta" not in tombstone


@pytest.mark.parametrize(
    ("profile", "damage", "missing"),
    [
        ("PhdDevice", lambda r: r.pop("manufacturer"), "manufacturer 1.."),
        ("PhdDevice", lambda r: r.pop("version"), "version[MDCType] 1..*"),
        ("PhgDevice", lambda r: r["type"]["coding"][0].update(code="65573"), "type.coding"),
        ("PhdNumericObservation", lambda r: r.pop("category"), "category[PHD-Observation]"),
        ("PhdNumericObservation", lambda r: r.pop("extension"), "extension[GatewayDevice]"),
        ("PhdNumericObservation", lambda r: r.pop("subject"), "subject 1.."),
        ("PhdCompoundNumericObservation", lambda r: r.update(valueString="x"), "value[x] ..0"),
        ("PhdCoincidentTimeStampObservation", lambda r: r.update(status="amended"), "status"),
    ],
)
def test_the_profile_checks_can_fail(
    resources: list[dict[str, Any]], profile: str, damage: Any, missing: str
) -> None:
    damaged = copy.deepcopy(resources)
    target = _claims(damaged, profile)[0]
    damage(target)
    found = [v for v in violations(damaged) if v[0] == target["id"]]
    assert any(missing in v[2] for v in found), found


def test_a_device_that_reported_its_system_id_has_the_ig_s_sysid_identifier(
    resources: list[dict[str, Any]],
) -> None:
    """PhdDevice identifier[systemIdIdentifier] (StructureDefinition.PhdDevice.fsh, 2.0.0;
    the IG's example phd-74E8FFFEFF051C00.001C05FFE874.json): after the Bluetooth address,
    which stays first (the conditional create's key)."""
    devices = {r["id"]: r for r in resources if r["resourceType"] == "Device"}
    cuff = devices["phd-C0FFEE000D02"]
    assert [i["system"] for i in cuff["identifier"]] == [
        "http://hl7.org/fhir/sid/eui-48/bluetooth",
        "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
    ]
    assert cuff["identifier"][1] == {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers",
                    "code": "SYSID",
                }
            ]
        },
        "system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
        "value": "C0-FF-EE-FF-FE-00-0D-02",
    }
    # A device that did not report one has no SYSID identifier (none is made up).
    assert len(devices["phd-C0FFEE000D01"]["identifier"]) == 1


def test_a_system_id_that_is_not_an_eui64_is_left_out() -> None:
    info = frozenset({"device-info"})
    bad = WireReading(f"{CUFF}/67972", 67972, "", T0, None, "not-an-eui", info, CUFF)
    good = WireReading(f"{CUFF}/531970", 531970, "", T0, None, "A&D", info, CUFF)
    (description,) = describe([bad, good]).values()
    assert description.system_id is None
    assert description.manufacturer == "A&D"


def test_the_sysid_check_catches_a_wrong_identifier(resources: list[dict[str, Any]]) -> None:
    cuff = copy.deepcopy(next(r for r in resources if r.get("id") == "phd-C0FFEE000D02"))
    cuff["identifier"][1]["value"] = "c0ffeefffe000d02"
    assert [v[2] for v in violations([cuff])] == [
        "identifier[systemIdIdentifier].value 1.. (EUI-64, XX-XX-..)"
    ]
