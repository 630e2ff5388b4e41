"""Jittered exponential backoff ("full jitter", as AWS's architecture blog describes it)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from ``initial_s`` up to ``cap_s``, each drawn uniformly below."""

    initial_s: float = 0.5
    cap_s: float = 60.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay_s(self) -> float:
        """The next delay; a fleet reconnecting after a broker restart spreads out."""
        ceiling = min(self.cap_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        """After a success, start again from ``initial_s``."""
        self.attempt = 0
