"""Device resources: a PhdDevice per personal health device, a PhgDevice per hub.

Required elements from the PHD IG 2.0.0 (``HL7/phd``, tag 2.0.0):

* ``input/fsh/StructureDefinition.PhdDevice.fsh``: ``identifier`` 1.. (slice
  ``btmacAddressIdentifier``: type ContinuaDeviceIdentifiers#BTMAC, system
  ``http://hl7.org/fhir/sid/eui-48/bluetooth``, value ``00-1C-05-FF-E8-74``),
  ``manufacturer`` 1.., ``modelNumber`` 1.., ``type.coding[PhdCode]`` = MDC 65573,
  ``specialization`` 1.. (``systemType.coding`` from DeviceTypes11073MDC, ``version`` 1..),
  ``version[MDCType]`` 1..* (type from MDCDeviceVersionTypes).
* the same file's ``identifier[systemIdIdentifier]`` slice (0..1): type
  ContinuaDeviceIdentifiers#SYSID, system ``urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680``
  (exactly), value the EUI-64 as 8 capital hex bytes with dashes (``FE-ED-AB-EE-DE-AD-77-C3``,
  ``input/intro-notes/StructureDefinition-PhdDevice-notes.md``; the IG's example
  ``input/examples/phd-74E8FFFEFF051C00.001C05FFE874.json`` lists it before the BTMAC
  identifier). narhub writes it when the device's DIS System ID (0x2A23) was read, after the
  Bluetooth address: the first identifier is what a FHIR server's conditional create keys
  on (:mod:`region.fhir_post`), and the address is known from the first batch on.
* ``input/fsh/StructureDefinition.PhgDevice.fsh``: ``identifier`` 1.., ``type.coding[MDCType]``
  = MDC 531981, ``specialization[MDCType]`` 1..*, ``version[MDCType]`` 1..*.

A device is described by what its hub reported (Device Information readings,
:mod:`protocols.uplink.device_facts`) and by what it measures (its specializations). Only a
Device with every element PhdDevice requires claims the profile (``meta.profile``); a device
that reported no Device Information (a sensor board, a device without DIS) gets a plain Device.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from protocols.fhir import codes as c
from protocols.fhir.identity import (
    DEVICE_SYSTEM,
    HUB_DEVICE,
    HUB_SYSTEM,
    device_id,
    eui48,
    gateway_id,
    is_mac,
)
from protocols.uplink.device_facts import (
    MDC_ATTR_SYS_ID,
    MDC_ID_MODEL_MANUFACTURER,
    MDC_ID_MODEL_NUMBER,
    MDC_ID_PROD_SPEC_FW,
    MDC_ID_PROD_SPEC_HW,
    MDC_ID_PROD_SPEC_SERIAL,
    MDC_ID_PROD_SPEC_SW,
    is_device_info,
    is_eui64,
)
from protocols.uplink.wire_reading import WireReading

#: Device-information code -> the description's field.
_FIELD_OF = {
    MDC_ID_MODEL_MANUFACTURER: "manufacturer",
    MDC_ID_MODEL_NUMBER: "model",
    MDC_ID_PROD_SPEC_SERIAL: "serial",
    MDC_ID_PROD_SPEC_HW: "hardware",
    MDC_ID_PROD_SPEC_FW: "firmware",
    MDC_ID_PROD_SPEC_SW: "software",
    MDC_ATTR_SYS_ID: "system_id",
}
#: PhdDevice ``identifier[systemIdIdentifier].system``: an IEEE EUI-64.
EUI64_SYSTEM = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
_VERSIONS = (
    ("firmware", c.MDC_ID_PROD_SPEC_FW, "Firmware revision"),
    ("software", c.MDC_ID_PROD_SPEC_SW, "Software revision"),
    ("hardware", c.MDC_ID_PROD_SPEC_HW, "Hardware revision"),
)
#: What the gateway Device says it specializes in: every device kind narhub maps.
GATEWAY_SPECIALIZATIONS = tuple(sorted(c.SPECIALIZATION_NAMES))


@dataclass(frozen=True, slots=True)
class DeviceDescription:
    """What the region knows about one device, by the name its hub gives it."""

    device: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    hardware: str | None = None
    firmware: str | None = None
    software: str | None = None
    specializations: tuple[int, ...] = field(default=())
    #: The DIS System ID as an EUI-64 (``12-34-56-FF-FE-9A-BC-DE``).
    system_id: str | None = None

    def merged(self, newer: DeviceDescription) -> DeviceDescription:
        """This description updated by a newer one: its strings win, specializations add up."""
        changes: dict[str, Any] = {
            name: value
            for name in _FIELD_OF.values()
            if (value := getattr(newer, name)) is not None
        }
        changes["specializations"] = tuple(
            sorted(set(self.specializations) | set(newer.specializations))
        )
        return replace(self, **changes)

    @property
    def is_phd(self) -> bool:
        """Whether its Device resource meets PhdDevice (identifier, manufacturer, model,
        a specialization and a version are all required)."""
        has_version = any(getattr(self, name) for name, _, _ in _VERSIONS)
        return bool(
            is_mac(self.device)
            and self.manufacturer
            and self.model
            and self.specializations
            and has_version
        )

    def to_json(self) -> str:
        """The description as JSON text (for a registry)."""
        data = asdict(self)
        data["specializations"] = list(self.specializations)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DeviceDescription:
        """A description from :meth:`to_json`."""
        data = json.loads(text)
        data["specializations"] = tuple(int(s) for s in data.get("specializations", ()))
        return cls(**data)


def describe(readings: Iterable[WireReading]) -> dict[str, DeviceDescription]:
    """What a batch's readings say about their devices: Device Information readings (the last
    of each attribute wins) and the specializations of the codes measured."""
    out: dict[str, DeviceDescription] = {}
    for r in readings:
        if r.device == HUB_DEVICE:
            continue
        known = out.get(r.device) or DeviceDescription(r.device)
        if is_device_info(r) and r.special:
            if r.mdc_code == MDC_ATTR_SYS_ID and not is_eui64(r.special):
                continue  # not an EUI-64 (a hub's defect): no identifier rather than a wrong one
            known = _with_text(known, _FIELD_OF[r.mdc_code], r.special)
        elif (spec := c.SPECIALIZATION_OF.get(r.mdc_code)) is not None and (
            spec not in known.specializations
        ):
            known = replace(known, specializations=tuple(sorted((*known.specializations, spec))))
        out[r.device] = known
    return out


def _with_text(description: DeviceDescription, name: str, text: str) -> DeviceDescription:
    changes: dict[str, Any] = {name: text}
    return replace(description, **changes)


def _mdc(code: int, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": c.MDC_SYSTEM, "code": str(code)}
    if display is not None:
        coding["display"] = display
    return coding


def _specialization(code: int) -> dict[str, Any]:
    return {
        "systemType": {"coding": [_mdc(code, c.SPECIALIZATION_NAMES.get(code))]},
        "version": c.SPECIALIZATION_VERSION,
    }


def device_resource(description: DeviceDescription) -> dict[str, Any]:
    """The Device of a personal health device or board: PhdDevice when it meets it."""
    d = description
    resource: dict[str, Any] = {"resourceType": "Device", "id": device_id(d.device)}
    if d.is_phd:
        resource["meta"] = {"profile": [c.PHD_DEVICE]}
    if is_mac(d.device):
        identifier = {
            "type": {"coding": [{"system": c.CONTINUA_IDENTIFIERS, "code": "BTMAC"}]},
            "system": c.BTMAC_SYSTEM,
            "value": eui48(d.device),
        }
    else:
        identifier = {"system": DEVICE_SYSTEM, "value": d.device}
    resource["identifier"] = [identifier]
    if d.system_id:
        resource["identifier"].append(
            {
                "type": {"coding": [{"system": c.CONTINUA_IDENTIFIERS, "code": "SYSID"}]},
                "system": EUI64_SYSTEM,
                "value": d.system_id,
            }
        )
    if d.manufacturer:
        resource["manufacturer"] = d.manufacturer
    if d.serial:
        resource["serialNumber"] = d.serial
    if d.model:
        resource["modelNumber"] = d.model
    if is_mac(d.device):
        resource["type"] = {"coding": [_mdc(c.MDC_MOC_VMS_MDS_SIMP, "MDC_MOC_VMS_MDS_SIMP")]}
    else:
        resource["type"] = {"text": "narhub sensor board"}
    if d.specializations:
        resource["specialization"] = [_specialization(s) for s in d.specializations]
    versions = [
        {
            "type": {"coding": [_mdc(code, c.VERSION_NAMES[code])], "text": text},
            "value": value,
        }
        for name, code, text in _VERSIONS
        if (value := getattr(d, name))
    ]
    if versions:
        resource["version"] = versions
    return resource


def gateway_resource(hub_id: str, format_version: int) -> dict[str, Any]:
    """The hub as a PhgDevice: identified by its hub id (the region CA's subject CN), the
    specializations narhub maps, and the uplink format it spoke as its protocol version."""
    return {
        "resourceType": "Device",
        "id": gateway_id(hub_id),
        "meta": {"profile": [c.PHG_DEVICE]},
        "identifier": [{"system": HUB_SYSTEM, "value": hub_id}],
        "manufacturer": "narhub",
        "modelNumber": "narhub hub",
        "type": {
            "coding": [_mdc(c.MDC_MOC_VMS_MDS_AHD, "MDC_MOC_VMS_MDS_AHD")],
            "text": "Personal health gateway",
        },
        "specialization": [_specialization(s) for s in GATEWAY_SPECIALIZATIONS],
        "version": [
            {
                "type": {
                    "coding": [
                        _mdc(
                            c.MDC_ID_PROD_SPEC_PROTOCOL,
                            c.VERSION_NAMES[c.MDC_ID_PROD_SPEC_PROTOCOL],
                        )
                    ]
                },
                "value": f"narhub uplink format {format_version}",
            }
        ],
    }


def description_digest(resource: dict[str, Any]) -> str:
    """A short digest of a Device's content: a changed description is written again."""
    text = json.dumps(resource, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
