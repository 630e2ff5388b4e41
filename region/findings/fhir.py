"""Findings as FHIR R4 resources the region's systems can read (pure).

Which resource, and why (docs/region.md, "Findings as FHIR"):

* **DetectedIssue** (FHIR R4 DetectedIssue: "an actual or potential clinical issue with or
  between one or more active or proposed clinical actions for a patient") for what the data
  themselves show: an **alert reading** (severity high, the patient, the device implicated)
  and a **device clock off** (severity low: a data-quality issue; the hub already stamps the
  readings right). ``status`` is ``preliminary`` while the condition lasts and ``final``
  once it ended; an acknowledgement is a ``mitigation`` (action, date, author), which is
  what DetectedIssue offers to record that a person dealt with it.
* **Task** (FHIR R4 Task: "a task to be performed") for what someone must do: a **missed
  measurement** (follow the patient up), a **silent hub**, a **device not seen**, a **low
  battery**, **readings held unattributed** (enrol the hub). Its lifecycle is the finding's:
  ``requested`` when it opens, ``accepted`` with an ``owner`` when a person acknowledges it,
  ``completed`` when the condition ends (``statusReason`` says it ended by itself);
  ``executionPeriod`` spans the condition.
* **Flag** is not used: it has no element for the data a finding rests on nor for an
  acknowledgement, and every finding already has a resource. **Communication** is not used:
  it records a message that was sent, and narhub sends none (a region that pages its staff
  records its pages as Communications that reference these resources).

Each resource is identified by ``urn:narhub:finding|{id}``; the logical id is
``finding-{id}``; a changed finding is written again with the same id (the last line wins,
as for Devices). Patients are referenced by identifier, devices by their Device ids
(:mod:`protocols.fhir.identity`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from protocols.fhir.codes import BTMAC_SYSTEM
from protocols.fhir.identity import DEVICE_SYSTEM, HUB_SYSTEM, device_id, eui48, gateway_id, is_mac
from region.findings.facts import patient_of
from region.findings.model import Finding, Kind

FINDING_SYSTEM = "urn:narhub:finding"
KIND_SYSTEM = "urn:narhub:finding-kind"
USER_SYSTEM = "urn:narhub:user"
SERVICE_IDENTIFIER = {"system": "urn:narhub:service", "value": "region-findings"}

DISPLAY = {
    Kind.ALERT: "Alert reading",
    Kind.MISSED: "Missed measurement",
    Kind.HUB_SILENT: "Hub silent",
    Kind.HELD: "Readings held unattributed",
    Kind.BATTERY_LOW: "Battery low",
    Kind.DEVICE_UNSEEN: "Device not seen",
    Kind.CLOCK_OFF: "Device clock off",
}
#: The findings written as DetectedIssue (the others are Tasks).
DETECTED_ISSUES = frozenset({Kind.ALERT, Kind.CLOCK_OFF})


def instant(t_ms: int) -> str:
    """Epoch ms as a FHIR instant (UTC, milliseconds when there are any)."""
    moment = dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC)
    spec = "seconds" if t_ms % 1000 == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _code(kind: Kind) -> dict[str, Any]:
    return {
        "coding": [{"system": KIND_SYSTEM, "code": kind.value, "display": DISPLAY[kind]}],
        "text": DISPLAY[kind],
    }


def _user(who: str) -> dict[str, Any]:
    return {"type": "Practitioner", "identifier": {"system": USER_SYSTEM, "value": who}}


def _device_reference(finding: Finding) -> dict[str, Any]:
    device = finding.device
    if device is None or device.startswith("slot:") or device == "sensor-board":
        hub = {"system": HUB_SYSTEM, "value": finding.hub}
        return {"reference": f"Device/{gateway_id(finding.hub)}", "identifier": hub}
    system = BTMAC_SYSTEM if is_mac(device) else DEVICE_SYSTEM
    identifier = {"system": system, "value": eui48(device) if is_mac(device) else device}
    return {"reference": f"Device/{device_id(device)}", "identifier": identifier}


def describe(finding: Finding) -> str:
    """One line that says what the finding is (no values: those are in the Observations)."""
    d = finding.detail
    if finding.kind is Kind.MISSED:
        return f"No {d.get('measure')} in its window ({d.get('windows', 1)} in a row)"
    if finding.kind is Kind.HUB_SILENT:
        return f"No batch or status from hub {finding.hub}"
    if finding.kind is Kind.BATTERY_LOW:
        return f"Battery of the {d.get('kind')} (slot {d.get('slot')}) at {d.get('percent')} %"
    if finding.kind is Kind.DEVICE_UNSEEN:
        return f"No reading from {finding.device} of hub {finding.hub}"
    if finding.kind is Kind.HELD:
        return f"{d.get('count')} readings of hub {finding.hub} held: no enrolment covers them"
    if finding.kind is Kind.CLOCK_OFF:
        return f"Clock of {finding.device} off by {d.get('offset_s')} s"
    return f"Reading of MDC {d.get('mdc_code')} crossed the care team's threshold"


def _base(finding: Finding, resource_type: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": resource_type,
        "id": f"finding-{finding.id}",
        "identifier": [{"system": FINDING_SYSTEM, "value": str(finding.id)}],
    }
    return resource


def detected_issue(finding: Finding) -> dict[str, Any]:
    """An alert reading or a device clock off as a DetectedIssue."""
    resource = _base(finding, "DetectedIssue")
    resource["status"] = "preliminary" if finding.open else "final"
    resource["code"] = _code(finding.kind)
    resource["severity"] = "high" if finding.kind is Kind.ALERT else "low"
    if finding.patient is not None:
        resource["patient"] = patient_of(finding.patient).reference()
    resource["identifiedDateTime"] = instant(finding.opened_ms)
    resource["author"] = {"type": "Device", "identifier": SERVICE_IDENTIFIER}
    resource["implicated"] = [_device_reference(finding)]
    detail = describe(finding)
    if finding.closed_ms is not None:
        detail += f"; ended {instant(finding.closed_ms)}"
    resource["detail"] = detail
    if finding.ack_by is not None and finding.ack_ms is not None:
        resource["mitigation"] = [
            {
                "action": {"text": "acknowledged"},
                "date": instant(finding.ack_ms),
                "author": _user(finding.ack_by),
            }
        ]
    return resource


def task(finding: Finding) -> dict[str, Any]:
    """A finding someone must act on as a Task."""
    resource = _base(finding, "Task")
    if finding.closed_ms is not None:
        resource["status"] = "completed"
        resource["statusReason"] = {"text": "the condition ended"}
    elif finding.ack_by is not None:
        resource["status"] = "accepted"
    else:
        resource["status"] = "requested"
    resource["intent"] = "proposal"
    resource["priority"] = "asap" if finding.kind in {Kind.MISSED, Kind.HUB_SILENT} else "routine"
    resource["code"] = _code(finding.kind)
    resource["description"] = describe(finding)
    resource["focus"] = _device_reference(finding)
    if finding.patient is not None:
        resource["for"] = patient_of(finding.patient).reference()
    resource["authoredOn"] = instant(finding.opened_ms)
    changed = max(t for t in (finding.opened_ms, finding.ack_ms, finding.closed_ms) if t)
    resource["lastModified"] = instant(changed)
    period = {"start": instant(finding.opened_ms)}
    if finding.closed_ms is not None:
        period["end"] = instant(finding.closed_ms)
    resource["executionPeriod"] = period
    if finding.ack_by is not None:
        resource["owner"] = _user(finding.ack_by)
    return resource


def resource(finding: Finding) -> dict[str, Any]:
    """The finding's resource: a DetectedIssue or a Task (see the module docstring)."""
    return detected_issue(finding) if finding.kind in DETECTED_ISSUES else task(finding)
