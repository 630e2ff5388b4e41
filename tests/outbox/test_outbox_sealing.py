"""Sealing signs outside the write lock and stays crash-safe (gateway/outbox/sealing.py,
docs/pipeline.md "Sealing")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from hub_records import body_temperature

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.outbox import AsyncOutbox, Outbox, PendingBatch
from gateway.reading import Reading
from protocols.uplink import Priority

KEY = new_private_key_pem()
SIGNER = PemBatchSigner("hub-s", KEY)
VERIFIER = PemBatchVerifier({"hub-s": public_key_pem(KEY)})
T0 = 1_763_800_000_000


def _r(i: int, priority: Priority = Priority.CLINICAL, stream: str = "dev/150364") -> Reading:
    return body_temperature(
        i, Decimal(i), stream=stream, hub_wall_ms=T0 + i, priority=priority, source_key=f"src/{i}"
    )


def _values(batch: PendingBatch) -> list[int]:
    return [int(r.value) for r in VERIFIER.verify(batch.message).readings if r.stream != "x"]


def _delivered(store: Outbox) -> list[int]:
    """Every reading value in the stored batches (each batch's own sequence number once)."""
    batches = store.all_batches()
    assert len({b.seq for b, _reason in batches}) == len(batches)
    return sorted(v for b, _reason in batches for v in _values(b))


class LockProbingSigner(PemBatchSigner):
    """Signs like the hub, after checking that the store's file is not write-locked: another
    connection takes (and gives back) the write lock at once."""

    def __init__(self, path: Path) -> None:
        super().__init__("hub-s", KEY)
        self.path = path
        self.probes = 0

    def sign(self, body: bytes) -> bytes:
        other = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" under the seal's lock
            other.execute("ROLLBACK")
        finally:
            other.close()
        self.probes += 1
        return super().sign(body)


class GatedSigner(PemBatchSigner):
    """Signs once ``release`` is set (a slow secure element); ``entered`` says it started."""

    def __init__(self) -> None:
        super().__init__("hub-s", KEY)
        self.entered = threading.Event()
        self.release = threading.Event()

    def sign(self, body: bytes) -> bytes:
        self.entered.set()
        assert self.release.wait(30), "never released"
        return super().sign(body)


class BrokenSigner(PemBatchSigner):
    def sign(self, body: bytes) -> bytes:
        msg = "secure element gone"
        raise OSError(msg)


def test_the_signature_is_computed_outside_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    store = Outbox(path)
    store.add([_r(i) for i in range(5)])
    signer = LockProbingSigner(path)
    batch = store.seal(signer, now_ms=T0)
    assert signer.probes == 1
    assert batch is not None
    assert _values(batch) == [0, 1, 2, 3, 4]
    store.close()


def test_a_signer_that_fails_changes_nothing(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3")
    store.add([_r(i) for i in range(5)])
    with pytest.raises(OSError, match="secure element gone"):
        store.seal(BrokenSigner("hub-s", KEY), now_ms=T0)
    assert store.unbatched_count() == 5
    assert store.pending() == []
    batch = store.seal(SIGNER, now_ms=T0)
    assert batch is not None
    assert (batch.seq, _values(batch)) == (0, [0, 1, 2, 3, 4])
    store.close()


_KILLED_BETWEEN_SIGNING_AND_STORING = """
import os, signal, sys
from pathlib import Path
from common.signing import PemBatchSigner
from gateway.outbox import Outbox

store = Outbox(Path(sys.argv[1]))
plan = store.prepare_seal("hub-s", now_ms=1)
assert plan is not None
message = PemBatchSigner("hub-s", Path(sys.argv[2]).read_bytes()).sign(plan.body)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_crash_between_signing_and_storing_leaves_the_readings_to_seal_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.sqlite3"
    key = tmp_path / "key.pem"
    key.write_bytes(KEY)
    store = Outbox(path)
    store.add([_r(i) for i in range(5)])
    store.close()
    worker = subprocess.run(
        [sys.executable, "-c", _KILLED_BETWEEN_SIGNING_AND_STORING, str(path), str(key)],
        check=False,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr.decode()
    store = Outbox(path)
    assert store.pending() == []  # the signed message was never stored: never sent
    due = store.due_in_s()
    assert due is not None
    assert due <= 0  # the readings waited across the crash: due now
    batch = store.seal(SIGNER, now_ms=T0)
    assert batch is not None
    assert (batch.seq, _values(batch)) == (0, [0, 1, 2, 3, 4])
    store.close()


def test_a_plan_another_seal_took_is_never_stored(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3")
    store.add([_r(i) for i in range(5)])
    stale = store.prepare_seal("hub-s", now_ms=T0)
    assert stale is not None
    assert store.seal(SIGNER, now_ms=T0) is not None  # took the same readings and seq
    store.add([_r(5)])
    assert store.finish_seal(stale, SIGNER.sign(stale.body)) is None
    assert _delivered(store) == [0, 1, 2, 3, 4]
    assert store.unbatched_count() == 1  # the later reading still waits
    store.close()


def test_a_plan_whose_readings_were_evicted_meanwhile_is_never_stored(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "o.sqlite3", quota_bytes=160 * 1024, min_free_bytes=0)
    store.add([_r(i, Priority.ENVIRONMENTAL, "board/env") for i in range(50)])
    stale = store.prepare_seal("hub-s", now_ms=T0)
    assert stale is not None
    clinical = 1000
    while not store.stats.evicted:  # clinical readings fill the quota: the oldest env. go
        store.add([_r(clinical + j) for j in range(50)])
        clinical += 50
    assert store.finish_seal(stale, SIGNER.sign(stale.body)) is None
    batch = store.seal(SIGNER, now_ms=T0, max_readings=10**6)
    assert batch is not None
    readings = VERIFIER.verify(batch.message).readings
    assert not [r for r in readings if r.stream == "board/env"]  # evicted, not sent
    assert [int(r.value) for r in readings if r.stream == "hub/evicted/board/env"] == [50]
    store.close()


@contextlib.asynccontextmanager
async def _signing(
    tmp_path: Path,
) -> AsyncIterator[tuple[AsyncOutbox, GatedSigner, asyncio.Future[PendingBatch | None]]]:
    """An async outbox holding readings 0-4 and a seal of them stopped in its signature."""
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite3"), commit_window_s=0.01)
    signer = GatedSigner()
    try:
        await outbox.add([_r(i) for i in range(5)])
        sealing = asyncio.ensure_future(outbox.seal(signer, now_ms=T0))
        assert await asyncio.to_thread(signer.entered.wait, 30)
        yield outbox, signer, sealing
    finally:
        signer.release.set()
        outbox.close()


async def test_commits_of_readings_go_on_while_a_batch_is_signed(tmp_path: Path) -> None:
    async with _signing(tmp_path) as (outbox, signer, sealing):
        async with asyncio.timeout(30):  # the store's thread is free: the alert commits
            assert await outbox.add([_r(5, Priority.ALERT)]) == 1
        signer.release.set()
        batch = await sealing
        assert batch is not None
        assert _values(batch) == [0, 1, 2, 3, 4]
        assert outbox.outbox.unbatched_count() == 1


async def test_concurrent_seals_store_each_reading_once(tmp_path: Path) -> None:
    async with _signing(tmp_path) as (outbox, slow, first):
        second = await outbox.seal(SIGNER, now_ms=T0)  # takes the readings the first planned
        assert second is not None
        await outbox.add([_r(5), _r(6)])
        slow.release.set()
        again = await first  # its plan went stale: sealed again, with what waits now
        assert again is not None
        assert (_values(second), _values(again)) == ([0, 1, 2, 3, 4], [5, 6])
        assert _delivered(outbox.outbox) == list(range(7))
