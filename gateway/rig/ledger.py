"""The rig's ledger: one JSON line per reading a device or board produced, and the check of
the region's FHIR output against it.

A ledger line::

    {"source": "ble", "device": "C0:FF:EE:00:00:01", "kind": "thermometer", "mdc": 150364,
     "unit": "Cel", "value": "37.2", "device_time": "2026-11-22T07:00:00", "seq": 0}

``value`` is the exact decimal as a string (or a special such as ``"nan"``, or an MDC code
for a coded value); ``seq`` is the device's own sequence (the glucose record number, the
board's ``boot/seq``, else the rig's count for that device). The ledger is written by the
rig, not the hub: it is what really happened in the home, to hold the region's output against.

:func:`reconcile` compares multisets keyed by (device, MDC code, unit, value): every ledger
reading must be in the FHIR output exactly once, and the output must hold nothing else from
the rig's devices.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from protocols.gatt import Observation


@dataclass(frozen=True)
class LedgerEntry:
    """One produced reading."""

    source: str
    device: str
    kind: str
    mdc: int
    unit: str
    value: str
    device_time: str | None
    seq: str

    @property
    def key(self) -> tuple[str, int, str, str]:
        """What the region's output is matched on."""
        return (self.device.upper(), self.mdc, self.unit, _canonical(self.value))


def _canonical(value: str) -> str:
    """A decimal's value without trailing-zero differences (37.20 and 37.2 stay distinct
    in the output's text, but the ledger matches on value; precision is checked elsewhere)."""
    try:
        number = Decimal(value)
    except ArithmeticError:
        return value
    return str(number.normalize()) if number.is_finite() else value


def entries_from_observations(
    observations: Iterable[Observation], *, device: str, kind: str, seq: str
) -> list[LedgerEntry]:
    """Ledger entries for one measurement's observations (as :mod:`protocols.gatt` maps it)."""
    out = []
    for o in observations:
        if o.value is not None:
            value = str(o.value)
        elif o.coded_value is not None:
            value = str(o.coded_value)
        else:
            value = o.special or "absent"
        out.append(
            LedgerEntry(
                "ble",
                device,
                kind,
                o.mdc_code,
                o.unit,
                value,
                None if o.timestamp is None else o.timestamp.isoformat(),
                seq,
            )
        )
    return out


class LedgerWriter:
    """Appends entries as JSON lines, flushed and fsynced per write (the rig may be killed)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: TextIO = path.open("a", encoding="utf-8")
        #: Entries written, per device kind.
        self.counts: Counter[str] = Counter()

    def write(self, entries: Iterable[LedgerEntry]) -> None:
        """Append entries."""
        lines = []
        for entry in entries:
            lines.append(json.dumps(asdict(entry), separators=(",", ":")) + "\n")
            self.counts[entry.kind] += 1
        if lines:
            self._file.writelines(lines)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read_ledger(path: Path) -> list[LedgerEntry]:
    """Every complete line of a ledger (a torn last line is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        out.append(LedgerEntry(**data))
    return out


@dataclass(frozen=True)
class FhirReading:
    """The part of a FHIR Observation the ledger is matched on."""

    device: str
    mdc: int
    unit: str
    value: str

    @property
    def key(self) -> tuple[str, int, str, str]:
        """The match key (see :attr:`LedgerEntry.key`)."""
        return (self.device.upper(), self.mdc, self.unit, _canonical(self.value))


def fhir_reading(resource: dict[str, Any]) -> FhirReading | None:
    """The matched fields of an Observation parsed with ``parse_float=str``; None if odd."""
    try:
        device = str(resource["device"]["identifier"]["value"])
        coding = resource["code"]["coding"][0]
        mdc = int(coding["code"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        return FhirReading(device, mdc, str(quantity.get("code", "")), str(quantity["value"]))
    if "valueCodeableConcept" in resource:
        code = resource["valueCodeableConcept"]["coding"][0]["code"]
        return FhirReading(device, mdc, "", str(code))
    absent = resource.get("dataAbsentReason", {}).get("coding", [{}])[0].get("code", "")
    special = {"not-a-number": "nan", "not-performed": "nres"}.get(absent, absent)
    return FhirReading(device, mdc, "", special)


def read_fhir(path: Path) -> list[FhirReading]:
    """The readings of an NDJSON file of Observations (a torn last line is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            resource = json.loads(line, parse_float=str, parse_int=str)
        except json.JSONDecodeError:
            continue
        reading = fhir_reading(resource)
        if reading is not None:
            out.append(reading)
    return out


@dataclass
class Reconciliation:
    """The ledger held against the region's output, per device kind."""

    produced: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    missing: list[LedgerEntry] = field(default_factory=list)
    duplicated: list[tuple[str, int, str, str]] = field(default_factory=list)
    unexpected: list[tuple[str, int, str, str]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Every ledger reading exactly once, and nothing else from the rig's devices."""
        return not (self.missing or self.duplicated or self.unexpected)

    def explain(self) -> str:
        """A short account of the differences (for a failing test or the demo summary)."""
        if self.exact:
            return "every produced reading arrived exactly once"
        parts = []
        if self.missing:
            kinds = Counter(e.kind for e in self.missing)
            parts.append("missing: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        if self.duplicated:
            parts.append(f"{len(self.duplicated)} duplicated")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} not in the ledger")
        return "; ".join(parts)


def reconcile(
    ledger: list[LedgerEntry],
    fhir: list[FhirReading],
    *,
    settled: list[LedgerEntry] | None = None,
) -> Reconciliation:
    """Hold the output against the ledger.

    ``settled`` (default: the whole ledger) is the part that must have arrived; readings
    produced later (a board keeps sampling) may or may not have arrived yet, but nothing may
    arrive twice or without a ledger entry. Output from devices not in the ledger (the hub's
    own telemetry) and codes a device never measured (battery level) are ignored.
    """
    result = Reconciliation()
    must = ledger if settled is None else settled
    devices = {e.device.upper() for e in ledger}
    codes = {(e.device.upper(), e.mdc) for e in ledger}
    kinds = {(e.device.upper(), e.mdc): e.kind for e in ledger}
    allowed = Counter(e.key for e in ledger)
    got = Counter(r.key for r in fhir if r.key[0] in devices and (r.key[0], r.key[1]) in codes)
    for entry in must:
        result.produced[entry.kind] += 1
    for key, n in got.items():
        kind = kinds[(key[0], key[1])]
        result.delivered[kind] += n
        if key not in allowed:
            result.unexpected.extend([key] * n)
        elif n > allowed[key]:
            result.duplicated.extend([key] * (n - allowed[key]))
    need = Counter(e.key for e in must)
    for entry in must:
        if need[entry.key] > got.get(entry.key, 0):
            result.missing.append(entry)
            need[entry.key] -= 1
    return result
