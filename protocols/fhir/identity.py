"""Who and what a resource names: the patient, the devices, and the identifiers that make a
conditional create idempotent.

Observation identifiers follow the PHD IG 2.0.0 (``HL7/phd``, tag 2.0.0,
``input/intro-notes/StructureDefinition-PhdBaseObservation-notes.md``, "Conditional-create
Identifier", and ``input/pagecontent/GeneratingtheTimeStampPartIdentifier.md``): for an
observation with a PHD time stamp, the identifier in system
:data:`~protocols.fhir.codes.CONDITIONAL_CREATE_SYSTEM` is
``{device}-{patient value}-{patient system}-{type}-{timestamp}``: the device's transport
address as 12 capital hex digits, the patient identifier, the MDC type code in decimal, and the
PHD's own time stamp (not the corrected ``effective[x]``) as seconds since 2000-01-01. The hub
converts a device's local time stamp to UTC in its own zone before the region sees it
(docs/pipeline.md); the region recovers the stamp on that UTC timeline (the corrected time
plus the session's clock offset), so the seconds count from 2000-01-01T00:00:00Z.

The IG recommends no such identifier for a real-time observation (no PHD time stamp: a pulse
oximeter's continuous stream, RR intervals): those get a narhub identifier instead, a UUIDv5
(RFC 9562 section 5.5) over the hub, device, stream, code, time, exact value, patient and
the occurrence of equal readings in one batch, in system ``urn:ietf:rfc:3986``. Either way the
same reading attributed to the same patient always gets the same identifier. Two different
readings never share narhub's; they can share the IG's (two measurements in one stamp of a
device clock that keeps whole minutes), so an Observation under the IG's identifier carries
narhub's too, and the region writes the second of two such readings under narhub's alone
(``region.state.resolve``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from protocols.fhir.codes import URI_SYSTEM
from protocols.uplink.wire_reading import WireReading

#: Namespace for narhub's deterministic identifiers (UUIDv5).
IDENTIFIER_NAMESPACE = uuid.UUID("4d2f6a3e-3f0c-5b7e-9a51-6e6172687562")
#: Identifier system of devices that have no Bluetooth address (sensor boards).
DEVICE_SYSTEM = "urn:narhub:device"
#: Identifier system of the hubs (the region CA's subject CN).
HUB_SYSTEM = "urn:narhub:hub"
#: The device name the hub gives its own readings (store tombstones, telemetry).
HUB_DEVICE = "hub"
#: 2000-01-01T00:00:00Z in epoch seconds: the IG's time stamp epoch.
EPOCH_2000_S = 946_684_800

_MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_FHIR_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class PatientRef:
    """A patient as the region knows one: a pseudonymous identifier, never a name."""

    system: str
    value: str

    def reference(self) -> dict[str, Any]:
        """``Observation.subject``: a logical reference by identifier (FHIR R4 "Reference")."""
        return {"type": "Patient", "identifier": {"system": self.system, "value": self.value}}

    @property
    def identifier_part(self) -> str:
        """The patient entry of the IG's conditional-create identifier."""
        return f"{self.value}-{self.system}"


def is_mac(device: str) -> bool:
    """True for a Bluetooth device address as the hub writes one (``AA:BB:CC:DD:EE:FF``)."""
    return _MAC.match(device) is not None


def device_part(device: str) -> str:
    """The device entry of the IG's identifier: a Bluetooth address as 12 capital hex
    digits without separators; any other device name (a sensor board's id) as it is."""
    return device.replace(":", "") if is_mac(device) else device


def eui48(device: str) -> str:
    """A Bluetooth address in the IG's EUI-48 form (``00-1C-05-FF-E8-74``)."""
    return device.replace(":", "-")


def _uuid(text: str) -> str:
    return str(uuid.uuid5(IDENTIFIER_NAMESPACE, text))


def fhir_id(prefix: str, name: str) -> str:
    """A FHIR logical id (R4 "id": ``[A-Za-z0-9\\-\\.]{1,64}``) from a prefix and a name; a
    name that does not fit is replaced by its UUIDv5."""
    candidate = f"{prefix}-{name}"
    return candidate if _FHIR_ID.match(candidate) else f"{prefix}-{_uuid(name)}"


def device_id(device: str) -> str:
    """The logical id of a personal health device's (or a board's) Device resource."""
    if is_mac(device):
        return f"phd-{device_part(device)}"
    return fhir_id("dev", device)


def patient_id(patient: PatientRef) -> str:
    """The logical id of the Patient resource of a pseudonym (same pseudonym, same id; no
    name or other identity goes into it)."""
    return _uuid(f"patient|{patient.system}|{patient.value}")


def gateway_id(hub_id: str) -> str:
    """The logical id of a hub's gateway (PhgDevice) Device resource."""
    return fhir_id("phg", hub_id)


def coincident_time_stamp_id(hub_id: str, device: str, read_ms: int) -> str:
    """The logical id of the coincident time stamp of one session's clock read."""
    return _uuid(f"cts|{hub_id}|{device}|{read_ms}")


def phd_time_stamp(t_ms: int, offset_s: int) -> str:
    """The time-stamp entry of the IG's identifier: the PHD's stamp (the corrected time plus
    the clock offset) in seconds since 2000-01-01, milliseconds only when there are any."""
    stamp_ms = t_ms + offset_s * 1000 - EPOCH_2000_S * 1000
    seconds, ms = divmod(stamp_ms, 1000)
    return str(seconds) if ms == 0 else f"{seconds}.{ms:03d}"


def conditional_create_value(device: str, patient: PatientRef, code: int, stamp: str) -> str:
    """The IG's conditional-create identifier value (no duration, no supplemental types:
    narhub's devices report neither)."""
    return f"{device_part(device)}-{patient.identifier_part}-{code}-{stamp}"


def reading_identity(reading: WireReading) -> tuple[str, ...]:
    """What tells two readings of one hub apart: device, stream, code, time, exact value."""
    value = str(reading.value) if reading.value is not None else f"special:{reading.special}"
    return reading.device, reading.stream, str(reading.mdc_code), str(reading.t_ms), value


def narhub_value(
    hub_id: str, identity: tuple[str, ...], patient: PatientRef | None, occurrence: int
) -> str:
    """narhub's identifier value (``urn:uuid:...``) for an observation without a PHD time
    stamp; ``occurrence`` numbers readings equal in all of ``identity`` within a batch."""
    parts = [hub_id, *identity]
    if patient is not None:
        parts.append(patient.identifier_part)
    if occurrence:
        parts.append(f"#{occurrence}")
    return f"urn:uuid:{_uuid('|'.join(parts))}"


def observation_id(identifier_value: str) -> str:
    """The Observation's logical id, derived from its identifier (same identifier, same id)."""
    if identifier_value.startswith("urn:uuid:"):
        return identifier_value.removeprefix("urn:uuid:")
    return _uuid(identifier_value)


def held_key(hub_id: str, reading: WireReading, occurrence: int) -> str:
    """A held (unattributed) reading's key: the same reading held twice is held once."""
    return narhub_value(hub_id, reading_identity(reading), None, occurrence).removeprefix(
        "urn:uuid:"
    )


def uri_identifier(value: str) -> dict[str, str]:
    """An identifier whose value is a URI (``urn:uuid:...``)."""
    return {"system": URI_SYSTEM, "value": value}
