"""Exactly-once, in-order acceptance of READINGS and the ACK rule (sensor-link.md §5).

Pure bookkeeping, no I/O. Per ``(board_id, boot_id)`` the hub tracks the next sequence number
it expects. A READINGS frame is accepted only if it starts at or before that number
(go-back-N): readings already seen are dropped as duplicates, a frame after a gap is dropped
whole (the board resends from its oldest unacknowledged reading after its ACK timeout). The
board's ``base_seq`` moves the expectation forward when earlier readings were acknowledged to
an earlier hub session or dropped by the board (and counted in its PONG).

The ACK for a batch is produced only by :meth:`DeliveryTracker.committed`, which the caller
invokes *after* the readings are durably stored. If the store fails, :meth:`rollback` forgets
the uncommitted expectation so the resent readings are accepted again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from protocols.sensorlink.messages import Ack, Readings

#: Boots remembered per tracker; older ones are forgotten (their readings, if resent, are
#: accepted again from ``base_seq``: the store must be idempotent on (board, boot, seq)).
MAX_TRACKED_BOOTS = 64


@dataclass(frozen=True, slots=True)
class SequencedReading:
    """A reading with its identity: ``(board_id, boot_id, seq)`` is unique (spec §5).

    Units: ``mono_ms`` board monotonic ms since boot, ``wall_ms`` Unix ms UTC or None;
    ``value`` is scaled by the sensor kind's exponent (spec §4).
    """

    board_id: str
    boot_id: int
    seq: int
    kind: int
    index: int
    mono_ms: int
    value: int
    wall_ms: int | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """Outcome of one READINGS frame.

    Attributes:
        new: readings to commit (possibly empty).
        duplicates: readings already accepted earlier.
        gap: True if the frame was dropped because readings before it are missing.
        reack: an ACK to resend now (the frame was all duplicates of committed readings).
    """

    new: tuple[SequencedReading, ...]
    duplicates: int
    gap: bool
    reack: Ack | None


class DeliveryTracker:
    """Go-back-N receiver state for the boards on one hub."""

    def __init__(self) -> None:
        self._next: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._committed: dict[tuple[str, int], int] = {}

    def accept(self, board_id: str, msg: Readings) -> Accepted:
        """Decide which readings of ``msg`` are new; advance the expectation past them."""
        key = (board_id, msg.boot_id)
        expected = max(self._next.get(key, msg.base_seq), msg.base_seq)
        first = msg.first_seq
        count = len(msg.readings)
        if first > expected:
            return Accepted((), 0, True, None)
        skip = expected - first
        if skip >= count:
            done = self._committed.get(key)
            reack = Ack(msg.boot_id, done) if done is not None and done >= first else None
            return Accepted((), count, False, reack)
        boot = msg.boot_id
        new = tuple(
            SequencedReading(
                board_id, boot, first + i, r.kind, r.index, r.mono_ms, r.value, r.wall_ms
            )
            for i, r in enumerate(msg.readings[skip:], start=skip)
        )
        self._next[key] = first + count
        self._next.move_to_end(key)
        while len(self._next) > MAX_TRACKED_BOOTS:
            old, _ = self._next.popitem(last=False)
            self._committed.pop(old, None)
        return Accepted(new, skip, False, None)

    def committed(self, board_id: str, boot_id: int, seq: int) -> Ack:
        """Record that readings up to ``seq`` are durably stored; return the ACK to send."""
        key = (board_id, boot_id)
        self._committed[key] = max(seq, self._committed.get(key, seq))
        return Ack(boot_id, self._committed[key])

    def rollback(self, board_id: str, boot_id: int) -> None:
        """The store failed: expect the uncommitted readings of this boot again."""
        key = (board_id, boot_id)
        done = self._committed.get(key)
        if done is None:
            self._next.pop(key, None)
        else:
            self._next[key] = done + 1
