"""SIGKILL at random moments: every reading acknowledged to its source arrives exactly once.

The store, pipeline and uplink run in a worker process (forked from a zygote) fed by a
numbered source; the harness kills it with SIGKILL at random moments, restarts it, and at the
end checks the receiver's readings (rig/bench/crash.py, docs/pipeline.md). The seed is
printed; set ``NARHUB_CRASH_SEED`` to replay a run's kill times.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from rig.bench.crash import run_harness, summary

KILLS = 250


def _seed() -> int:
    seed = int(os.environ.get("NARHUB_CRASH_SEED", random.randrange(2**32)))
    print(f"crash harness seed: {seed} (NARHUB_CRASH_SEED={seed} replays the kill times)")  # noqa: T201 - the seed must be visible
    return seed


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    report = run_harness(tmp_path, seed=_seed(), kills=KILLS)
    print(summary(report))  # noqa: T201 - the seed must be visible
    assert report.kills == KILLS
    assert report.acknowledged > KILLS  # the source kept feeding across lives
    assert report.lost == [], (
        f"seed {report.seed}: acknowledged, never delivered: {report.lost[:20]}"
    )
    assert report.doubled == [], f"seed {report.seed}: delivered twice: {report.doubled[:20]}"
    assert report.received >= report.acknowledged


def test_the_harness_catches_a_store_that_acknowledges_before_its_commit(tmp_path: Path) -> None:
    """The harness can fail: a worker that ACKs first, commits later, loses acknowledged data."""
    report = run_harness(tmp_path, seed=_seed(), kills=15, ack_before_commit=True, final_life_s=3.0)
    print(summary(report))  # noqa: T201 - the seed must be visible
    assert report.lost, "the harness did not notice acknowledged readings that were lost"
