"""Region side: unknown kid, bad signature, replay and malformed batches are told apart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.fhir import PatientRef
from protocols.uplink import (
    BadSignatureError,
    BatchHeader,
    MalformedBatchError,
    Priority,
    ReplayError,
    ReplayGuard,
    UnknownKidError,
    WireReading,
    encode_body,
)
from region.enrolment_sqlite import enrol_hub
from region.receiver import Receiver
from region.state_sqlite import SqliteState

KEY = new_private_key_pem()


def _message(seq: int, boot: str = "b00t", hub: str = "hub-a", key: bytes = KEY) -> bytes:
    reading = WireReading("d/150364", 150364, "Cel", 1_000, Decimal("36.9"), device="d")
    header = BatchHeader(hub, boot, seq, 2_000, Priority.CLINICAL, 1)
    return PemBatchSigner(hub, key).sign(encode_body(header, [reading]))


def test_guard_accepts_each_name_once() -> None:
    guard = ReplayGuard(window=8)
    for seq in (3, 1, 2, 10):
        guard.accept("hub-a", "b00t", seq)
    with pytest.raises(ReplayError) as info:
        guard.accept("hub-a", "b00t", 2)
    assert (info.value.hub_id, info.value.boot_id, info.value.seq) == ("hub-a", "b00t", 2)
    guard.accept("hub-a", "b00t", 9)  # reordered but inside the window
    guard.accept("hub-a", "other-boot", 2)  # a new boot starts again
    guard.accept("hub-b", "b00t", 2)
    assert guard.seen("hub-a", "b00t", 1)  # 10 - 1 >= window: too old to tell, refused
    assert not guard.seen("hub-a", "b00t", 11)


def test_guard_forgets_least_recent_boot() -> None:
    guard = ReplayGuard(max_boots=2)
    guard.accept("h", "1", 0)
    guard.accept("h", "2", 0)
    guard.accept("h", "1", 1)
    guard.accept("h", "3", 0)
    assert not guard.seen("h", "2", 0)
    assert guard.seen("h", "1", 0)


def test_verifier_types_each_failure() -> None:
    verifier = PemBatchVerifier({"hub-a": public_key_pem(KEY)})
    guard = ReplayGuard()
    batch = verifier.verify(_message(1), replay=guard)
    guard.accept(batch.header.hub_id, batch.header.boot_id, batch.header.seq)
    with pytest.raises(ReplayError):
        verifier.verify(_message(1), replay=guard)
    assert verifier.verify(_message(1, boot="b00t2"), replay=guard).header.seq == 1
    with pytest.raises(UnknownKidError):
        verifier.verify(_message(1, hub="hub-x"), replay=guard)
    with pytest.raises(BadSignatureError):
        verifier.verify(_message(2, key=new_private_key_pem()), replay=guard)
    with pytest.raises(MalformedBatchError):
        verifier.verify(b"\xd2\x84", replay=guard)


def test_receiver_counts_a_replay_as_duplicate(tmp_path: Path) -> None:
    enrol_hub(tmp_path / "seen.db", "hub-a", PatientRef("urn:test:patient", "p-1"))
    receiver = Receiver(
        PemBatchVerifier({"hub-a": public_key_pem(KEY)}),
        SqliteState(tmp_path / "seen.db", tmp_path / "out.ndjson"),
    )
    try:
        topic = "narhub/v1/hub-a/up/clinical"
        message = _message(5)
        written = receiver.handle(topic, message)
        assert len([line for line in written if '"Observation"' in line]) == 1
        assert receiver.handle(topic, message) == []
        assert receiver.seen("hub-a", "b00t", 5)
        assert (receiver.stats.batches, receiver.stats.duplicates) == (1, 1)
    finally:
        receiver.close()
