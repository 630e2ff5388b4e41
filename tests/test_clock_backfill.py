"""Readings taken before the hub's wall clock is trusted: held, back-filled, never lost.

The clock is the store's seam (:class:`gateway.clock.ClockSource`): a :class:`StepClock`
says "untrusted" and then "trusted" with chosen wall and monotonic times, so every expected
time below is plain arithmetic on numbers the test picked (docs/pipeline.md, "The hub's
clock").
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from hub_records import body_temperature

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.clock import ClockSample, SystemClock, require_sync_for, timesyncd_synchronised
from gateway.outbox import HELD_RECHECK_S, SCHEMA_VERSION, Outbox
from gateway.reading import Reading
from gateway.validate import (
    FLAG_HUB_CLOCK,
    FLAG_HUB_TIME_BACKFILLED,
    FLAG_HUB_TIME_ESTIMATED,
    MIN_PLAUSIBLE_WALL_MS,
)
from protocols.uplink import Priority, WireReading

KEY = new_private_key_pem()
SIGNER = PemBatchSigner("hub-clk", KEY)
VERIFIER = PemBatchVerifier({"hub-clk": public_key_pem(KEY)})
BOOT_A = "boot-a"
BOOT_B = "boot-b"
#: What fake-hwclock restores after a power cut: plausible, but days behind.
STALE_WALL_MS = MIN_PLAUSIBLE_WALL_MS + 86_400_000
#: The true time when NTP answers (2025-11-22T10:00:00Z).
NTP_WALL_MS = 1_763_805_600_000
S = 1_000_000_000  # ns per second


class StepClock:
    """A clock source whose state the test sets: untrusted, then trusted at chosen times."""

    def __init__(self, boot_id: str, *, mono_ns: int, wall_ms: int, trusted: bool) -> None:
        self.boot_id = boot_id
        self.mono_ns = mono_ns
        self.wall_ms = wall_ms
        self.trusted = trusted
        self.samples = 0

    def sample(self) -> ClockSample:
        self.samples += 1
        reason = "test: trusted" if self.trusted else "test: not synchronised"
        return ClockSample(
            self.trusted, self.wall_ms * 1_000_000, self.mono_ns, self.boot_id, reason
        )


def _reading(
    i: int, *, mono_ns: int, wall_ms: int, priority: Priority = Priority.CLINICAL
) -> Reading:
    flags = frozenset({FLAG_HUB_CLOCK}) if wall_ms < MIN_PLAUSIBLE_WALL_MS else frozenset()
    return body_temperature(
        i,
        Decimal(f"36.{i}"),
        stream=f"dev/{i % 2}",
        hub_wall_ms=wall_ms,
        hub_mono_ns=mono_ns,
        priority=priority,
        flags=flags | {f"n:{i}"},
        source_key=f"k/{i}",
    )


def _sealed(store: Outbox) -> list[WireReading]:
    out: list[WireReading] = []
    while (batch := store.seal(SIGNER, now_ms=NTP_WALL_MS)) is not None:
        out.extend(VERIFIER.verify(batch.message).readings)
        store.acknowledge(batch.batch_id)
    return sorted(out, key=lambda r: r.stream + str(r.value))


def _by_n(readings: list[WireReading]) -> dict[int, WireReading]:
    return {
        int(next(f for f in r.flags if f.startswith("n:"))[2:]): r
        for r in readings
        if any(f.startswith("n:") for f in r.flags)
    }


def test_held_until_trusted_then_back_filled_exactly(tmp_path: Path) -> None:
    clock = StepClock(BOOT_A, mono_ns=20 * S, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(tmp_path / "o.sqlite3", clock_source=clock)
    # Taken at monotonic 30 s, 31.5 s and 40.000789 s; the wall clock said "stale".
    monos = [30 * S, 31 * S + S // 2, 40 * S + 789_123]
    store.add([_reading(i, mono_ns=m, wall_ms=STALE_WALL_MS + i) for i, m in enumerate(monos)])
    store.add([_reading(3, mono_ns=41 * S, wall_ms=5_000, priority=Priority.ALERT)])

    assert store.seal(SIGNER, now_ms=STALE_WALL_MS) is None, "sealed with an untrusted clock"
    assert store.counts()["held_readings"] == 4
    assert store.counts()["unbatched_readings"] == 4
    assert store.oldest_unsent_ms() is None  # a held time is no time
    due = store.due_in_s()
    assert due is not None
    assert 0 < due <= HELD_RECHECK_S  # the uplink looks again

    # NTP answers: at monotonic 100 s the wall clock is NTP_WALL_MS.
    clock.trusted, clock.mono_ns, clock.wall_ms = True, 100 * S, NTP_WALL_MS
    readings = _by_n(_sealed(store))
    assert sorted(readings) == [0, 1, 2, 3]
    assert readings[0].t_ms == NTP_WALL_MS - 70_000
    assert readings[1].t_ms == NTP_WALL_MS - 68_500
    assert readings[2].t_ms == NTP_WALL_MS - 60_000  # 59,999.210877 ms before, floored
    assert readings[3].t_ms == NTP_WALL_MS - 59_000
    for r in readings.values():
        assert FLAG_HUB_TIME_BACKFILLED in r.flags
        assert FLAG_HUB_CLOCK not in r.flags
        assert FLAG_HUB_TIME_ESTIMATED not in r.flags
    assert [readings[i].value for i in range(4)] == [Decimal(f"36.{i}") for i in range(4)]
    assert store.counts()["held_readings"] == 0
    store.close()


def test_exact_floor_of_a_sub_millisecond_mono(tmp_path: Path) -> None:
    clock = StepClock(BOOT_A, mono_ns=0, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(tmp_path / "o.sqlite3", clock_source=clock)
    store.add([_reading(0, mono_ns=10 * S + 999_999, wall_ms=STALE_WALL_MS)])
    clock.trusted, clock.mono_ns, clock.wall_ms = True, 20 * S, NTP_WALL_MS
    (r,) = _sealed(store)
    # NTP - (20 s - 10.000999999 s) = NTP - 9,999.000001 ms: floored to the ms before
    assert r.t_ms == NTP_WALL_MS - 10_000
    store.close()


def test_restart_between_hold_and_trust_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    untrusted = StepClock(BOOT_A, mono_ns=5 * S, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(path, clock_source=untrusted)
    store.add([_reading(i, mono_ns=(10 + i) * S, wall_ms=STALE_WALL_MS + i) for i in range(5)])
    store.add([_reading(5, mono_ns=20 * S, wall_ms=STALE_WALL_MS + 99)])
    store.close()  # the service restarts (same boot) before NTP answers

    store = Outbox(path, clock_source=untrusted)
    assert store.held_readings() == 6
    assert store.seal(SIGNER, now_ms=1) is None
    store.add([_reading(6, mono_ns=30 * S, wall_ms=STALE_WALL_MS + 100)])
    store.close()

    trusted = StepClock(BOOT_A, mono_ns=50 * S, wall_ms=NTP_WALL_MS, trusted=True)
    store = Outbox(path, clock_source=trusted)
    assert store.held_readings() == 7
    due = store.due_in_s()
    assert due is not None
    assert due <= 0  # due at once: the first seal back-fills
    readings = _by_n(_sealed(store))
    expected_s = {0: 10, 1: 11, 2: 12, 3: 13, 4: 14, 5: 20, 6: 30}
    assert {i: r.t_ms for i, r in readings.items()} == {
        i: NTP_WALL_MS - (50 - s) * 1000 for i, s in expected_s.items()
    }
    assert all(FLAG_HUB_TIME_BACKFILLED in r.flags for r in readings.values())
    assert store.counts()["unbatched_readings"] == 0
    store.close()


def test_earlier_boot_never_trusted_is_estimated_and_flagged(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    store = Outbox(path, clock_source=StepClock(BOOT_A, mono_ns=0, wall_ms=0, trusted=False))
    store.add([_reading(0, mono_ns=100 * S, wall_ms=1), _reading(1, mono_ns=160 * S, wall_ms=2)])
    store.close()  # power cut: boot A ends without NTP

    # Boot B: the same readings' keys are resent (not stored twice) and one new one is held.
    clock_b = StepClock(BOOT_B, mono_ns=1 * S, wall_ms=3, trusted=False)
    store = Outbox(path, clock_source=clock_b)
    assert store.add([_reading(1, mono_ns=2 * S, wall_ms=4)]) == 0
    store.add([_reading(2, mono_ns=8 * S, wall_ms=9)])
    clock_b.trusted, clock_b.mono_ns, clock_b.wall_ms = True, 12 * S, NTP_WALL_MS
    readings = _by_n(_sealed(store))
    boot_b_start = NTP_WALL_MS - 12_000
    # Boot A's last held reading is put at boot B's start, the other 60 s before it.
    assert readings[1].t_ms == boot_b_start
    assert readings[0].t_ms == boot_b_start - 60_000
    assert readings[2].t_ms == NTP_WALL_MS - 4_000  # boot B: exact
    assert {FLAG_HUB_TIME_ESTIMATED} <= readings[0].flags
    assert {FLAG_HUB_TIME_ESTIMATED} <= readings[1].flags
    assert FLAG_HUB_TIME_BACKFILLED in readings[2].flags
    assert FLAG_HUB_TIME_ESTIMATED not in readings[2].flags
    store.close()


def test_received_before_trust_in_the_same_process_is_back_filled_at_commit(
    tmp_path: Path,
) -> None:
    clock = StepClock(BOOT_A, mono_ns=50 * S, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(tmp_path / "o.sqlite3", clock_source=clock)
    # Trusted by the time of the commit; one reading was received before, one after.
    clock.trusted, clock.mono_ns, clock.wall_ms = True, 60 * S, NTP_WALL_MS
    store.add(
        [
            _reading(0, mono_ns=55 * S, wall_ms=STALE_WALL_MS),
            _reading(1, mono_ns=61 * S, wall_ms=NTP_WALL_MS + 1_000),
        ]
    )
    assert store.held_readings() == 0
    readings = _by_n(_sealed(store))
    assert readings[0].t_ms == NTP_WALL_MS - 5_000
    assert FLAG_HUB_TIME_BACKFILLED in readings[0].flags
    assert readings[1].t_ms == NTP_WALL_MS + 1_000  # after trust: taken as it is
    assert FLAG_HUB_TIME_BACKFILLED not in readings[1].flags
    store.close()


def test_a_step_after_trust_is_judged_again_and_held_readings_follow_the_new_clock(
    tmp_path: Path,
) -> None:
    clock = StepClock(BOOT_A, mono_ns=10 * S, wall_ms=NTP_WALL_MS, trusted=True)
    store = Outbox(tmp_path / "o.sqlite3", clock_source=clock)
    store.add([_reading(0, mono_ns=11 * S, wall_ms=NTP_WALL_MS + 1_000)])
    # Slewing moves wall and monotonic alike: still trusted, nothing held.
    clock.mono_ns, clock.wall_ms = 20 * S, NTP_WALL_MS + 10_000
    store.add([_reading(1, mono_ns=19 * S, wall_ms=NTP_WALL_MS + 9_000)])
    assert store.held_readings() == 0
    # The clock is lost (stepped back below the floor; the kernel says "unsynchronised").
    clock.trusted, clock.mono_ns, clock.wall_ms = False, 30 * S, 5_000
    store.add([_reading(2, mono_ns=29 * S, wall_ms=4_000)])
    assert store.held_readings() == 1
    # NTP answers again: the held reading follows the new trusted sample.
    clock.trusted, clock.mono_ns, clock.wall_ms = True, 40 * S, NTP_WALL_MS + 30_000
    readings = _by_n(_sealed(store))
    assert {i: r.t_ms for i, r in readings.items()} == {
        0: NTP_WALL_MS + 1_000,
        1: NTP_WALL_MS + 9_000,
        2: NTP_WALL_MS + 30_000 - 11_000,
    }
    assert FLAG_HUB_TIME_BACKFILLED in readings[2].flags
    assert FLAG_HUB_CLOCK not in readings[2].flags
    assert FLAG_HUB_TIME_BACKFILLED not in readings[1].flags
    store.close()


def test_held_readings_are_never_evicted(tmp_path: Path) -> None:
    clock = StepClock(BOOT_A, mono_ns=0, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(tmp_path / "o.sqlite3", clock_source=clock, quota_bytes=64 * 1024)
    for start in range(0, 2_000, 200):
        store.add(
            [_reading(i, mono_ns=i * S, wall_ms=STALE_WALL_MS) for i in range(start, start + 200)]
        )
    assert store.stats.over_quota, "the test must exceed the quota"
    assert store.stats.evicted == 0
    assert store.held_readings() == 2_000
    clock.trusted, clock.mono_ns, clock.wall_ms = True, 3_000 * S, NTP_WALL_MS
    assert len(_sealed(store)) == 2_000
    store.close()


def test_schema_2_store_is_migrated_and_keeps_its_readings(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    store = Outbox(path)
    store.add([_reading(i, mono_ns=i, wall_ms=NTP_WALL_MS + i) for i in range(3)])
    store.close()
    db = sqlite3.connect(path)  # make it the file a schema-2 narhub left
    db.execute("ALTER TABLE chunks DROP COLUMN held_boot")
    db.execute("ALTER TABLE chunks DROP COLUMN keys")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()

    clock = StepClock(BOOT_A, mono_ns=0, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(path, clock_source=clock)
    store.add([_reading(3, mono_ns=5 * S, wall_ms=STALE_WALL_MS)])  # held: the column exists
    assert store.held_readings() == 1
    old = _by_n(_sealed(store))  # the schema-2 readings were trusted: they leave now
    assert {i: r.t_ms for i, r in old.items()} == {i: NTP_WALL_MS + i for i in range(3)}
    assert store.held_readings() == 1  # still waiting for the clock
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_system_clock_judges_kernel_sync_and_the_plausibility_floor() -> None:
    unsynced = SystemClock(synchronised=lambda: False, boot_id="b").sample()
    assert (unsynced.trusted, unsynced.boot_id) == (False, "b")
    assert "TIME_ERROR" in unsynced.reason
    assert SystemClock(synchronised=lambda: True, boot_id="b").sample().trusted
    assert SystemClock(synchronised=lambda: None, boot_id="b").sample().trusted
    assert SystemClock(require_sync=False, synchronised=lambda: False).sample().trusted
    future_floor = SystemClock(synchronised=lambda: True, floor_ms=2**62).sample()
    assert not future_floor.trusted
    assert "floor" in future_floor.reason
    assert require_sync_for("bluez", None)
    assert not require_sync_for("sim", None)
    assert require_sync_for("sim", True)


@pytest.mark.parametrize("trusted", [False, True])
def test_without_a_clock_source_nothing_is_held(tmp_path: Path, trusted: bool) -> None:
    store = Outbox(tmp_path / "o.sqlite3")
    wall = NTP_WALL_MS if trusted else 5
    store.add([_reading(0, mono_ns=1, wall_ms=wall)])
    assert store.held_readings() == 0
    (r,) = _sealed(store)
    assert r.t_ms == wall
    store.close()


def test_timesyncd_flag_file_is_the_fallback(tmp_path: Path) -> None:
    assert timesyncd_synchronised(tmp_path / "absent") is None  # no timesyncd: unknown
    run = tmp_path / "timesync"
    run.mkdir()
    assert timesyncd_synchronised(run) is False
    (run / "synchronized").touch()
    assert timesyncd_synchronised(run) is True


def test_a_device_stamp_on_its_own_clock_is_not_moved_with_the_hub_clock(tmp_path: Path) -> None:
    """Back-fill moves times that are on the hub's clock. A BLE time stamp taken as it is (the
    session observed no offset: the device's own clock) is already a wall time; one corrected
    by an offset observed against the untrusted hub clock is on the hub's clock and moves."""
    import datetime as dt

    clock = StepClock(BOOT_A, mono_ns=0, wall_ms=STALE_WALL_MS, trusted=False)
    store = Outbox(tmp_path / "o.sqlite3", clock_source=clock)
    true_ms = NTP_WALL_MS - 60_000  # when both were taken, on a right clock
    stamp = dt.datetime(2025, 11, 22, 9, 59)
    own = _reading(0, mono_ns=40 * S, wall_ms=STALE_WALL_MS)._replace(
        device_time=stamp, source_wall_ms=true_ms
    )
    # Offset observed against the stale hub clock: its corrected time is in the hub's frame.
    relative = _reading(1, mono_ns=40 * S, wall_ms=STALE_WALL_MS)._replace(
        device_time=stamp, source_wall_ms=STALE_WALL_MS - 1_000, clock_offset_ms=12_345
    )
    store.add([own, relative])
    clock.trusted, clock.mono_ns, clock.wall_ms = True, 100 * S, NTP_WALL_MS
    readings = _by_n(_sealed(store))
    assert readings[0].t_ms == true_ms  # left alone
    assert readings[1].t_ms == true_ms - 1_000  # moved with the hub's clock
    store.close()
