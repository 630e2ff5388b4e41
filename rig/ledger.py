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
the rig's devices. The output is read as the hub measured it (:func:`read_fhir`): a device
through its Device resource, a compound blood pressure as its components (the ledger counts
systolic, diastolic and mean apart), the session's clock offset from the coincident time
stamp an Observation references.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from protocols.fhir.codes import BTMAC_SYSTEM, COINCIDENT_TIME_STAMP_EXTENSION, MDC_ATTR_TIME_ABS
from protocols.fhir.identity import DEVICE_SYSTEM, HUB_SYSTEM
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
    #: The rig's wall clock (epoch ms) when the reading was produced: when it really happened.
    taken_ms: int | None = None

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
    observations: Iterable[Observation],
    *,
    device: str,
    kind: str,
    seq: str,
    taken_ms: int | None = None,
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
                taken_ms,
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
    #: ``effectiveDateTime`` as epoch ms (None when absent or unreadable).
    effective_ms: int | None = None
    #: The flags of the Observation's note (``device-time-suspect``, ``name:value`` ones).
    flags: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, int, str, str]:
        """The match key (see :attr:`LedgerEntry.key`)."""
        return (self.device.upper(), self.mdc, self.unit, _canonical(self.value))


@dataclass
class FhirIndex:
    """What an Observation references in the same output: devices by reference (their names
    as the hub gives them) and the clock offsets of coincident time stamps."""

    devices: dict[str, str] = field(default_factory=dict)
    clock_offsets_s: dict[str, int] = field(default_factory=dict)

    def add(self, resource: dict[str, Any]) -> None:
        """Index a Device or a coincident time stamp (other resources are ignored)."""
        kind, rid = resource.get("resourceType"), resource.get("id")
        if kind == "Device":
            name = _device_name(resource)
            if name is not None:
                self.devices[f"Device/{rid}"] = name
        elif kind == "Observation" and _code(resource) == MDC_ATTR_TIME_ABS:
            hub = _epoch_ms(resource.get("effectiveDateTime"))
            device = _epoch_ms(resource.get("valueDateTime"))
            if hub is not None and device is not None:
                self.clock_offsets_s[f"Observation/{rid}"] = round((device - hub) / 1000)


def _device_name(device: dict[str, Any]) -> str | None:
    """The name the hub gives a device, from its Device's identifier."""
    for identifier in device.get("identifier", []):
        system, value = identifier.get("system"), str(identifier.get("value", ""))
        if system == BTMAC_SYSTEM:
            return value.replace("-", ":")
        if system == DEVICE_SYSTEM:
            return value
        if system == HUB_SYSTEM:
            return TOMBSTONE_DEVICE
    return None


def _code(resource: dict[str, Any]) -> int | None:
    try:
        return int(resource["code"]["coding"][0]["code"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def device_of(resource: dict[str, Any], index: FhirIndex) -> str | None:
    device = resource.get("device", {})
    if "reference" in device:
        return index.devices.get(str(device["reference"]))
    identifier = device.get("identifier", {})  # a logical reference (older output)
    return None if "value" not in identifier else str(identifier["value"])


def _clock_flags(resource: dict[str, Any], index: FhirIndex) -> set[str]:
    """The session clock offset of the Observation's coincident time stamp, as the flag the
    hub ships it in (``device-clock-offset-s:N``)."""
    out = set()
    for extension in resource.get("extension", []):
        if extension.get("url") == COINCIDENT_TIME_STAMP_EXTENSION:
            ref = str(extension.get("valueReference", {}).get("reference", ""))
            if ref in index.clock_offsets_s:
                out.add(f"device-clock-offset-s:{index.clock_offsets_s[ref]}")
    return out


#: Components that are not readings: the PHD IG's supplemental types (MDC_ATTR_SUPPLEMENTAL_TYPES).
_SUPPLEMENTAL_TYPES = "68193"
#: What the hub sends for a string observation (protocols.gatt.mapping.ghs): special "text".
_STRING = ("1", "text")


def _has_value(part: dict[str, Any]) -> bool:
    return any(
        k in part
        for k in (
            "valueQuantity",
            "valueCodeableConcept",
            "valueSampledData",
            "valueString",
            "dataAbsentReason",
        )
    )


def _value_of(part: dict[str, Any]) -> tuple[str, str]:
    """(unit, value) of an Observation or a component: a quantity, a code, a sample array
    (its first value, as the hub's reading holds it), a string or a special."""
    if "valueSampledData" in part:
        data = part["valueSampledData"]
        first = Decimal(str(data["data"]).split(" ")[0])
        value = first * Decimal(str(data["factor"])) + Decimal(str(data["origin"]["value"]))
        return str(data["origin"]["code"]), str(value)
    if "valueString" in part:
        return _STRING
    if "valueQuantity" in part:
        quantity = part["valueQuantity"]
        return str(quantity.get("code", "")), str(quantity["value"])
    if "valueCodeableConcept" in part:
        return "", str(part["valueCodeableConcept"]["coding"][0]["code"])
    absent = part.get("dataAbsentReason", {}).get("coding", [{}])[0].get("code", "")
    return "", {"not-a-number": "nan", "not-performed": "nres"}.get(absent, absent)


def fhir_readings(resource: dict[str, Any], index: FhirIndex | None = None) -> list[FhirReading]:
    """The matched fields of an Observation parsed with ``parse_float=str``: one reading, or
    one per component of a compound Observation (blood pressure: systolic, diastolic, mean,
    as the hub measured them); none when odd or not a reading (a time stamp, a Device)."""
    index = index or FhirIndex()
    code = _code(resource)
    device = device_of(resource, index)
    if resource.get("resourceType", "Observation") != "Observation" or code is None:
        return []
    if device is None or code == MDC_ATTR_TIME_ABS:
        return []
    effective = _epoch_ms(resource.get("effectiveDateTime"))
    notes = _flags(resource)
    common = {f"{name}:{value}" if value else name for name, value in notes.get("", {}).items()}
    common |= _clock_flags(resource, index)
    try:
        if "component" not in resource:
            unit, value = _value_of(resource)
            return [FhirReading(device, code, unit, value, effective, frozenset(common))]
        out = []
        if _has_value(resource):  # a value with components beside it (a CGM trend)
            unit, value = _value_of(resource)
            out.append(FhirReading(device, code, unit, value, effective, frozenset(common)))
        for component in resource["component"]:
            if component["code"]["coding"][0]["code"] == _SUPPLEMENTAL_TYPES:
                continue
            part = int(component["code"]["coding"][0]["code"])
            own = {f"{n}:{v}" if v else n for n, v in notes.get(str(part), {}).items()}
            unit, value = _value_of(component)
            out.append(FhirReading(device, part, unit, value, effective, frozenset(common | own)))
        return out
    except (KeyError, IndexError, TypeError, ValueError):
        return []


def fhir_reading(resource: dict[str, Any]) -> FhirReading | None:
    """The matched fields of a single Observation (see :func:`fhir_readings`); None if odd."""
    readings = fhir_readings(resource)
    return readings[0] if len(readings) == 1 else None


def _epoch_ms(text: object) -> int | None:
    """An ISO 8601 date-time with a zone (``...Z``) as epoch ms; None otherwise."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)  # 3.11 reads the "Z"
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return round(moment.timestamp() * 1000)


def _resources(path: Path) -> list[dict[str, Any]]:
    """Every complete line of an NDJSON output, parsed (a torn last line is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line, parse_float=str, parse_int=str))
        except json.JSONDecodeError:
            continue
    return out


def read_fhir(path: Path) -> list[FhirReading]:
    """The readings of an NDJSON output: Observations (compound ones as their components),
    their devices resolved through the Device resources written before them."""
    index = FhirIndex()
    out = []
    for resource in _resources(path):
        index.add(resource)
        out.extend(fhir_readings(resource, index))
    return out


#: The store's tombstone (:data:`gateway.outbox.MDC_NARHUB_EVICTED`, docs/pipeline.md "Quota,
#: eviction, tombstones"): an Observation of device ``hub`` whose value counts the readings
#: of one stream the hub evicted, the evicted MDC code and priority in its flags.
TOMBSTONE_MDC = 2 * 65536 + 0xF105
TOMBSTONE_DEVICE = "hub"


@dataclass(frozen=True)
class Tombstone:
    """Readings the hub evicted from one stream, as the region received the fact."""

    mdc: int
    priority: str
    count: int


def _flags(resource: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``name:value`` flags from the Observation's notes: ``flags: a, b:1`` (key ``""``) and,
    for a component's own flags, ``flags {MDC code}: c`` (key the code)."""
    out: dict[str, dict[str, str]] = {}
    for note in resource.get("note", []):
        text = str(note.get("text", ""))
        head, sep, tail = text.partition(": ")
        if not sep or not head.startswith("flags"):
            continue
        target = out.setdefault(head.removeprefix("flags").strip(), {})
        for flag in tail.split(", "):
            name, _, value = flag.partition(":")
            target[name] = value
    return out


def read_tombstones(path: Path) -> list[Tombstone]:
    """Every tombstone in an NDJSON output (a torn last line is ignored)."""
    index = FhirIndex()
    out = []
    for resource in _resources(path):
        index.add(resource)
        if device_of(resource, index) != TOMBSTONE_DEVICE or _code(resource) != TOMBSTONE_MDC:
            continue
        flags = _flags(resource).get("", {})
        try:
            count = int(str(resource["valueQuantity"]["value"]))
        except (KeyError, TypeError, ValueError):
            continue
        out.append(
            Tombstone(int(flags.get("evicted-mdc", "0")), flags.get("evicted-priority", ""), count)
        )
    return out


@dataclass
class Reconciliation:
    """The ledger held against the region's output, per device kind."""

    produced: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    missing: list[LedgerEntry] = field(default_factory=list)
    duplicated: list[tuple[str, int, str, str]] = field(default_factory=list)
    unexpected: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: Readings absent from the output and explained by the hub's tombstones (evicted over
    #: quota, the oldest of their code first); not part of ``missing``.
    evicted: list[LedgerEntry] = field(default_factory=list)
    #: Tombstoned readings not matched to an absent ledger reading (evicted readings that
    #: still arrived, or counts that do not add up): each one is a contradiction.
    unexplained_evictions: int = 0

    @property
    def exact(self) -> bool:
        """Every ledger reading exactly once, and nothing else from the rig's devices."""
        return not (
            self.missing or self.duplicated or self.unexpected or self.unexplained_evictions
        )

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
        if self.unexplained_evictions:
            parts.append(f"{self.unexplained_evictions} tombstoned readings not missing")
        return "; ".join(parts)


def reconcile(
    ledger: list[LedgerEntry],
    fhir: list[FhirReading],
    *,
    settled: list[LedgerEntry] | None = None,
    tombstones: Iterable[Tombstone] = (),
) -> Reconciliation:
    """Hold the output against the ledger.

    ``settled`` (default: the whole ledger) is the part that must have arrived; readings
    produced later (a board keeps sampling) may or may not have arrived yet, but nothing may
    arrive twice or without a ledger entry. Output from devices not in the ledger (the hub's
    own telemetry) and codes a device never measured (battery level) are ignored.

    ``tombstones`` (:func:`read_tombstones`): readings the hub evicted over its quota. They
    explain absent readings of their MDC code, oldest first (the store evicts the oldest);
    an evicted count with no absent reading to explain is a contradiction.
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
    absent: list[LedgerEntry] = []
    for entry in must:
        if need[entry.key] > got.get(entry.key, 0):
            absent.append(entry)
            need[entry.key] -= 1
    evicted = Counter[int]()
    for tombstone in tombstones:
        evicted[tombstone.mdc] += tombstone.count
    # What may be evicted is absent from the output: produced readings of that code beyond
    # what arrived (readings produced after ``settled`` included; the oldest go first).
    absent_by_code = Counter[int]()
    for key, n in allowed.items():
        absent_by_code[key[1]] += max(0, n - got.get(key, 0))
    result.unexplained_evictions = sum(
        max(0, n - absent_by_code[mdc]) for mdc, n in evicted.items()
    )
    for entry in absent:
        if evicted[entry.mdc] > 0:
            evicted[entry.mdc] -= 1
            result.evicted.append(entry)
        else:
            result.missing.append(entry)
    return result
