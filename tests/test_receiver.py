"""The reference receiver: one Observation per reading, whatever batches carried it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.pki import new_private_key_pem, public_key_pem
from gateway.region.receiver import Receiver
from protocols.uplink import (
    BatchHeader,
    BatchSigner,
    BatchVerifier,
    Priority,
    WireReading,
    encode_body,
)

KEY = new_private_key_pem()


def _message(seq: int, boot: str, readings: list[WireReading]) -> bytes:
    header = BatchHeader("hub-a", boot, seq, 1, Priority.CLINICAL, len(readings))
    return BatchSigner("hub-a", KEY).sign(encode_body(header, readings))


def test_a_reading_resealed_into_another_batch_yields_one_observation(tmp_path: Path) -> None:
    out = tmp_path / "obs.ndjson"
    receiver = Receiver(BatchVerifier({"hub-a": public_key_pem(KEY)}), tmp_path / "s.db", out)
    a = WireReading("d/150364", 150364, "Cel", 1_000, Decimal("37.1"), device="d")
    b = WireReading("d/150364", 150364, "Cel", 2_000, Decimal("37.2"), device="d")
    topic = "narhub/v1/hub-a/up/clinical"
    assert len(receiver.handle(topic, _message(0, "boot1", [a]))) == 1
    # The hub was killed after sealing a batch with `a` and before its PUBACK; after the
    # restart the same reading travels again in a new batch with `b`.
    assert len(receiver.handle(topic, _message(0, "boot2", [a, b]))) == 1
    # The very same batch again is a replay.
    assert receiver.handle(topic, _message(0, "boot2", [a, b])) == []
    receiver.close()
    assert len(out.read_text().splitlines()) == 2
    assert receiver.stats.duplicate_observations == 1
    assert receiver.stats.duplicates == 1

    # The memory of written Observations survives a restart of the receiver.
    again = Receiver(BatchVerifier({"hub-a": public_key_pem(KEY)}), tmp_path / "s.db", out)
    assert again.handle(topic, _message(5, "boot3", [b])) == []
    again.close()
