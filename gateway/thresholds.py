"""Per-patient thresholds from the care team's configuration: crossing one makes an alert.

Pure. The hub only *sorts* by the care team's limits (docs/clinical-boundary.md): a reading beyond a
threshold gets priority ``alert`` and a flag naming the side it crossed; its value is never
changed. A threshold applies to one MDC code in one UCUM unit (no unit conversion here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from gateway.reading import Reading
from protocols.uplink import Priority

FLAG_BELOW = "threshold-below"
FLAG_ABOVE = "threshold-above"


@dataclass(frozen=True, slots=True)
class Threshold:
    """``value < below`` or ``value > above`` (either may be absent) is an alert."""

    mdc_code: int
    unit: str
    below: Decimal | None = None
    above: Decimal | None = None


#: Thresholds by MDC code, as :func:`threshold_table` builds them.
ThresholdTable = dict[int, tuple[Threshold, ...]]


def threshold_table(thresholds: Iterable[Threshold]) -> ThresholdTable:
    """Index thresholds by code for :func:`apply_thresholds`."""
    table: dict[int, list[Threshold]] = {}
    for t in thresholds:
        table.setdefault(t.mdc_code, []).append(t)
    return {code: tuple(ts) for code, ts in table.items()}


def crossed(reading: Reading, table: ThresholdTable) -> frozenset[str]:
    """The flags of the thresholds this reading crosses (none for a special value)."""
    value = reading.value
    if value is None:
        return frozenset()
    flags: set[str] = set()
    for t in table.get(reading.mdc_code, ()):
        if t.unit != reading.unit:
            continue
        if t.below is not None and value < t.below:
            flags.add(FLAG_BELOW)
        if t.above is not None and value > t.above:
            flags.add(FLAG_ABOVE)
    return frozenset(flags)


def apply_thresholds(reading: Reading, table: ThresholdTable) -> Reading:
    """The reading as an alert when it crosses a threshold (the same object otherwise)."""
    if reading.mdc_code not in table:
        return reading
    flags = crossed(reading, table)
    if not flags:
        return reading
    return reading._replace(priority=Priority.ALERT, flags=reading.flags | flags)
