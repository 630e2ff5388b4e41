"""Counting at the far end for ``narhub bench e2e``: the source's ledger against the FHIR output.

Every reading the source offered has an identity that reaches the region unchanged: the
device (a board's id, a strap's address), the MDC code and the value, which is the reading's
number in its source's ledger (:mod:`rig.bench.e2e_board`, :mod:`rig.bench.e2e_ble`).
:class:`FhirTally` reads the receiver's NDJSON output as it grows, and records for each
identity how many Observations carry it and when the first was written. :func:`figures`
then holds one step's ledger against it: **delivered** (at least once), **lost** (never),
**doubled** (copies beyond the first), and the latency from the moment the source took the
reading to the moment its Observation was written (``CLOCK_MONOTONIC`` on both sides).

Loss is by identity, never by counts: a reading that arrived twice does not make up for one
that never came.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rig.ledger import FhirIndex, device_of

_MS = 1_000_000


@dataclass(frozen=True)
class SourceLedger:
    """One source's ledger: when each reading was taken and why one may be missing."""

    device: str
    mdc_code: int
    taken_ns: array[int]
    #: 1 where the source itself lost the reading (ring overwrite, undelivered notification).
    lost_at_source: bytes | bytearray
    #: What that loss is called (``board_ring_full``, ``ble_not_delivered``).
    source_loss: str
    #: The value of reading 0 (a strap numbers from 1).
    first_value: int = 0
    #: When each reading first left the source (a board's UART; 0: never), if not when taken.
    sent_ns: array[int] | None = None


@dataclass
class _Seen:
    first_ns: dict[int, int] = field(default_factory=dict)
    copies: dict[int, int] = field(default_factory=dict)


class FhirTally:
    """What the region wrote so far, by identity, read incrementally."""

    def __init__(self, path: Path, sources: Mapping[str, SourceLedger]) -> None:
        self.path = path
        self.lines = 0
        self.unexpected = 0
        self._offset = 0
        self._keys = {(s.device.upper(), s.mdc_code): name for name, s in sources.items()}
        self._first_value = {name: s.first_value for name, s in sources.items()}
        self._size = {name: s.taken_ns for name, s in sources.items()}
        self.seen: dict[str, _Seen] = {name: _Seen() for name in sources}
        #: Devices by reference: an Observation names its device through its Device resource.
        self.index = FhirIndex()

    def read(self, lines: int, arrival_ns: Callable[[int], int]) -> None:
        """Take in the output up to line ``lines`` (those the receiver reported written)."""
        if lines <= self.lines:
            return
        with self.path.open("rb") as out:
            out.seek(self._offset)
            data = out.read()
        for raw in data.splitlines(keepends=True):
            if self.lines >= lines or not raw.endswith(b"\n"):
                break
            self._offset += len(raw)
            self._take(raw, arrival_ns(self.lines))
            self.lines += 1

    def _take(self, raw: bytes, at_ns: int) -> None:
        resource = json.loads(raw, parse_float=str, parse_int=str)
        self.index.add(resource)
        identity = _identity(resource, self.index)
        if identity is None:
            return
        device, code, value = identity
        name = self._keys.get((device.upper(), code))
        if name is None:
            return  # the hub's own telemetry, or a code the source never sends
        index = value - self._first_value[name]
        if not 0 <= index < len(self._size[name]):
            self.unexpected += 1
            return
        seen = self.seen[name]
        copies = seen.copies.get(index, 0)
        seen.copies[index] = copies + 1
        if not copies:
            seen.first_ns[index] = at_ns


def _identity(resource: dict[str, Any], index: FhirIndex) -> tuple[str, int, int] | None:
    """(device, MDC code, integer value) of an Observation, or None."""
    device = device_of(resource, index)
    if device is None:
        return None
    try:
        code = int(resource["code"]["coding"][0]["code"])
        number = Decimal(str(resource["valueQuantity"]["value"]))
    except (KeyError, IndexError, TypeError, ValueError, InvalidOperation):
        return None
    if number != number.to_integral_value():
        return None
    return device, code, int(number)


def percentiles_ms(values_ns: list[int]) -> dict[str, float | None]:
    """p50, p99 and max in ms (nearest rank); None for an empty list."""
    if not values_ns:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values_ns)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] / _MS, 1)

    return {"p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1] / _MS, 1)}


@dataclass
class StepCount:
    """One step's readings held against the output."""

    offered: int = 0
    delivered: int = 0
    lost: int = 0
    doubled: int = 0
    lost_by_cause: dict[str, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    #: From the moment the reading first left the source (its frame left the UART).
    sent_latencies_ns: list[int] = field(default_factory=list)
    #: Per source: readings offered / delivered.
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Arrival times of every delivered reading (for the outage's recovery figures).
    arrivals_ns: list[int] = field(default_factory=list)
    #: (taken_ns, arrival_ns or None) of every reading (for the outage's backlog figure).
    outcomes: list[tuple[int, int | None]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The counts and the latency percentiles."""
        return {
            "offered": self.offered,
            "delivered": self.delivered,
            "lost": self.lost,
            "lost_by_cause": dict(self.lost_by_cause),
            "doubled": self.doubled,
            "latency_ms": percentiles_ms(self.latencies_ns),
            "latency_from_first_send_ms": percentiles_ms(self.sent_latencies_ns),
            "by_source": self.by_source,
        }


def figures(
    spans: Mapping[str, tuple[int, int]],
    ledgers: Mapping[str, SourceLedger],
    tally: FhirTally,
    *,
    keep_outcomes: bool = False,
) -> StepCount:
    """Hold the readings ``spans`` (source name -> [first, end) ledger indices) against
    what the region wrote."""
    count = StepCount()
    for name, (first, end) in spans.items():
        ledger, seen = ledgers[name], tally.seen[name]
        delivered = 0
        for index in range(first, end):
            copies = seen.copies.get(index, 0)
            taken = ledger.taken_ns[index]
            if copies:
                delivered += 1
                arrived = seen.first_ns[index]
                count.latencies_ns.append(arrived - taken)
                sent = taken if ledger.sent_ns is None else ledger.sent_ns[index]
                if sent:
                    count.sent_latencies_ns.append(arrived - sent)
                count.arrivals_ns.append(arrived)
                count.doubled += copies - 1
            else:
                cause = ledger.source_loss if ledger.lost_at_source[index] else "after_source"
                count.lost_by_cause[cause] = count.lost_by_cause.get(cause, 0) + 1
            if keep_outcomes:
                count.outcomes.append((taken, seen.first_ns[index] if copies else None))
        offered = end - first
        count.offered += offered
        count.delivered += delivered
        count.by_source[name] = {"offered": offered, "delivered": delivered}
    count.lost = count.offered - count.delivered
    return count


@dataclass
class Outage:
    """When the broker went away and came back (``CLOCK_MONOTONIC`` ns)."""

    down_ns: int = 0
    back_ns: int = 0
    region_subscribed_ns: int = 0
    router_online_ns: int = 0


def outage_figures(count: StepCount, outage: Outage) -> dict[str, Any]:
    """Recovery after the broker came back."""
    back = outage.back_ns
    after = [t for t in count.arrivals_ns if t >= back]
    backlog = [o for o in count.outcomes if o[0] < back]
    backlog_arrivals = [a for _, a in backlog if a is not None]
    backlog_complete = all(a is not None for _, a in backlog)
    return {
        "broker_down_s": round((back - outage.down_ns) / 1e9, 1),
        "region_subscribed_after_return_s": round((outage.region_subscribed_ns - back) / 1e9, 3),
        "first_delivery_after_return_s": (round((min(after) - back) / 1e9, 3) if after else None),
        "backlog_readings": len(backlog),
        "backlog_delivered_after_return_s": (
            round((max(backlog_arrivals) - back) / 1e9, 3)
            if backlog_arrivals and backlog_complete
            else None
        ),
    }
