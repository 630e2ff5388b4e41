"""Power cuts: writes not followed by fsync are lost, and still nothing acknowledged is lost.

The worker's SQLite file lives on ``powercut_fs.py``, a FUSE file system that keeps, for every
file, the content at its last fsync. After each SIGKILL the harness cuts the power: each file
goes back to that content (mode ``none``), or to it plus a random subset of the later writes,
some torn at a sector boundary (mode ``subset``: a disk may persist any unsynced write). Then
the next worker starts on what "survived". Same verdict as the SIGKILL harness: every reading
acknowledged to its source reaches the receiver exactly once.

Needs ``/dev/fuse``, Debian's ``fuse3`` (``fusermount3``) and ``mfusepy`` (for ``make test`` to
install). Without one of them the test is skipped and says which (``-ra`` lists the reason).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.bench.crash import CrashHarness, summary
from rig.processes import reap

FS_SCRIPT = Path(__file__).with_name("powercut_fs.py")
CUTS = 40


class PowerCutMount:
    """The mounted file system and its control channel."""

    def __init__(self, process: subprocess.Popen[str], mountpoint: Path) -> None:
        self.process = process
        self.mountpoint = mountpoint
        self.cuts = 0

    def _command(self, command: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    async def cut(self) -> None:
        assert await asyncio.to_thread(self._command, "cut") == "ok"
        self.cuts += 1

    def stats(self) -> str:
        return self._command("stats")


def _missing(reason: str) -> None:
    """In CI a missing tool fails loudly (`make test` installs it); elsewhere it skips."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (make test installs it)")
    pytest.skip(reason)


def _mount(tmp_path: Path, seed: int, mode: str) -> Iterator[PowerCutMount]:
    if not Path("/dev/fuse").exists():
        _missing("no /dev/fuse in this machine: the power-cut file system cannot mount")
    if not shutil.which("fusermount3"):
        _missing("fuse3 missing (fusermount3): apt-get install fuse3")
    try:
        import mfusepy  # noqa: F401
    except ImportError:
        _missing("mfusepy missing: pip install mfusepy (the test extra)")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(FS_SCRIPT), str(mountpoint), str(seed), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mountpoint):  # a readiness poll, with a deadline
            assert process.poll() is None, "the FUSE file system failed to mount"
            assert time.monotonic() < deadline, "the FUSE file system did not mount in 15 s"
            time.sleep(0.02)
        yield PowerCutMount(process, mountpoint)
    finally:
        subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False)
        reap(process, timeout_s=10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def _seed() -> int:
    seed = int(os.environ.get("NARHUB_CRASH_SEED", random.randrange(2**32)))
    print(f"power-cut seed: {seed} (NARHUB_CRASH_SEED={seed} replays it)")  # noqa: T201
    return seed


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "subset"])
def test_power_cuts_lose_nothing_acknowledged(tmp_path: Path, mode: str) -> None:
    seed = _seed()
    for mount in _mount(tmp_path, seed, mode):
        work = tmp_path / "work"
        work.mkdir()
        harness = CrashHarness(
            work,
            seed=seed,
            kills=CUTS,
            max_life_s=0.15,
            data_dir=mount.mountpoint / "hub",
            after_kill=mount.cut,
        )
        report = asyncio.run(harness.run())
        print(summary(report), mount.stats())  # noqa: T201
        assert mount.cuts == CUTS
        assert report.acknowledged > CUTS
        assert report.lost == [], f"seed {seed}: lost after a power cut: {report.lost[:20]}"
        assert report.doubled == [], f"seed {seed}: delivered twice: {report.doubled[:20]}"


def test_a_power_cut_loses_unsynced_writes(tmp_path: Path) -> None:
    """The file system does what it claims (so the test above can fail)."""
    for mount in _mount(tmp_path, 1, "none"):
        path = mount.mountpoint / "f"
        with path.open("wb") as f:
            f.write(b"synced")
            f.flush()
            os.fsync(f.fileno())
            f.write(b" and not")
        assert path.read_bytes() == b"synced and not"
        asyncio.run(mount.cut())
        assert path.read_bytes() == b"synced"
        (mount.mountpoint / "never-synced").write_bytes(b"x")
        asyncio.run(mount.cut())
        assert not (mount.mountpoint / "never-synced").exists()
