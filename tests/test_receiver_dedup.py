"""The region receiver writes each Observation once, whatever batches carry it again."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.uplink import BatchHeader, BatchVerifier, Priority, WireReading
from protocols.uplink.batch import encode_body
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
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_a_reading_sent_again_in_another_batch_is_written_once(tmp_path: Path) -> None:
    out = tmp_path / "obs.ndjson"
    receiver = Receiver(_verifier(), SqliteState(tmp_path / "state.db", out))
    first = _rr(1_763_800_001_000, "812.5", "798.828125", "812.5")
    assert len(receiver.handle(TOPIC, _batch("b1", 0, first))) == 3
    # A hub that lost power between sending and deleting: the same readings, a new batch key,
    # and one reading that is new.
    again = [*first, *_rr(1_763_800_002_000, "800")]
    assert len(receiver.handle(TOPIC, _batch("b2", 0, again))) == 1
    assert receiver.stats.duplicate_observations == 3
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == 4
    receiver.close()


def test_lines_written_before_a_crash_are_recorded_at_start(tmp_path: Path) -> None:
    out = tmp_path / "obs.ndjson"
    state = tmp_path / "state.db"
    receiver = Receiver(_verifier(), SqliteState(state, out))
    receiver.handle(TOPIC, _batch("b1", 0, _rr(1_763_800_001_000, "800")))
    receiver.close()
    # Killed after the fsync of the next batch's lines but before its transaction: the lines
    # are in the file, the batch is not marked seen, and a torn line follows.
    crashed = _rr(1_763_800_003_000, "790", "805")
    lines = Receiver(
        _verifier(), SqliteState(tmp_path / "other.db", tmp_path / "other.ndjson")
    ).handle(TOPIC, _batch("b1", 1, crashed))
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
