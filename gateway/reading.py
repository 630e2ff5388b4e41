"""The hub's Reading: one observed value with identity, times, quality and priority."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from protocols.uplink import Priority, WireReading


@dataclass(frozen=True, slots=True)
class Reading:
    """A reading on its way from a source to the outbox.

    ``value`` is exact (Decimal) or ``None`` with ``special`` naming the 11073 special value.
    ``hub_wall_ms`` is the hub's wall clock at reception, ``hub_mono_ns`` its monotonic clock;
    ``device_time`` is what the device reported (its own clock, no zone).
    """

    stream: str
    device: str
    mdc_code: int
    unit: str
    value: Decimal | None
    special: str | None
    hub_wall_ms: int
    hub_mono_ns: int
    device_time: dt.datetime | None = None
    priority: Priority = Priority.CLINICAL
    flags: frozenset[str] = field(default_factory=frozenset)
    #: The source's own identity for this reading (e.g. ``board/boot/seq``); the outbox
    #: stores a reading with a given key at most once, so a source may resend safely.
    source_key: str | None = None

    #: Wall time the source itself stamped (epoch ms, UTC), when it had a synced clock.
    source_wall_ms: int | None = None

    def effective_ms(self) -> int:
        """When the reading was taken, as epoch ms: the source's synced clock, else reception."""
        return self.source_wall_ms if self.source_wall_ms is not None else self.hub_wall_ms

    @staticmethod
    def exact(mantissa: int, exponent: int) -> Decimal:
        """``mantissa x 10**exponent`` built exactly (no context rounding)."""
        return Decimal(f"{mantissa}E{exponent}")

    def to_wire(self) -> WireReading:
        """The reading as it travels in a batch."""
        return WireReading(
            stream=self.stream,
            mdc_code=self.mdc_code,
            unit=self.unit,
            t_ms=self.effective_ms(),
            value=self.value,
            special=self.special,
            flags=self.flags,
            device=self.device,
        )
