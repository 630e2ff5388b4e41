"""The walking skeleton end to end, with real parts: bumble radio, bleak, SQLite, Mosquitto."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from protocols.fhir import is_measurement
from protocols.gatt import TEMPERATURE_MEASUREMENT, SystemId, uuid128
from protocols.uplink.device_facts import FLAG_DEVICE_INFO
from protocols.uplink.undecoded import FLAG_UNDECODED, RawRecord, is_undecoded
from region.raw_records import SqliteRawRecords
from rig.broker import MosquittoBroker, RigPki
from rig.skeleton import HUB_ID, PATIENT, THERMOMETER_ADDRESS, demo_measurements, run_skeleton


async def test_thermometer_reading_arrives_as_fhir_observation(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    taken = dt.datetime(2026, 11, 22, 8, 30, 15)
    measurements = demo_measurements(taken)

    trace = await run_skeleton(tmp_path, measurements, broker=broker, pki=rig_pki, timeout_s=60)

    # Every indication sent on the air was stored, published (PUBACK < 0x80) and received.
    assert len(trace.sent) == 2
    measured = [r for r in trace.stored if FLAG_DEVICE_INFO not in r.flags]
    assert len(measured) == 2
    # Beside them, the thermometer's Device Information strings and its System ID (the EUI-64
    # DIS derives from its address), read once in its session.
    system_id = SystemId.from_address(THERMOMETER_ADDRESS).eui64
    assert {r.special for r in trace.stored if FLAG_DEVICE_INFO in r.flags} == {
        "narhub-sim", "EMU-1", "SN00000000", "1.0.0", system_id
    }  # fmt: skip
    assert all(reason < 0x80 for _, reason in trace.published)
    written = (tmp_path / "region" / "observations.ndjson").read_text().splitlines()
    ndjson = [line for line in written if is_measurement(json.loads(line))]
    assert len(ndjson) == 2
    oral, ear = (json.loads(line, parse_float=str) for line in ndjson)
    # Filed to the patient the hub is lent to, from the thermometer's Device, via the hub's.
    assert oral["subject"]["identifier"] == {"system": PATIENT.system, "value": PATIENT.value}
    devices = {
        r["id"]: r for line in written if (r := json.loads(line))["resourceType"] == "Device"
    }
    assert oral["device"]["reference"].removeprefix("Device/") in devices
    thermometer = devices[oral["device"]["reference"].removeprefix("Device/")]
    assert thermometer["manufacturer"]
    sysid = {"system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680", "value": system_id}
    assert sysid.items() <= thermometer["identifier"][1].items()
    # The patient as a Patient resource (the pseudonym only), which the subject references.
    (patient,) = [r for line in written if (r := json.loads(line))["resourceType"] == "Patient"]
    assert patient["identifier"] == [{"system": PATIENT.system, "value": PATIENT.value}]
    assert oral["subject"]["reference"] == f"Patient/{patient['id']}"

    # The exact value with the device's precision (37.20, not 37.2), UCUM unit, MDC + LOINC.
    assert oral["valueQuantity"] == {
        "value": "37.20",
        "unit": "Cel",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }
    assert '"value":37.20,' in ndjson[0]
    codes = [(c["system"], c["code"]) for c in oral["code"]["coding"]]
    assert ("urn:iso:std:iso:11073:10101", "188424") in codes  # MDC_TEMP_ORAL
    assert ("http://loinc.org", "8310-5") in codes  # body temperature, always
    assert ("http://loinc.org", "8331-1") in codes  # oral site
    assert oral["category"][0]["coding"][0]["code"] == "vital-signs"

    assert ear["valueQuantity"]["value"] == "99.1"
    assert ear["valueQuantity"]["code"] == "[degF]"
    assert ("http://loinc.org", "8333-7") in [
        (c["system"], c["code"]) for c in ear["code"]["coding"]
    ]
    # Deterministic identifiers: distinct per reading.
    assert oral["id"] != ear["id"]


async def test_undecodable_indication_reaches_the_region_as_a_raw_record(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    taken = dt.datetime(2026, 11, 22, 8, 30, 15)
    measurements = demo_measurements(taken)

    trace = await run_skeleton(
        tmp_path, measurements, broker=broker, pki=rig_pki, timeout_s=60, undecodable=1
    )

    (_, first_payload), (_, second_payload) = trace.sent
    cut = first_payload[:2]  # what the emulated device's malformed fault puts on the air
    # The hub kept it: its bytes as hex, the characteristic, the device, the reception time.
    raw = [r for r in trace.stored if FLAG_UNDECODED in r.flags]
    assert len(raw) == 1
    assert raw[0].special == "hex:" + cut.hex()
    assert raw[0].device == THERMOMETER_ADDRESS
    assert f"gatt-uuid:{uuid128(TEMPERATURE_MEASUREMENT)}" in raw[0].flags
    # The region: one Observation (the good one), and the raw record kept, not filed.
    observations = trace.observations
    assert len(observations) == 1
    assert observations[0]["valueQuantity"]["code"] == "[degF]"
    assert all("undecoded" not in json.dumps(o) for o in observations)
    received = [r for batch, _ in trace.received for r in batch.readings if is_undecoded(r)]
    assert len(received) == 1
    store = SqliteRawRecords(tmp_path / "region" / "seen.sqlite3")
    try:
        (kept,) = store.records()
    finally:
        store.close()
    assert kept.hub == HUB_ID
    assert kept.record == RawRecord(
        THERMOMETER_ADDRESS, uuid128(TEMPERATURE_MEASUREMENT), raw[0].hub_wall_ms, cut
    )
    # A newer decoder gets the bytes exactly as the device sent them.
    assert kept.record.characteristic == TEMPERATURE_MEASUREMENT
    assert second_payload != cut
