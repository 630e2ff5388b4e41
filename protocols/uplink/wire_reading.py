"""What a batch carries: readings (exact value or special) and the batch's priority."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

#: Flag of a reading whose value is an MDC code (a coded enumeration, PHD IG), not a quantity.
CODED_FLAG = "coded"


class Priority(enum.IntEnum):
    """Forwarding priority; lower numbers leave first (alerts first)."""

    ALERT = 0
    CLINICAL = 1
    ENVIRONMENTAL = 2
    TELEMETRY = 3

    @property
    def topic_name(self) -> str:
        """The topic level for this priority (``narhub/v1/{hub}/up/{name}``)."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class WireReading:
    """One reading as it travels: exact value or special, UCUM unit, epoch-ms time.

    ``value`` is a finite Decimal kept with its precision (``37.20`` stays ``37.20``), or
    ``None`` with ``special`` naming the 11073 special value (``nan``, ``nres``, ``+inf``,
    ``-inf``, ``reserved``; other names travel as text).
    """

    stream: str
    mdc_code: int
    unit: str
    t_ms: int
    value: Decimal | None
    special: str | None = None
    flags: frozenset[str] = frozenset()
    device: str = ""
