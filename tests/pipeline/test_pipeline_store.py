"""The outbox: group commit, backpressure, deadlines, quota with tombstones, damage, keys."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import cbor2
import pytest
from hub_records import body_temperature

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.config import StoreConfig
from gateway.outbox import (
    FLAG_EVICTED,
    FLAG_STORE_RECOVERED,
    MDC_NARHUB_EVICTED,
    MDC_NARHUB_STORE_RECOVERED,
    PAGE_SIZE,
    AsyncOutbox,
    DamagedStoreError,
    Outbox,
    StoreBusyError,
    waits_long,
)
from gateway.outbox import keys as keys_module
from gateway.reading import Reading
from protocols.fhir import Filed, batch_resources
from protocols.uplink import Priority
from rig.bench.pipeline import WINDOWS_S

KEY = new_private_key_pem()
SIGNER = PemBatchSigner("hub-p", KEY)
VERIFIER = PemBatchVerifier({"hub-p": public_key_pem(KEY)})
T0 = 1_763_800_000_000


def _r(
    i: int,
    priority: Priority = Priority.CLINICAL,
    *,
    key: str | None = None,
    stream: str = "dev/150364",
    continuous: bool = False,
) -> Reading:
    return body_temperature(
        i,
        Decimal(f"36.{i % 100:02d}"),
        stream=stream,
        hub_wall_ms=T0 + i,
        priority=priority,
        source_key=key,
        continuous=continuous,
    )


class FakeClock:
    """A monotonic clock the test moves (the outbox's named seam for deadlines)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _decode(message: bytes) -> list[tuple[str, int, str | None, frozenset[str]]]:
    batch = VERIFIER.verify(message)
    return [
        (r.stream, r.mdc_code, None if r.value is None else str(r.value), r.flags)
        for r in batch.readings
    ]


def test_readings_are_exact_after_a_round_trip_through_chunks(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3")
    readings = [_r(i) for i in range(10)]
    readings.append(
        Reading("dev/nan", "dev", 150456, "%", None, "nan", T0 + 99, 0, flags=frozenset({"a", "b"}))
    )
    assert store.add(readings) == 11
    batch = store.seal(SIGNER, now_ms=T0)
    assert batch is not None
    got = VERIFIER.verify(batch.message).readings
    assert [str(r.value) for r in got[:10]] == [f"36.{i:02d}" for i in range(10)]
    assert [r.t_ms for r in got] == [T0 + i for i in range(10)] + [T0 + 99]
    assert (got[10].special, got[10].flags) == ("nan", frozenset({"a", "b"}))
    store.close()


def test_deadlines_follow_the_batching_policy(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "o.sqlite3"
    store = Outbox(path, clock=clock)
    assert store.due_in_s() is None
    store.add([_r(1, Priority.ENVIRONMENTAL)])
    assert store.due_in_s() == 300
    store.add([_r(2, continuous=True)])
    assert store.due_in_s() == 300
    clock.now += 100
    store.add([_r(3)])  # a clinical spot reading: 10 s
    assert store.due_in_s() == 10
    store.add([_r(4, Priority.ALERT)])
    assert store.due_in_s() == 0
    store.close()
    store = Outbox(path, clock=clock)  # waited across a restart: due now
    assert store.due_in_s() == 0
    batch = store.seal(SIGNER, now_ms=T0)
    assert batch is not None
    assert batch.priority is Priority.ALERT
    assert len(_decode(batch.message)) == 4  # everything waiting leaves with the alert
    assert store.due_in_s() is None
    store.close()


def test_source_keys_store_a_resend_once_and_expire(tmp_path: Path) -> None:
    wall = [T0]
    store = Outbox(tmp_path / "o.sqlite3", dedup_retention_s=3600, wall_ms=lambda: wall[0])
    assert store.add([_r(1, key="b/1/1"), _r(2, key="b/1/2"), _r(2, key="b/1/2")]) == 2
    assert store.add([_r(1, key="b/1/1"), _r(3, key="b/1/3")]) == 1
    assert store.add_groups([[_r(4, key="b/1/4")], [_r(4, key="b/1/4")]]) == [1, 0]
    store.close()
    store = Outbox(tmp_path / "o.sqlite3", dedup_retention_s=3600, wall_ms=lambda: wall[0])
    assert store.add([_r(1, key="b/1/1")]) == 0  # remembered across a restart (in its chunk)
    # The keys ride in their chunks' rows (one page per commit), not in source_keys; a seal
    # keeps them as one recent_keys row (an append) ...
    assert (store.stored_keys(), store.known_keys()) == (0, 4)
    assert store.seal(SIGNER, now_ms=wall[0]) is not None
    assert (store.stored_keys(), store.known_keys()) == (0, 4)
    assert store.add([_r(2, key="b/1/2"), _r(5, key="b/1/5")]) == 1
    store.close()
    store = Outbox(tmp_path / "o.sqlite3", dedup_retention_s=3600, wall_ms=lambda: wall[0])
    assert store.add([_r(3, key="b/1/3"), _r(5, key="b/1/5")]) == 0  # across a restart
    wall[0] += 2 * 1800 * 1000  # an hour: within the retention
    store.add([_r(6, key="b/1/6")])  # the first commit of this process folds them
    # ... until the prune interval folds them into source_keys: they still deduplicate.
    assert (store.stored_keys(), store.known_keys()) == (4, 6)
    assert store.add([_r(1, key="b/1/1"), _r(5, key="b/1/5")]) == 0
    assert store.seal(SIGNER, now_ms=wall[0]) is not None  # b/1/5 and b/1/6: sealed now
    wall[0] += 7 * 3600 * 1000  # past the retention and the prune interval
    store.add([_r(9)])
    assert (store.stored_keys(), store.known_keys()) == (0, 0)  # folded, then pruned
    assert store.add([_r(1, key="b/1/1")]) == 1  # forgotten after the retention
    store.close()


def test_a_commit_of_keyed_readings_writes_one_wal_frame(tmp_path: Path) -> None:
    """The bytes on the SD card (docs/pipeline.md): a board's reading, committed on its own,
    costs one WAL frame (its chunk's page), not one more in a B-tree of keys."""
    path = tmp_path / "o.sqlite3"
    store = Outbox(path)
    store.add([_r(0, Priority.ENVIRONMENTAL, key="b/1/0")])  # the tables' first pages exist
    frames = []
    for i in range(1, 4):
        before = Path(f"{path}-wal").stat().st_size
        store.add([_r(i, Priority.ENVIRONMENTAL, key=f"b/1/{i}")])
        frames.append((Path(f"{path}-wal").stat().st_size - before) // (PAGE_SIZE + 24))
    assert frames == [1, 1, 1]
    store.close()


def test_an_acknowledgement_may_wait_for_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    store = Outbox(path)
    store.add([_r(1)])
    first = store.seal(SIGNER, now_ms=T0)
    store.add([_r(2)])
    second = store.seal(SIGNER, now_ms=T0)
    assert first is not None
    assert second is not None
    store.acknowledge(first.batch_id, defer=True)
    # Gone for the uplink and the counts at once; still on disk until a commit.
    assert [b.batch_id for b in store.pending()] == [second.batch_id]
    assert store.counts()["pending_batches"] == 1
    assert store.depth_by_priority()["clinical"] == 1
    assert store.oldest_unsent_ms() == T0 + 2
    other = sqlite3.connect(path)
    (on_disk,) = other.execute("SELECT count(*) FROM batches").fetchone()
    assert on_disk == 2
    assert store.seal(SIGNER, now_ms=T0) is None  # a seal that finds nothing writes nothing
    (on_disk,) = other.execute("SELECT count(*) FROM batches").fetchone()
    assert on_disk == 2
    store.add([_r(3)])  # the next commit deletes it
    (on_disk,) = other.execute("SELECT count(*) FROM batches").fetchone()
    assert on_disk == 1
    store.acknowledge(second.batch_id, defer=True)
    store.close()  # closing deletes what is still acknowledged
    (on_disk,) = other.execute("SELECT count(*) FROM batches").fetchone()
    assert on_disk == 0
    other.close()


async def test_async_acknowledgements_commit_on_their_own_after_the_window(
    tmp_path: Path,
) -> None:
    outbox = AsyncOutbox(
        Outbox(tmp_path / "o.sqlite3"), commit_window_s=0.01, continuous_commit_window_s=0.05
    )
    try:
        await outbox.add([_r(1)])
        batch = await outbox.seal(SIGNER, now_ms=T0)
        assert batch is not None
        commits = outbox.outbox.stats.commits
        await outbox.acknowledge(batch.batch_id)
        assert await outbox.pending() == []
        assert outbox._ack_flusher is not None
        async with asyncio.timeout(10):
            await outbox._ack_flusher
        (on_disk,) = outbox.outbox._db.execute("SELECT count(*) FROM batches").fetchone()
        assert on_disk == 0
        assert outbox.outbox.stats.commits == commits  # not a commit of readings
    finally:
        outbox.close()


async def test_concurrent_adds_share_one_commit_and_return_after_it(tmp_path: Path) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"), commit_window_s=0.3)
    try:
        counts = await asyncio.gather(*(outbox.add([_r(i), _r(i + 100)]) for i in range(20)))
        assert counts == [2] * 20
        assert outbox.outbox.stats.commits == 1
        # Committed means visible to another connection (another process, after a crash).
        other = sqlite3.connect(tmp_path / "o.sqlite3")
        (n,) = other.execute("SELECT sum(n) FROM chunks").fetchone()
        other.close()
        assert n == 40
    finally:
        outbox.close()


async def test_continuous_readings_may_wait_longer_but_ride_along(tmp_path: Path) -> None:
    """A continuous stream's commit may wait its own window; a waiting source pulls it in."""
    outbox = AsyncOutbox(
        Outbox(tmp_path / "o.sqlite3"), commit_window_s=0.05, continuous_commit_window_s=3600
    )
    try:
        async with asyncio.timeout(10):
            stream = asyncio.create_task(outbox.add([_r(1, continuous=True)]))
            await asyncio.sleep(0)
            assert outbox._group.readings == 1
            assert outbox._group.commit_by - asyncio.get_running_loop().time() > 3000
            assert await outbox.add([_r(2, key="board/1/2")]) == 1
            assert await stream == 1
        assert outbox.outbox.stats.commits == 1
    finally:
        outbox.close()


async def test_a_waiting_source_cuts_short_the_window_the_committer_is_waiting_out(
    tmp_path: Path,
) -> None:
    """A stream opened the group with its long window and the committer is already waiting it
    out; a board's reading then joins: it is committed after its own short window, not the
    stream's (found by ``narhub bench e2e --ble``: board readings waited 60 s for their ACK,
    the boards resent and unlinked)."""
    outbox = AsyncOutbox(
        Outbox(tmp_path / "o.sqlite3"), commit_window_s=0.05, continuous_commit_window_s=3600
    )
    try:
        async with asyncio.timeout(10):
            stream = asyncio.create_task(outbox.add([_r(1, continuous=True)]))
            for _ in range(5):  # loop turns: the stream's add, then the committer's wait
                await asyncio.sleep(0)
            assert outbox._committer is not None
            assert outbox._group.commit_by - asyncio.get_running_loop().time() > 3000
            board = _r(2, Priority.ENVIRONMENTAL, key="board/1/2")  # waits for its window
            assert await outbox.add([board]) == 1
            assert await stream == 1
        assert outbox.outbox.stats.commits == 1
    finally:
        outbox.close()


async def test_an_alert_commits_without_waiting_for_the_window(tmp_path: Path) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"), commit_window_s=3600)
    try:
        async with asyncio.timeout(10):
            assert await outbox.add([_r(1, Priority.ALERT)]) == 1
    finally:
        outbox.close()


async def test_a_clinical_spot_reading_commits_at_once_environmental_data_waits(
    tmp_path: Path,
) -> None:
    """A spot reading came by a BLE indication the host stack has already confirmed: the
    commit does not wait for the window (the power-cut window shrinks to the fsync)."""
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"), commit_window_s=3600)
    try:
        async with asyncio.timeout(10):
            board = asyncio.create_task(outbox.add([_r(1, Priority.ENVIRONMENTAL, key="b/1/1")]))
            await asyncio.sleep(0)
            assert outbox._group.commit_by - asyncio.get_running_loop().time() > 3000
            assert await outbox.add([_r(2)]) == 1  # clinical, not continuous
            assert await board == 1  # rode along
    finally:
        outbox.close()


async def test_backpressure_holds_sources_while_commits_are_behind(tmp_path: Path) -> None:
    outbox = AsyncOutbox(
        Outbox(tmp_path / "o.sqlite3"), commit_window_s=0, max_pending_readings=150
    )
    gate = threading.Event()
    blocked = outbox._executor.submit(gate.wait)  # the disk is slow: the worker is busy
    try:
        first = asyncio.create_task(outbox.add([_r(i) for i in range(100)]))
        # The first group is handed to the (busy) worker thread: poll that state.
        while outbox._in_flight == 0:  # noqa: ASYNC110
            await asyncio.sleep(0)
        second = asyncio.create_task(outbox.add([_r(i) for i in range(100, 200)]))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not first.done()
        assert not second.done()
        assert outbox._group.readings == 0  # the second caller waits outside: bounded memory
        gate.set()
        assert await first == 100
        assert await second == 100
    finally:
        gate.set()
        blocked.result()
        outbox.close()


def _fill(store: Outbox, priority: Priority, count: int, start: int, stream: str) -> None:
    for k in range(count):
        store.add([_r(start + k * 50 + j, priority, stream=stream) for j in range(50)])


def test_quota_evicts_lowest_priority_oldest_first_and_leaves_tombstones(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3", quota_bytes=160 * 1024, min_free_bytes=0)
    _fill(store, Priority.CLINICAL, 20, 0, "dev/clinical")
    _fill(store, Priority.TELEMETRY, 40, 10_000, "hub/telemetry")
    _fill(store, Priority.ENVIRONMENTAL, 40, 20_000, "board/env")
    assert store.stats.evicted == 0 or store.stats.evicted % 50 == 0
    # Keep adding clinical readings until the quota forces evictions.
    for round_ in range(400):
        _fill(store, Priority.CLINICAL, 1, 30_000 + round_ * 50, "dev/clinical")
        rows = store._db.execute("SELECT priority, sum(n) FROM chunks GROUP BY priority")
        remaining = dict(rows.fetchall())
        if store.stats.evicted and Priority.ENVIRONMENTAL not in remaining:
            break
        # Never a clinical reading while environmental or telemetry readings remain.
        assert remaining.get(Priority.CLINICAL, 0) == 1000 + (round_ + 1) * 50
        if store.stats.evicted and Priority.TELEMETRY in remaining:
            assert remaining[Priority.ENVIRONMENTAL] == 2000  # telemetry goes first
    assert store.stats.evicted >= 2000
    assert store.used_bytes() <= 160 * 1024
    batch = store.seal(SIGNER, now_ms=T0, max_readings=100_000)
    assert batch is not None
    readings = VERIFIER.verify(batch.message).readings
    stones = [r for r in readings if r.mdc_code == MDC_NARHUB_EVICTED]
    by_stream = {r.stream: r for r in stones}
    tele = by_stream["hub/evicted/hub/telemetry"]
    assert tele.value == 2000  # every telemetry reading, counted
    assert FLAG_EVICTED in tele.flags
    assert "evicted-priority:telemetry" in tele.flags
    assert tele.t_ms == T0 + 10_000  # the range starts at the oldest evicted reading
    assert f"evicted-last-ms:{T0 + 10_000 + 1999}" in tele.flags
    assert sum(int(r.value or 0) for r in stones) == store.stats.evicted
    assert store.counts()["evicted_readings_total"] == store.stats.evicted
    # The region turns a tombstone into an Observation like any telemetry reading: the hub's
    # own, its subject and device the hub's gateway Device.
    header = VERIFIER.verify(batch.message).header
    (resource,) = batch_resources(
        header.hub_id, header.version, [Filed(tele, None)], {}
    ).observations
    assert resource["code"]["coding"][0]["code"] == str(MDC_NARHUB_EVICTED)
    assert resource["subject"] == resource["device"] == {"reference": f"Device/phg-{header.hub_id}"}
    store.close()


def test_a_damaged_store_is_moved_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    store = Outbox(path)
    store.add([_r(i) for i in range(2000)])
    store.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 2 + 64] = b"\xff" * 64  # a torn page in the middle
    path.write_bytes(bytes(data))
    assert _damaged(path)
    store = Outbox(path, recover=True)
    assert store.recovered is not None
    assert store.recovered.moved_to.exists()
    assert store.quick_check() == "ok"
    batch = store.seal(SIGNER, now_ms=T0)
    assert batch is not None
    (note,) = VERIFIER.verify(batch.message).readings  # forwarded to the region
    assert (note.mdc_code, note.value) == (MDC_NARHUB_STORE_RECOVERED, 1)
    assert FLAG_STORE_RECOVERED in note.flags
    store.close()


def _damaged(path: Path) -> bool:
    try:
        store = Outbox(path)
    except DamagedStoreError:
        return True
    try:
        return store.quick_check() != "ok"
    except sqlite3.DatabaseError:  # a torn page can make the check itself fail
        return True
    finally:
        store.close()


def test_a_file_that_is_not_a_database_never_causes_a_crash_loop(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not SQLite" * 1000)
    with pytest.raises(DamagedStoreError):
        Outbox(path)  # without recover: nothing is moved (the doctor uses this)
    assert path.exists()
    for _ in range(3):  # every start succeeds
        store = Outbox(path, recover=True)
        store.close()
    assert len(list(tmp_path.glob("outbox.sqlite3.damaged-*"))) == 1


def test_schema_1_readings_survive_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        CREATE TABLE readings (id INTEGER PRIMARY KEY, priority INTEGER NOT NULL,
            payload BLOB NOT NULL, batch_id INTEGER REFERENCES batches(id));
        CREATE INDEX readings_unbatched ON readings(priority, id) WHERE batch_id IS NULL;
        CREATE TABLE batches (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
            priority INTEGER NOT NULL, created_ms INTEGER NOT NULL, message BLOB NOT NULL,
            rejected_reason INTEGER);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE source_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
        """
    )
    payload = cbor2.dumps(["dev/150364", "dev", 150364, "Cel", T0, "37.20", None, []])
    db.execute("INSERT INTO readings(priority, payload) VALUES (1, ?)", (payload,))
    db.execute("INSERT INTO meta VALUES ('next_seq', '7')")
    db.close()
    store = Outbox(path)
    batch = store.seal(SIGNER, now_ms=T0)
    assert batch is not None
    assert batch.seq == 7
    assert _decode(batch.message) == [("dev/150364", 150364, "37.20", frozenset())]
    store.close()


def test_a_disk_below_its_free_space_floor_evicts_non_clinical_readings(tmp_path: Path) -> None:
    """The floor (``min_free_bytes``) is reached before the quota: environmental and telemetry
    readings go (tombstoned), clinical readings stay."""
    st = os.statvfs(tmp_path)
    floor = st.f_bavail * st.f_frsize + 1024 * 1024  # the disk is already below it
    store = Outbox(tmp_path / "o.sqlite3", quota_bytes=1 << 40, min_free_bytes=floor)
    _fill(store, Priority.CLINICAL, 2, 0, "dev/clinical")
    _fill(store, Priority.ENVIRONMENTAL, 4, 10_000, "board/env")
    remaining = dict(
        store._db.execute("SELECT priority, sum(n) FROM chunks GROUP BY priority").fetchall()
    )
    assert remaining == {Priority.CLINICAL: 100}
    assert store.stats.evicted == 200
    assert store.counts()["evicted_readings_total"] == 200
    store.close()


def test_the_pipeline_bench_reports_the_default_commit_windows_first() -> None:
    """``narhub bench pipeline`` quotes its first replay as the default configuration."""
    defaults = StoreConfig()
    assert WINDOWS_S[0] == (defaults.commit_window_s, defaults.continuous_commit_window_s)


def test_only_readings_nobody_waits_for_may_wait_the_long_window() -> None:
    assert waits_long(_r(1, continuous=True))
    assert waits_long(_r(1, Priority.TELEMETRY))
    assert not waits_long(_r(1, continuous=True, key="ble/racp/1"))  # a source resends it
    assert not waits_long(_r(1, Priority.TELEMETRY, key="board/1/1"))  # a board waits
    assert not waits_long(_r(1, Priority.ENVIRONMENTAL))
    assert not waits_long(_r(1))  # a clinical spot reading (commits at once anyway)


def test_an_exclusive_store_keeps_its_wal_index_in_memory_and_names_the_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite3"
    store = Outbox(path, exclusive=True)
    store.add([_r(1)])
    assert Path(f"{path}-wal").exists()
    assert not Path(f"{path}-shm").exists()  # nothing for the kernel to write back
    with pytest.raises(StoreBusyError) as busy:
        Outbox(path, busy_timeout_s=0.05)
    assert busy.value.path == path
    assert "is narhub running?" in str(busy.value)
    store.close()
    again = Outbox(path, busy_timeout_s=0.05)
    assert again.unbatched_count() == 1
    again.close()


def test_recent_keys_fold_early_only_when_folding_frees_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "MAX_RECENT_KEYS", 3)
    store = Outbox(tmp_path / "o.sqlite3", wall_ms=lambda: T0)  # within the key retention
    folds = []
    fold = store.keys.fold
    monkeypatch.setattr(store.keys, "fold", lambda tx: folds.append(1) or fold(tx))
    store.add([_r(i, Priority.ENVIRONMENTAL, key=f"b/1/{i}") for i in range(5)])
    assert len(folds) == 1  # the first commit: the prune interval
    store.add([_r(5, Priority.ENVIRONMENTAL, key="b/1/5")])  # all waiting: nothing to fold
    assert len(folds) == 1  # not tried again on every commit
    assert (store.stored_keys(), store.known_keys()) == (0, 6)
    assert store.seal(SIGNER, now_ms=T0) is not None
    store.add([_r(6, Priority.ENVIRONMENTAL, key="b/1/6")])  # sealed ones beyond 3: folded
    assert len(folds) == 2
    assert (store.stored_keys(), store.known_keys()) == (6, 7)
    assert store.add([_r(2, Priority.ENVIRONMENTAL, key="b/1/2")]) == 0  # still known
    store.close()
