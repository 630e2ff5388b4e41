"""Replay protection on the region side: a batch is named by (hub, boot id, sequence).

A hub numbers its batches per boot; the region accepts each name once. :class:`ReplayGuard`
is the pure, in-memory form (a sliding window per (hub, boot), like the IPsec anti-replay
window of RFC 4303 section 3.4.3); the reference receiver keeps the same check durable in
SQLite and reports it with the same :class:`ReplayError`.
"""

from __future__ import annotations

from typing import Protocol

from protocols.uplink.signing import ReplayError

__all__ = ["ReplayError", "ReplayGuard", "SeenBatches"]


class SeenBatches(Protocol):
    """Answers whether a batch name was already accepted (durably or in memory)."""

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """True when (hub, boot, seq) was accepted before."""
        ...


class ReplayGuard:
    """In-memory replay check: per (hub, boot), the highest sequence and a window below it.

    A sequence more than ``window`` below the highest seen is refused as a replay too (it
    cannot be told apart from one), so ``window`` must exceed how far batches can be
    reordered in flight. At most ``max_boots`` (hub, boot) pairs are remembered; the least
    recently used is forgotten first. :meth:`accept` records a batch once it is processed.
    """

    def __init__(self, *, window: int = 4096, max_boots: int = 100_000) -> None:
        if window <= 0 or max_boots <= 0:
            raise ValueError("window and max_boots must be positive")
        self.window = window
        self.max_boots = max_boots
        self._boots: dict[tuple[str, str], tuple[int, int]] = {}  # -> (highest, bitmap)

    def seen(self, hub_id: str, boot_id: str, seq: int) -> bool:
        """True when the batch was accepted, or is too old to tell."""
        state = self._boots.get((hub_id, boot_id))
        if state is None:
            return False
        highest, bitmap = state
        if seq > highest:
            return False
        age = highest - seq
        return age >= self.window or bool(bitmap >> age & 1)

    def check(self, hub_id: str, boot_id: str, seq: int) -> None:
        """Raise :class:`ReplayError` if the batch was seen."""
        if self.seen(hub_id, boot_id, seq):
            raise ReplayError(hub_id, boot_id, seq)

    def accept(self, hub_id: str, boot_id: str, seq: int) -> None:
        """Record a processed batch (raises :class:`ReplayError` if it was seen)."""
        self.check(hub_id, boot_id, seq)
        key = (hub_id, boot_id)
        highest, bitmap = self._boots.pop(key, (seq, 0))
        if seq > highest:
            bitmap = (bitmap << (seq - highest)) & ((1 << self.window) - 1)
            highest = seq
        bitmap |= 1 << (highest - seq)
        self._boots[key] = (highest, bitmap)  # re-inserted: most recently used last
        if len(self._boots) > self.max_boots:
            del self._boots[next(iter(self._boots))]
