"""One outbox, several recipients (gateway/outbox/delivery.py, docs/pipeline.md "Recipients"):
each reading stored once, sealed per recipient with what its consent allows, deleted only
when every recipient has taken it; a recipient that is down holds nobody else up; quota,
tombstones and withdrawals per recipient; a schema-5 file upgrades with its batches,
tombstones and sequence number kept as the home recipient's."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from hub_records import CLIMATE, DOOR, consent_record, reading

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.consents import append_record
from gateway.outbox import SCHEMA_VERSION, Outbox, PendingBatch
from gateway.outbox.consent_gate import ConsentGate
from gateway.outbox.telemetry import MDC_NARHUB_EVICTED
from gateway.reading import Reading
from protocols.gatt.observation import MDC_PRESS_BLD_NONINV_SYS
from protocols.uplink import Priority
from technician.status_view import read_queue

KEY = new_private_key_pem()
SIGNER = PemBatchSigner("hub-m", KEY)
VERIFIER = PemBatchVerifier({"hub-m": public_key_pem(KEY)})
T0 = 1_763_800_000_000
BP = MDC_PRESS_BLD_NONINV_SYS
BOTH = ("region", "municipality")


def _r(i: int, code: int, priority: Priority = Priority.CLINICAL) -> Reading:
    return reading(i, code, Decimal(i), hub_wall_ms=T0 + i, priority=priority)


def _consent(path: Path, action: str, recipient: str, categories: list[str], at_ms: int) -> None:
    append_record(path, consent_record(action, recipient, categories, at_ms))


def _store(tmp_path: Path, **kwargs: object) -> tuple[Outbox, Path]:
    consents = tmp_path / "consents.json"
    if not consents.exists():
        _consent(consents, "grant", "region", ["vital-signs", "device-status"], T0 - 1)
        _consent(
            consents, "grant", "municipality", ["vital-signs", "activity", "device-status"], T0 - 1
        )
    store = Outbox(
        tmp_path / "outbox.db",
        consent=ConsentGate(consents, "region"),
        recipients=BOTH,
        **kwargs,  # type: ignore[arg-type]
    )
    return store, consents


def _values(batch: PendingBatch) -> list[tuple[int, int]]:
    return sorted((r.mdc_code, int(r.value or 0)) for r in VERIFIER.verify(batch.message).readings)


def _seal_all(store: Outbox, recipient: str) -> list[PendingBatch]:
    batches = []
    while (batch := store.seal(SIGNER, now_ms=T0 + 100, recipient=recipient)) is not None:
        batches.append(batch)
    return batches


def test_each_recipient_gets_its_consented_categories_from_one_stored_copy(
    tmp_path: Path,
) -> None:
    store, _ = _store(tmp_path)
    store.add(
        [_r(1, BP), _r(2, DOOR, Priority.ENVIRONMENTAL), _r(3, CLIMATE, Priority.ENVIRONMENTAL)]
    )
    assert store.unbatched_count() == 3  # stored once, not once per recipient
    [region] = _seal_all(store, "region")
    assert _values(region) == [(BP, 1)]
    assert store.unbatched_count() == 3  # the municipality has not taken them yet
    [municipality] = _seal_all(store, "municipality")
    assert _values(municipality) == [(BP, 1), (DOOR, 2)]
    assert store.unbatched_count() == 0  # every recipient took them: deleted
    assert (region.seq, municipality.seq) == (0, 0)  # numbered per recipient
    assert store.pending(recipient="region") == [region]
    assert store.pending(recipient="municipality") == [municipality]
    assert store.withheld() == {
        "region": {"activity": 1, "indoor-climate": 1},
        "municipality": {"indoor-climate": 1},
    }
    store.close()


def test_a_batch_leaves_on_its_own_recipients_puback_only(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    store.add([_r(1, BP)])
    [region] = _seal_all(store, "region")
    [municipality] = _seal_all(store, "municipality")
    store.acknowledge(region.batch_id)
    assert store.pending(recipient="region") == []
    assert store.pending(recipient="municipality") == [municipality]
    backlog = store.recipient_backlog()
    assert backlog["region"]["pending_batches"] == 0
    assert backlog["municipality"]["pending_batches"] == 1
    assert backlog["municipality"]["batched_readings"] == 1
    store.close()


def test_a_recipient_that_is_down_holds_nobody_up(tmp_path: Path) -> None:
    """The municipality seals nothing for a day: the region's readings keep leaving and
    being deleted for it; the municipality's wait, once, and are its own backlog."""
    store, _ = _store(tmp_path)
    for i in range(5):
        store.add([_r(i, BP)])
        [batch] = _seal_all(store, "region")
        store.acknowledge(batch.batch_id)
        assert store.due_in_s("region") is None  # nothing more waits for the region
        due = store.due_in_s("municipality")
        assert due is not None
        assert due <= 10
    backlog = store.recipient_backlog()
    assert backlog["region"]["waiting_readings"] == 0
    assert backlog["municipality"]["waiting_readings"] == 5
    assert store.unbatched_count() == 5  # one copy, kept for the one still to take them
    batches = _seal_all(store, "municipality")
    assert sum(len(_values(b)) for b in batches) == 5
    assert store.unbatched_count() == 0
    store.close()


def test_a_withdrawal_for_a_recipient_that_is_down_removes_its_queue_only(tmp_path: Path) -> None:
    store, consents = _store(tmp_path)
    store.add([_r(1, BP), _r(2, DOOR, Priority.ENVIRONMENTAL)])
    [region] = _seal_all(store, "region")
    assert _values(region) == [(BP, 1)]
    _consent(consents, "withdraw", "municipality", ["activity"], T0 + 50)
    assert store.apply_consent("hub-m", "municipality") == 1  # counted at once, not sealed
    assert store.withheld()["municipality"] == {"activity": 1}
    assert store.apply_consent("hub-m", "municipality") == 0  # nothing new in the ledger
    [municipality] = _seal_all(store, "municipality")
    assert _values(municipality) == [(BP, 1)]
    assert store.unbatched_count() == 0
    assert _values(store.pending(recipient="region")[0]) == [(BP, 1)]  # region unaffected
    store.close()


def test_a_withdrawal_takes_apart_only_that_recipients_sealed_batches(tmp_path: Path) -> None:
    store, consents = _store(tmp_path)
    store.add([_r(1, BP), _r(2, DOOR, Priority.ENVIRONMENTAL)])
    [region] = _seal_all(store, "region")
    [municipality] = _seal_all(store, "municipality")
    _consent(consents, "withdraw", "municipality", ["activity"], T0 + 50)
    [again] = _seal_all(store, "municipality")
    assert _values(again) == [(BP, 1)]
    assert again.seq == municipality.seq + 1
    assert store.pending(recipient="region") == [region]
    assert _seal_all(store, "region") == []  # the readings put back are not the region's
    assert store.unbatched_count() == 0
    store.close()


def test_a_recipients_own_quota_evicts_for_it_alone_with_its_tombstone(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, recipient_quotas={"municipality": 2000})
    doors = [_r(i, DOOR, Priority.ENVIRONMENTAL) for i in range(400)]
    for start in range(0, 400, 20):
        store.add(doors[start : start + 20])
        _seal_all(store, "region")  # the region keeps up; the municipality is down
    backlog = store.recipient_backlog()
    lost = backlog["municipality"]["evicted_readings_total"]
    assert lost > 0
    assert backlog["region"]["evicted_readings_total"] == 0
    assert backlog["municipality"]["tombstones_pending"] == 1
    assert backlog["region"]["tombstones_pending"] == 0
    batches = _seal_all(store, "municipality")
    readings = [r for b in batches for r in VERIFIER.verify(b.message).readings]
    [tomb] = [r for r in readings if r.mdc_code == MDC_NARHUB_EVICTED]
    assert int(tomb.value or 0) == lost
    assert len(readings) - 1 + lost == 400  # every door reading delivered or tombstoned
    assert store.unbatched_count() == 0
    store.close()


def test_the_file_quota_tombstones_each_recipient_that_had_not_taken_it(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, quota_bytes=32 * 1024, min_free_bytes=0)
    for start in range(0, 20_000, 500):
        store.add([_r(i, DOOR, Priority.ENVIRONMENTAL) for i in range(start, start + 500)])
    backlog = store.recipient_backlog()
    assert backlog["region"]["evicted_readings_total"] > 0
    assert (
        backlog["region"]["evicted_readings_total"]
        == backlog["municipality"]["evicted_readings_total"]
    )
    assert backlog["region"]["tombstones_pending"] == 1
    assert backlog["municipality"]["tombstones_pending"] == 1
    store.close()


def test_one_recipient_writes_no_delivery_state(tmp_path: Path) -> None:
    """The single-recipient hub of before: a seal deletes its chunks at once."""
    store = Outbox(tmp_path / "outbox.db")
    assert store.recipients == ("region",)
    store.add([_r(1, BP)])
    assert store.seal(SIGNER, now_ms=T0) is not None
    assert store.unbatched_count() == 0
    store.close()
    db = sqlite3.connect(tmp_path / "outbox.db")
    assert db.execute("SELECT count(*) FROM taken").fetchone()[0] == 0
    db.close()


#: The tables of a schema-5 file that changed in schema 6 (the others are unchanged).
_SCHEMA_5 = """
CREATE TABLE streams (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, device TEXT NOT NULL,
    mdc INTEGER NOT NULL, unit TEXT NOT NULL, UNIQUE (stream, device, mdc, unit));
CREATE TABLE chunks (id INTEGER PRIMARY KEY, priority INTEGER NOT NULL, n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL, payload BLOB NOT NULL, held_boot TEXT, keys BLOB);
CREATE TABLE batches (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
    priority INTEGER NOT NULL, created_ms INTEGER NOT NULL, n INTEGER NOT NULL,
    first_ms INTEGER, message BLOB NOT NULL, rejected_reason INTEGER);
CREATE TABLE tombstones (stream_id INTEGER NOT NULL REFERENCES streams(id),
    priority INTEGER NOT NULL, n INTEGER NOT NULL, first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL, evicted_ms INTEGER NOT NULL,
    PRIMARY KEY (stream_id, priority)) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE withheld (recipient TEXT NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL,
    first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, withheld_ms INTEGER NOT NULL);
CREATE TABLE recent_keys (id INTEGER PRIMARY KEY, stored_ms INTEGER NOT NULL,
    keys BLOB NOT NULL);
CREATE TABLE source_keys (key TEXT PRIMARY KEY, stored_ms INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version=5;
"""


def test_a_schema_5_file_keeps_its_batches_tombstones_and_sequence_as_the_home_recipients(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    # A batch sealed by a schema-5 hub, its readings, a tombstone and its next sequence number.
    donor = Outbox(tmp_path / "donor.db")
    donor.add([_r(1, BP)])
    old = donor.seal(SIGNER, now_ms=T0)
    assert old is not None
    donor.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_SCHEMA_5)
    db.execute("INSERT INTO streams VALUES (1, 'dev/x', 'dev', ?, '1')", (DOOR,))
    db.execute("INSERT INTO batches VALUES (1, 6, 1, ?, 1, ?, ?, NULL)", (T0, T0 + 1, old.message))
    db.execute("INSERT INTO tombstones VALUES (1, 3, 7, ?, ?, ?)", (T0, T0 + 5, T0 + 9))
    db.execute("INSERT INTO meta VALUES ('next_seq', '7')")
    db.close()
    store, _ = _store(tmp_path)
    [kept] = store.pending(recipient="region")
    assert (kept.seq, kept.message) == (6, old.message)
    assert store.pending(recipient="municipality") == []
    store.add([_r(2, BP)])
    [region] = _seal_all(store, "region")
    assert region.seq == 7  # the old file's sequence goes on for the home recipient
    readings = VERIFIER.verify(region.message).readings
    assert [int(r.value or 0) for r in readings if r.mdc_code == MDC_NARHUB_EVICTED] == [7]
    [municipality] = _seal_all(store, "municipality")
    assert municipality.seq == 0
    assert _values(municipality) == [(BP, 2)]  # no tombstone: it was the region's
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "taken" in tables
    assert not {"batches_v5", "tombstones_v5"} & tables
    db.close()


def test_status_reads_each_recipients_backlog_from_the_file(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    store.add([_r(1, BP), _r(2, DOOR, Priority.ENVIRONMENTAL)])
    _seal_all(store, "region")
    store.close()
    queue = read_queue(tmp_path / "outbox.db", BOTH)
    assert queue is not None
    figures = ("waiting_readings", "pending_batches", "batched_readings", "tombstones_pending")
    assert {n: [queue.recipients[n][f] for f in figures] for n in BOTH} == {
        "region": [0, 1, 1, 0],
        "municipality": [2, 0, 0, 0],
    }
    assert queue.recipients["region"]["withheld_readings"] == {"activity": 1}


def test_a_recipient_removed_from_the_configuration_holds_nothing_back(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    store.add([_r(1, BP)])
    _seal_all(store, "region")
    store.close()
    both = Outbox(tmp_path / "outbox.db", recipients=BOTH)
    assert both.unbatched_count() == 1  # the municipality has still to take it
    both.close()
    alone = Outbox(tmp_path / "outbox.db", recipients=("region",))
    assert alone.unbatched_count() == 0  # the region took it; nobody else is left to
    alone.close()
