"""The outbox: durable across reopen, deleted only on acknowledgement, rejected kept."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hub_records import body_temperature

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.outbox import Outbox
from gateway.reading import Reading
from protocols.uplink import Priority

KEY = new_private_key_pem()


def _reading(i: int, priority: Priority = Priority.CLINICAL) -> Reading:
    return body_temperature(
        i, Decimal(f"36.{i % 10}"), stream=f"dev/{i % 3}", hub_wall_ms=1_000 + i, priority=priority
    )


def test_readings_survive_reopen_and_batches_leave_only_on_ack(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    store = Outbox(path)
    store.add([_reading(i) for i in range(10)])
    store.close()

    store = Outbox(path)
    assert store.unbatched_count() == 10
    signer = PemBatchSigner("hub-a", KEY)
    batch = store.seal(signer, now_ms=5)
    assert batch is not None
    decoded = PemBatchVerifier({"hub-a": public_key_pem(KEY)}).verify(batch.message)
    assert [r.t_ms for r in decoded.readings] == [1_000 + i for i in range(10)]
    store.close()

    store = Outbox(path)  # a crash before the PUBACK: the batch is still there
    assert [b.batch_id for b in store.pending()] == [batch.batch_id]
    store.acknowledge(batch.batch_id)
    counts = store.counts()
    assert (counts["unbatched_readings"], counts["pending_batches"]) == (0, 0)
    assert counts["rejected_batches"] == 0
    store.close()


def test_alerts_are_sealed_first_and_sequence_persists(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3")
    signer = PemBatchSigner("hub-a", KEY)
    # A batch that must leave takes everything waiting and carries the most urgent priority.
    store.add([_reading(1, Priority.ENVIRONMENTAL), _reading(2, Priority.ALERT)])
    shared = store.seal(signer, now_ms=1)
    assert shared is not None
    assert shared.priority == Priority.ALERT
    # With a backlog larger than a batch, the most urgent readings go in the first batch.
    store.add([_reading(3, Priority.ENVIRONMENTAL)])
    store.add([_reading(4, Priority.ALERT)])
    first = store.seal(signer, now_ms=2, max_readings=1)
    second = store.seal(signer, now_ms=3, max_readings=1)
    assert first is not None
    assert second is not None
    assert (first.priority, second.priority) == (Priority.ALERT, Priority.ENVIRONMENTAL)
    assert [b.priority for b in store.pending()] == [
        Priority.ALERT,
        Priority.ALERT,
        Priority.ENVIRONMENTAL,
    ]
    store.close()
    store = Outbox(tmp_path / "o.sqlite3")
    store.add([_reading(3)])
    third = store.seal(signer, now_ms=3)
    assert third is not None
    assert third.seq == second.seq + 1
    store.close()


def test_rejected_batch_is_kept_with_its_reason(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3")
    store.add([_reading(1)])
    batch = store.seal(PemBatchSigner("hub-a", KEY), now_ms=1)
    assert batch is not None
    store.reject(batch.batch_id, 0x87)
    assert store.pending() == []
    assert store.counts()["rejected_batches"] == 1
    store.close()
