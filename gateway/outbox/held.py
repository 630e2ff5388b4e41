"""Held readings and the clock back-fill (docs/pipeline.md, "The hub's clock").

With a clock source (:mod:`gateway.clock`), readings committed before the hub's wall clock is
trusted are stored as *held* chunks (``held_boot`` = the kernel's boot id, with each reading's
monotonic time): never sealed, never evicted, until the clock is trusted and their wall time
is back-filled.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import cbor2

from gateway.clock import ClockSample, ClockSource
from gateway.outbox.chunks import Columns, chunk_times, hub_relative_offset, retimed
from gateway.outbox.transaction import Reader, Transaction
from gateway.reading import Reading
from gateway.validate import FLAG_HUB_CLOCK, FLAG_HUB_TIME_BACKFILLED, FLAG_HUB_TIME_ESTIMATED

logger = logging.getLogger(__name__)

#: A change of the wall clock's offset to the monotonic clock beyond this is a step (NTP
#: slewing moves both clocks alike; systemd-timesyncd steps from 0.4 s).
CLOCK_STEP_TOLERANCE_NS = 100_000_000


class ClockTrust:
    """Whether the hub's wall clock is trusted, as a clock source says and keeps saying."""

    def __init__(self, source: ClockSource | None) -> None:
        #: None: every wall time is taken as it is, nothing is held.
        self.source = source
        #: The first sample that said "trusted" (None: not yet, or no clock source).
        self.trusted_sample: ClockSample | None = None
        #: The latest sample taken (None: no clock source).
        self.sample: ClockSample | None = None
        self._untrusted_logged = False

    def trusted(self) -> ClockSample | None:
        """The sample the wall clock is trusted from; None while it is not trusted.

        Asks the clock source at every commit and seal (a system call and two clock reads).
        Once trusted, the trust holds while the wall clock keeps its offset to the monotonic
        clock (NTP slews both alike), even if the kernel's sync flag lapses later (after hours
        without NTP): a step of more than :data:`CLOCK_STEP_TOLERANCE_NS` (set by hand, lost,
        stepped by NTP) makes the source judge again, and readings stamped since the step are
        held or corrected like any others.
        """
        if self.source is None:
            return None
        sample = self.source.sample()
        self.sample = sample
        trust = self.trusted_sample
        if trust is not None:
            step_ns = (sample.wall_ns - sample.mono_ns) - (trust.wall_ns - trust.mono_ns)
            if abs(step_ns) <= CLOCK_STEP_TOLERANCE_NS and sample.boot_id == trust.boot_id:
                return trust
            self.trusted_sample = None
            logger.warning("hub wall clock stepped by %.1f s: judging it again", step_ns / 1e9)
        if sample.trusted:
            self.trusted_sample = sample
            self._untrusted_logged = False
            logger.info("hub wall clock trusted (%s)", sample.reason)
        elif not self._untrusted_logged:
            self._untrusted_logged = True
            logger.warning(
                "hub wall clock not trusted (%s): readings are held until it is", sample.reason
            )
        return self.trusted_sample


def held_count(db: Reader) -> int:
    """Readings held in the file."""
    return int(db.scalar("SELECT coalesce(sum(n), 0) FROM chunks WHERE held_boot IS NOT NULL"))


def backfilled_ms(trust: ClockSample, mono_ns: int) -> int:
    """Wall time (epoch ms) of a moment of the trusted sample's boot, from its monotonic time:
    ``wall_at_trust - (mono_at_trust - mono)``, floored to the ms."""
    return (trust.wall_ns - (trust.mono_ns - mono_ns)) // 1_000_000


def backfilled(readings: Sequence[Reading], trust: ClockSample) -> Sequence[Reading]:
    """Readings received by this process before the clock was trusted, with back-filled
    times (the same boot: a process lives in one); the others unchanged."""
    cutoff = trust.mono_ns
    if all(r.hub_mono_ns >= cutoff for r in readings):
        return readings
    out = []
    for r in readings:
        if r.hub_mono_ns >= cutoff:
            out.append(r)
            continue
        wall_ms = backfilled_ms(trust, r.hub_mono_ns)
        shift = wall_ms - r.hub_wall_ms
        source = r.source_wall_ms
        if hub_relative_offset(r) is None:
            shift = 0  # a device's own clock: not moved with the hub's
        out.append(
            r._replace(
                hub_wall_ms=wall_ms,
                source_wall_ms=None if source is None else source + shift,
                flags=(r.flags - {FLAG_HUB_CLOCK}) | {FLAG_HUB_TIME_BACKFILLED},
            )
        )
    return out


def backfill(tx: Transaction, trust: ClockSample) -> tuple[int, int]:
    """Give every held chunk its wall time within ``tx``; (exact, estimated) readings.

    Same boot as the trusted sample: ``wall = wall_at_trust - (mono_at_trust - mono)``
    (:func:`backfilled_ms`), flag ``hub-time-backfilled``. Another boot (the clock was never
    trusted before it ended): times are estimated, flag ``hub-time-estimated``: the boot's
    last held reading is put at the next boot's start (this boot's, from the trusted sample;
    for older boots, the estimated first held reading of the boot after it) and the others
    keep their monotonic spacing before it, an upper bound.
    """
    exact = estimated = 0
    rows = tx.execute(
        "SELECT id, held_boot, payload FROM chunks WHERE held_boot IS NOT NULL ORDER BY id"
    ).fetchall()
    by_boot: dict[str, list[tuple[int, Columns]]] = {}
    for chunk_id, boot, payload in rows:
        by_boot.setdefault(boot, []).append((chunk_id, cbor2.loads(payload)))
    updates: list[tuple[bytes, int, int]] = []
    for chunk_id, columns in by_boot.pop(trust.boot_id, []):
        times = _times(columns, functools.partial(backfilled_ms, trust))
        updates.append((*retimed(columns, times, FLAG_HUB_TIME_BACKFILLED), chunk_id))
        exact += len(times)
    # Earlier boots, the latest first: each ended before the next one started.
    anchor_ns = trust.wall_ns - trust.mono_ns  # this boot's start, wall time
    for chunks in sorted(by_boot.values(), key=lambda c: c[-1][0], reverse=True):
        monos = [m for _, columns in chunks for m in columns[5]]
        last_ns, first_ns = max(monos), min(monos)
        for chunk_id, columns in chunks:
            times = _times(columns, functools.partial(_estimated_ms, anchor_ns, last_ns))
            updates.append((*retimed(columns, times, FLAG_HUB_TIME_ESTIMATED), chunk_id))
            estimated += len(times)
        anchor_ns -= last_ns - first_ns
    tx.executemany("UPDATE chunks SET held_boot=NULL, payload=?, first_ms=? WHERE id=?", updates)
    return exact, estimated


def _estimated_ms(anchor_ns: int, last_ns: int, mono_ns: int) -> int:
    """Wall time (epoch ms) estimated for a reading of an earlier boot whose last held
    reading (``last_ns``, monotonic) is put at ``anchor_ns`` (wall)."""
    return (anchor_ns - (last_ns - mono_ns)) // 1_000_000


def _times(columns: Columns, wall_ms: Callable[[int], int]) -> list[int]:
    """A held chunk's new times: ``wall_ms(mono)`` plus the kept offset of each reading on the
    hub's clock; a device's own stamp (offset None) unchanged."""
    stamped = chunk_times(columns)
    return [
        t if o is None else wall_ms(m) + o for m, o, t in zip(*columns[5:7], stamped, strict=True)
    ]
