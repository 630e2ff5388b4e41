"""The batching policy, pure: what waits (per priority, with its times) in, what to seal and
when the next seal is due out. No SQLite, no clock: times are numbers passed in (seconds on the
store's monotonic clock), so every rule is tested on its own (tests/outbox/test_outbox_batching.py).

The rules (docs/pipeline.md, "Batching"): a reading may wait for its batch as long as its
priority allows (:class:`BatchingPolicy`); the waiting readings are due at the earliest of
their deadlines, counted from their arrival; once due, a seal takes *everything* waiting, most
urgent priority first and oldest first within one, up to ``max_batch_readings`` per batch, and
the batch carries the most urgent priority among its readings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocols.uplink import Priority

if TYPE_CHECKING:
    from gateway.config import BatchingConfig

#: While readings are held for the clock, how often (monotonic) the uplink's seal looks again.
HELD_RECHECK_S = 10.0


@dataclass(frozen=True)
class BatchingPolicy:
    """How long readings may wait for their batch, per priority (docs/pipeline.md)."""

    alert_s: float = 0.0
    clinical_s: float = 10.0
    continuous_s: float = 300.0
    environmental_s: float = 300.0
    telemetry_s: float = 300.0
    max_batch_readings: int = 10_000

    @classmethod
    def from_config(cls, config: BatchingConfig) -> BatchingPolicy:
        """The policy of a hub configuration's ``[batching]`` table: its keys are this
        policy's fields, same names, same units."""
        return cls(**config.model_dump())

    def delay_s(self, priority: Priority, *, continuous: bool) -> float:
        """The longest wait for a reading of this priority."""
        if priority is Priority.ALERT:
            return self.alert_s
        if priority is Priority.CLINICAL:
            return self.continuous_s if continuous else self.clinical_s
        if priority is Priority.ENVIRONMENTAL:
            return self.environmental_s
        return self.telemetry_s


@dataclass(frozen=True, slots=True)
class WaitingChunk:
    """A stored chunk of waiting readings, as the policy sees it (id order = arrival order)."""

    chunk_id: int
    priority: Priority
    readings: int


#: A kind of reading, as far as its deadline goes: (priority, continuous stream?).
Kind = tuple[Priority, bool]
#: The kind tombstones wait as (docs/pipeline.md, "Quota, eviction, tombstones").
TOMBSTONE_KIND: Kind = (Priority.TELEMETRY, False)


def due_after(delay_s: float, *, now_s: float, waited_s: float = 0.0) -> float:
    """The deadline of something that arrived ``waited_s`` before ``now_s`` and may wait
    ``delay_s``: never before ``now_s``."""
    return now_s + max(0.0, delay_s - waited_s)


def deadline(
    kinds: Iterable[Kind], policy: BatchingPolicy, *, now_s: float, waited_s: float = 0.0
) -> float | None:
    """When readings of these kinds, committed at ``now_s`` after waiting ``waited_s`` for
    their commit (a group commit window), must leave: the shortest delay among them counts
    from their arrival. None for no readings."""
    delays = [policy.delay_s(priority, continuous=continuous) for priority, continuous in kinds]
    if not delays:
        return None
    return due_after(min(delays), now_s=now_s, waited_s=waited_s)


def after_commit(
    kinds: Iterable[Kind],
    policy: BatchingPolicy,
    *,
    now_s: float,
    waited_s: float = 0.0,
    held: bool = False,
    evicted: bool = False,
) -> float | None:
    """The deadline a commit adds: its readings' (:func:`deadline`; held ones are not sealed,
    the uplink only looks again after :data:`HELD_RECHECK_S`), and, when it evicted readings,
    the tombstones' (telemetry). None when it adds none."""
    listed = list(kinds)
    if held:
        due = due_after(HELD_RECHECK_S, now_s=now_s, waited_s=waited_s) if listed else None
    else:
        due = deadline(listed, policy, now_s=now_s, waited_s=waited_s)
    if evicted:
        due = earliest(due, deadline([TOMBSTONE_KIND], policy, now_s=now_s))
    return due


def earliest(due_s: float | None, other_s: float | None) -> float | None:
    """The earlier of two deadlines (None: no deadline)."""
    if due_s is None:
        return other_s
    if other_s is None:
        return due_s
    return min(due_s, other_s)


def after_seal(
    due_s: float | None, *, still_waiting: bool, held: bool, now_s: float
) -> float | None:
    """The deadline once a seal is done: unchanged while readings still wait (they were due:
    the next seal takes them at once); otherwise none, or a look again after
    :data:`HELD_RECHECK_S` while readings are held for the clock."""
    if still_waiting:
        return due_s
    return now_s + HELD_RECHECK_S if held else None


def choose(
    waiting: Iterable[WaitingChunk], *, max_readings: int, newest_alert_alone: bool = False
) -> tuple[WaitingChunk, ...] | None:
    """The chunks one seal takes, from ``waiting`` in store order (most urgent priority first,
    oldest first within one): every chunk until ``max_readings`` would be exceeded, at least
    one. Reads ``waiting`` only as far as it needs (a backlog may be long).

    ``newest_alert_alone``: only the newest alert chunk, and only when more than one waits (a
    backlog after days offline: the newest alert leaves first, docs/protocols/uplink.md,
    "Drain order"); None when fewer wait (the normal seal takes them).
    """
    if newest_alert_alone:
        alerts = 0
        newest: WaitingChunk | None = None
        for chunk in waiting:
            if chunk.priority is not Priority.ALERT:
                break
            alerts += 1
            newest = chunk
        return (newest,) if alerts >= 2 and newest is not None else None
    taken: list[WaitingChunk] = []
    total = 0
    for chunk in waiting:
        if taken and total + chunk.readings > max_readings:
            break
        taken.append(chunk)
        total += chunk.readings
    return tuple(taken)


def batch_priority(chosen: Iterable[WaitingChunk], *, tombstones: bool) -> Priority | None:
    """The priority a batch carries: the most urgent among its readings; telemetry for
    tombstones alone; None for an empty batch."""
    priorities = [chunk.priority for chunk in chosen]
    if tombstones:
        priorities.append(TOMBSTONE_KIND[0])
    return min(priorities) if priorities else None
