"""The reference batching policy: how the gateway seals a time-ordered day into batches.

The wire benchmark (:mod:`rig.bench.wire`) and the shipped dictionary's training
(:mod:`rig.wiregen.zdict`) batch the reference day (:func:`rig.refday.reference_day`) this way:
a reading waits at most its ``max_delay_ms``; a batch is sealed at the earliest deadline among
the waiting readings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.uplink import Priority, WireReading
from rig.refday import DayReading


class BatchPolicy(enum.Enum):
    """How readings are grouped into batches (see :func:`plan_batches`)."""

    #: A batch that must leave takes every reading waiting (the default).
    SHARED = "shared"
    #: One queue per priority: a batch only holds readings of its own priority.
    PER_PRIORITY = "per-priority"


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    """A batch as the gateway would seal it: when, at which priority, and what it holds."""

    created_ms: int
    priority: Priority
    readings: tuple[WireReading, ...]


def plan_batches(
    readings: Iterable[DayReading], policy: BatchPolicy = BatchPolicy.SHARED
) -> list[PlannedBatch]:
    """Group time-ordered readings into batches as the gateway does by default.

    A reading may wait at most its ``max_delay_ms``. A batch is sealed when the earliest
    deadline among the waiting readings has passed, at that deadline (its ``created_ms``).
    Under :attr:`BatchPolicy.SHARED` it takes every waiting reading and carries the most
    urgent priority among them; under :attr:`BatchPolicy.PER_PRIORITY` each priority has its
    own queue.
    """
    queues: dict[object, list[DayReading]] = {}
    deadlines: dict[object, int] = {}
    out: list[PlannedBatch] = []

    def seal(key: object) -> None:
        waiting = queues.pop(key)
        priority = min(r.priority for r in waiting)
        out.append(PlannedBatch(deadlines.pop(key), priority, tuple(r.to_wire() for r in waiting)))

    for reading in readings:
        for key in [k for k, d in deadlines.items() if d < reading.t_ms]:
            seal(key)
        key = "all" if policy is BatchPolicy.SHARED else reading.priority
        queues.setdefault(key, []).append(reading)
        deadline = reading.t_ms + reading.max_delay_ms
        deadlines[key] = min(deadlines.get(key, deadline), deadline)
    for key in sorted(deadlines, key=deadlines.__getitem__):
        seal(key)
    out.sort(key=lambda b: b.created_ms)
    return out
