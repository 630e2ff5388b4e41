"""The region receiver writes each Observation once, whatever batches carry it again (and
each Device it references once, until its description changes)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.fhir import PatientRef
from protocols.uplink import BatchHeader, BatchVerifier, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.enrolment_sqlite import enrol_hub
from region.receiver import Receiver
from region.state_sqlite import SqliteState

HUB = "hub-dedup"
KEY = new_private_key_pem()
SIGNER = PemBatchSigner(HUB, KEY)
TOPIC = f"narhub/v1/{HUB}/up/clinical"


def _verifier() -> BatchVerifier:
    return PemBatchVerifier({HUB: public_key_pem(KEY)})


def _batch(boot: str, seq: int, readings: list[WireReading]) -> bytes:
    header = BatchHeader(HUB, boot, seq, 1_763_800_000_000, Priority.CLINICAL, len(readings))
    return SIGNER.sign(encode_body(header, readings))


def _rr(t_ms: int, *values: str) -> list[WireReading]:
    return [WireReading("hrm/147240", 147240, "ms", t_ms, Decimal(v), device="hrm") for v in values]


def _ids(path: Path) -> list[str]:
    """The ids of the Observations in an output (Devices left out)."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["id"] for r in lines if r["resourceType"] == "Observation"]


def _observations(lines: list[str]) -> list[str]:
    return [line for line in lines if '"resourceType":"Observation"' in line]


def _receiver(state: Path, out: Path) -> Receiver:
    enrol_hub(state, HUB, PatientRef("urn:test:patient", "p-1"))
    return Receiver(_verifier(), SqliteState(state, out))


def test_a_reading_sent_again_in_another_batch_is_written_once(tmp_path: Path) -> None:
    out = tmp_path / "obs.ndjson"
    receiver = _receiver(tmp_path / "state.db", out)
    first = _rr(1_763_800_001_000, "812.5", "798.828125", "812.5")
    written = receiver.handle(TOPIC, _batch("b1", 0, first))
    assert len(_observations(written)) == 3
    # And what they reference: the patient's Patient, the Devices of the hub and of "hrm".
    assert len(written) == 6
    # A hub that lost power between sending and deleting: the same readings, a new batch key,
    # and one reading that is new.
    again = [*first, *_rr(1_763_800_002_000, "800")]
    assert (
        len(receiver.handle(TOPIC, _batch("b2", 0, again))) == 1
    )  # the Patient and Devices not again
    assert receiver.stats.duplicate_observations == 3
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == 4
    receiver.close()


def test_lines_written_before_a_crash_are_recorded_at_start(tmp_path: Path) -> None:
    out = tmp_path / "obs.ndjson"
    state = tmp_path / "state.db"
    receiver = _receiver(state, out)
    receiver.handle(TOPIC, _batch("b1", 0, _rr(1_763_800_001_000, "800")))
    receiver.close()
    # Killed after the fsync of the next batch's lines but before its transaction: the lines
    # are in the file, the batch is not marked seen, and a torn line follows.
    crashed = _rr(1_763_800_003_000, "790", "805")
    lines = _observations(
        _receiver(tmp_path / "other.db", tmp_path / "other.ndjson").handle(
            TOPIC, _batch("b1", 1, crashed)
        )
    )
    with out.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
        f.write('{"resourceType": "Observ')
    receiver = Receiver(_verifier(), SqliteState(state, out))
    assert out.read_text().endswith("}\n"), "the torn line was not cut"
    # The broker delivers the batch again (never acknowledged): nothing is written twice.
    assert receiver.handle(TOPIC, _batch("b1", 1, crashed)) == []
    assert receiver.stats.duplicate_observations == 2
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == 3
    receiver.close()


def _info(t_ms: int, firmware: str) -> list[WireReading]:
    cuff = "C0:FF:EE:00:0D:02"
    flags = frozenset({"device-info"})
    return [
        WireReading(f"{cuff}/531970", 531970, "", t_ms, None, "A&D Medical", flags, cuff),
        WireReading(f"{cuff}/531969", 531969, "", t_ms, None, "UA-651BLE", flags, cuff),
        WireReading(f"{cuff}/531976", 531976, "", t_ms, None, firmware, flags, cuff),
        WireReading(f"{cuff}/149546", 149546, "/min", t_ms, Decimal(60), device=cuff),
    ]


def test_a_device_is_written_again_only_when_its_description_changes(tmp_path: Path) -> None:
    out = tmp_path / "obs.ndjson"
    receiver = _receiver(tmp_path / "state.db", out)
    t = 1_763_800_001_000
    for seq, firmware in enumerate(["1.0", "1.0", "1.1"]):
        receiver.handle(TOPIC, _batch("b1", seq, _info(t + seq * 1000, firmware)))
    devices = [
        json.loads(line)
        for line in out.read_text().splitlines()
        if '"resourceType":"Device"' in line
    ]
    cuff = [d for d in devices if d["id"] == "phd-C0FFEE000D02"]
    assert [d["version"][0]["value"] for d in cuff] == ["1.0", "1.1"]
    assert [d["modelNumber"] for d in cuff] == ["UA-651BLE", "UA-651BLE"]
    assert len(devices) == 3  # the hub's gateway once
    receiver.close()
