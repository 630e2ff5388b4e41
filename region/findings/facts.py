"""What the region records as data arrive, on its own clock: the facts findings are judged on.

Two kinds of arrival, each stamped with the region's **ingestion time** (``received_ms``):

* :class:`Ingestion`: a batch's readings as the receiver filed them (each with its patient,
  or none for the hub's own), built by :func:`ingestion` from a
  :class:`region.filing.Filing`;
* :class:`StatusSeen`: a hub's retained status document (``narhub/v1/{hub}/status``,
  docs/protocols/uplink.md "Status topic"), read by :func:`parse_status`. A copy the broker
  delivers because it was retained (MQTT 5.0 section 3.3.1.3: RETAIN set on a message sent for
  a new subscription) says what the hub last reported, not that the hub is there now: it
  updates the device state, never the hub's last contact.

The loaded facts (:class:`HubFacts`, :class:`DeviceFacts`, :class:`LatestFacts`,
:class:`HeldFacts`) are what :mod:`region.findings.policy` reads. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from protocols.fhir.identity import PatientRef, held_key
from protocols.uplink.device_facts import CLOCK_OFFSET_FLAG, CLOCK_READ_FLAG, is_device_info
from protocols.uplink.wire_reading import WireReading
from region.findings.errors import StatusDocumentError

#: The hub's threshold flags (gateway/thresholds.py): a reading the care team's limit alerts.
ALERT_FLAGS = frozenset({"threshold-above", "threshold-below"})
#: The status document versions this module reads.
STATUS_VERSIONS = frozenset({1})
#: A status document larger than this is refused (the hub's is about 1 KiB).
MAX_STATUS_BYTES = 64 * 1024


def patient_key(patient: PatientRef) -> str:
    """How the findings' tables name a patient: ``system|value``."""
    return f"{patient.system}|{patient.value}"


def patient_of(key: str) -> PatientRef:
    """The patient a :func:`patient_key` names."""
    system, _, value = key.rpartition("|")
    return PatientRef(system, value)


@dataclass(frozen=True, slots=True)
class IngestedReading:
    """A reading as the findings keep it: whose, which device, what, when, the hub's flags.

    ``key`` identifies the reading (the same reading in two batches has the same key:
    :func:`protocols.fhir.identity.held_key` over the hub and the reading's identity)."""

    patient: PatientRef | None
    device: str
    mdc_code: int
    unit: str
    t_ms: int
    value: Decimal | None
    flags: frozenset[str]
    key: str

    @property
    def alerted(self) -> bool:
        """Whether the hub's threshold flagged it."""
        return not self.flags.isdisjoint(ALERT_FLAGS)

    def clock_read(self) -> tuple[int, int] | None:
        """The session's device clock read it carries: (offset s, the hub's read ms)."""
        offset = read = None
        for flag in self.flags:
            name, _, number = flag.partition(":")
            if name == CLOCK_OFFSET_FLAG:
                offset = _int(number)
            elif name == CLOCK_READ_FLAG:
                read = _int(number)
        return None if offset is None or read is None else (offset, read)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Ingestion:
    """Readings the receiver filed from one batch (or released from the held), at
    ``received_ms`` on the region's clock; ``held``: how many it held unattributed."""

    hub: str
    received_ms: int
    readings: tuple[IngestedReading, ...]
    held: int = 0


def ingestion(
    hub: str,
    received_ms: int,
    filed: Iterable[tuple[WireReading, PatientRef | None]],
    *,
    held: int = 0,
) -> Ingestion:
    """An :class:`Ingestion` from filed readings (Device Information readings left out)."""
    out = []
    occurrences: dict[tuple[str, ...], int] = {}
    for reading, patient in filed:
        if is_device_info(reading):
            continue
        identity = (reading.device, reading.stream, str(reading.mdc_code), str(reading.t_ms))
        occurrence = occurrences.get(identity, 0)
        occurrences[identity] = occurrence + 1
        out.append(
            IngestedReading(
                patient,
                reading.device,
                reading.mdc_code,
                reading.unit,
                reading.t_ms,
                reading.value,
                reading.flags,
                held_key(hub, reading, occurrence),
            )
        )
    return Ingestion(hub, received_ms, tuple(out), held)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One configured device in a hub's status: slot, kind, connected, battery (%)."""

    slot: int
    kind: str
    connected: bool
    battery_percent: int | None


@dataclass(frozen=True, slots=True)
class HubStatus:
    """The parts of a hub's status document the findings read."""

    hub: str
    state: str
    #: The hub's clock and counter: identify a document (never used as a time).
    at_ms: int | None
    status_seq: int | None
    devices: tuple[DeviceStatus, ...]

    @property
    def identity(self) -> str:
        """What tells two documents apart (an offline will has neither time nor counter)."""
        return f"{self.state}:{self.at_ms}:{self.status_seq}"


@dataclass(frozen=True, slots=True)
class StatusSeen:
    """A status document the region received at ``received_ms``; ``retained``: delivered
    from the broker's store (a new subscription), not published just now."""

    status: HubStatus
    received_ms: int
    retained: bool


def _field(doc: dict[str, Any], name: str, kinds: tuple[type, ...], *, optional: bool) -> Any:
    value = doc.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise StatusDocumentError(name, f"must be {kinds[0].__name__}, not a boolean")
    if not isinstance(value, kinds):
        raise StatusDocumentError(name, f"must be {kinds[0].__name__}, not {value!r:.40}")
    return value


def _device(index: int, raw: object) -> DeviceStatus:
    where = f"devices[{index}]"
    if not isinstance(raw, dict):
        raise StatusDocumentError(where, "must be an object")
    slot = raw.get("slot")
    kind = raw.get("kind")
    battery = raw.get("battery_percent")
    if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < 1024:
        raise StatusDocumentError(f"{where}.slot", "must be a whole number 0-1023")
    if not isinstance(kind, str) or not 0 < len(kind) <= 64:
        raise StatusDocumentError(f"{where}.kind", "must be a device kind (text)")
    if battery is not None and (
        isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100
    ):
        raise StatusDocumentError(f"{where}.battery_percent", "must be 0-100 or null")
    return DeviceStatus(slot, kind, raw.get("connected") is True, battery)


def parse_status(topic_hub: str, payload: bytes) -> HubStatus:
    """Read a status document published on ``narhub/v1/{topic_hub}/status``; raises
    :class:`StatusDocumentError` naming the field (a document for another hub included)."""
    if len(payload) > MAX_STATUS_BYTES:
        raise StatusDocumentError("(document)", f"longer than {MAX_STATUS_BYTES} bytes")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise StatusDocumentError("(document)", "not JSON (UTF-8)") from None
    if not isinstance(doc, dict):
        raise StatusDocumentError("(document)", "must be a JSON object")
    if _field(doc, "v", (int,), optional=False) not in STATUS_VERSIONS:
        raise StatusDocumentError("v", f"version {doc['v']!r} is not one this region reads")
    hub = _field(doc, "hub", (str,), optional=False)
    if hub != topic_hub:
        raise StatusDocumentError("hub", "names another hub than its topic")
    state = _field(doc, "state", (str,), optional=False)
    if state not in {"online", "offline"}:
        raise StatusDocumentError("state", f"{state!r:.40} is neither online nor offline")
    devices = _field(doc, "devices", (list,), optional=True) or []
    return HubStatus(
        hub,
        state,
        _field(doc, "at_ms", (int,), optional=True),
        _field(doc, "status_seq", (int,), optional=True),
        tuple(_device(i, d) for i, d in enumerate(devices)),
    )


def status_json(status: HubStatus) -> dict[str, Any]:
    """A status as :func:`parse_status` reads it back (tests, and the stored last status)."""
    return {
        "v": 1,
        "hub": status.hub,
        "state": status.state,
        "at_ms": status.at_ms,
        "status_seq": status.status_seq,
        "devices": [
            {
                "slot": d.slot,
                "kind": d.kind,
                "connected": d.connected,
                "battery_percent": d.battery_percent,
            }
            for d in status.devices
        ],
    }


# -- the facts as loaded for judging ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatteryFacts:
    """A device slot's battery: its level, and when (ingestion) that level was first reported."""

    slot: int
    kind: str
    percent: int
    since_ms: int


@dataclass(frozen=True, slots=True)
class HubFacts:
    """A hub as the region last heard it. ``last_contact_ms``: the last batch or live status
    (ingestion time); ``state``: its last status (``online``/``offline``)."""

    hub: str
    last_contact_ms: int | None
    state: str | None
    batteries: tuple[BatteryFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """A device of a hub as its readings showed it: last reading's ingestion time; the last
    clock read (offset s, and its identity) when it reported one."""

    hub: str
    device: str
    board: bool
    last_received_ms: int
    clock_offset_s: int | None = None
    clock_read: str | None = None
    clock_received_ms: int | None = None


@dataclass(frozen=True, slots=True)
class LatestFacts:
    """A patient's newest reading of one code, and the alert run it is in (if alerted): the
    first alerted reading since the last one that was not (key, effective and ingestion)."""

    patient: str
    mdc_code: int
    t_ms: int
    received_ms: int
    alert_key: str | None = None
    alert_t_ms: int | None = None
    alert_received_ms: int | None = None


@dataclass(frozen=True, slots=True)
class HeldFacts:
    """Readings of a hub held unattributed: how many, and the first one's ingestion time."""

    hub: str
    count: int
    first_held_ms: int
