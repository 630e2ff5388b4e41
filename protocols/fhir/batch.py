"""A batch's readings, each filed to a patient, as FHIR resources (pure).

:func:`batch_resources` makes, in order:

* the **Patients** the readings are filed to (:func:`patient_resource`: the pseudonymous
  identifier only, no name), which the Observations' ``subject`` references;
* the **Devices**: the hub's gateway (PhgDevice) and each device the readings came from
  (PhdDevice when described enough, :mod:`protocols.fhir.devices`);
* the **coincident time stamps**: one per session clock read named by a time-stamped
  reading (:mod:`protocols.uplink.device_facts`), the same resource whichever reading names it;
* the **Observations**: one per reading, except the components of one measurement (flag
  ``component-of:{code}``: blood pressure's systolic, diastolic and mean), which become one
  compound Observation, or components of the reading of that code when there is one (a CGM
  glucose and its trend: :func:`group`).

Device Information readings become part of a Device (:func:`protocols.fhir.devices.describe`),
never an Observation. A reading filed to no patient is the hub's own (device ``hub``: its
store's tombstones): its subject and device are the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.fhir import codes as c
from protocols.fhir.devices import DeviceDescription, device_resource, gateway_resource
from protocols.fhir.identity import (
    HUB_DEVICE,
    PatientRef,
    coincident_time_stamp_id,
    conditional_create_value,
    device_id,
    gateway_id,
    narhub_value,
    observation_id,
    patient_id,
    phd_time_stamp,
    reading_identity,
    uri_identifier,
)
from protocols.fhir.observations import (
    Context,
    coincident_time_stamp,
    compound_observation,
    observation,
)
from protocols.uplink.device_facts import ClockRead, clock_read, is_device_info
from protocols.uplink.wire_reading import WireReading

#: The flag of a reading that is a component of a compound measurement.
COMPONENT_PREFIX = "component-of:"
#: The components a compound measurement has at least (blood pressure: systolic and diastolic;
#: BLS 1.1 3.1 mandates all three, narhub leaves out a mean the device says it did not give).
REQUIRED_COMPONENTS: dict[int, frozenset[int]] = {150020: frozenset({150021, 150022})}
#: A time stamp the hub found implausible: the reading's time is its reception, not the stamp.
_SUSPECT_TIME = "device-time-suspect"


@dataclass(frozen=True, slots=True)
class Filed:
    """A reading and the patient it is filed to (``None``: the hub's own reading)."""

    reading: WireReading
    patient: PatientRef | None


@dataclass
class BatchResources:
    """The resources of a batch, each list in order, each resource once."""

    devices: list[dict[str, Any]] = field(default_factory=list)
    time_stamps: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    patients: list[dict[str, Any]] = field(default_factory=list)
    #: By position in :attr:`observations`: an Observation under the PHD IG's identifier as
    #: it is under narhub's identifier alone, for when the IG's identifier already names
    #: another reading (:func:`region.state.resolve` decides; two observations of a batch
    #: may even name the same IG identifier).
    alternates: dict[int, dict[str, Any]] = field(default_factory=dict)

    def all(self) -> list[dict[str, Any]]:
        """Every resource, referenced ones first."""
        return [*self.patients, *self.devices, *self.time_stamps, *self.observations]


def patient_resource(patient: PatientRef) -> dict[str, Any]:
    """The Patient a reading is filed to: its pseudonymous identifier (system and value) and
    nothing else (FHIR R4 Patient: every element is optional; no name, no birth date). A
    FHIR server gets it as a conditional create on that identifier
    (:func:`region.fhir_post.transaction_bundle`), so it is one Patient however often sent."""
    return {
        "resourceType": "Patient",
        "id": patient_id(patient),
        "identifier": [{"system": patient.system, "value": patient.value}],
    }


def subject_reference(patient: PatientRef) -> dict[str, Any]:
    """``Observation.subject``: the Patient resource of the batch (``Patient/{id}``, which a
    transaction Bundle rewrites to that entry's ``fullUrl``) with its identifier, so the
    reference stays meaningful where the Patient resource is not (FHIR R4 "Reference": a
    literal reference and a logical one may both be given)."""
    return {"reference": f"Patient/{patient_id(patient)}", **patient.reference()}


def _compound_of(reading: WireReading) -> int | None:
    for flag in reading.flags:
        if flag.startswith(COMPONENT_PREFIX):
            try:
                return int(flag.removeprefix(COMPONENT_PREFIX))
            except ValueError:
                return None
    return None


def _stamp_trusted(reading: WireReading) -> bool:
    """Whether the reading's time is its PHD time stamp corrected by the session's clock
    offset (a stamp the hub found implausible may have been replaced by the reception time,
    so the PHD's stamp cannot be recovered from it)."""
    return _SUSPECT_TIME not in reading.flags


def group(filed: Sequence[Filed]) -> list[list[Filed]]:
    """Readings in order, the components of one measurement together (same device, time,
    patient and compound code; the n-th of each component code with the n-th of the others).

    A component whose compound code is the code of a reading of the same device, time and
    patient (a CGM glucose and its trend) joins that reading's group, after it: one
    Observation with a value and components. Device Information readings are left out."""
    groups: list[list[Filed]] = []
    open_groups: dict[tuple[Any, ...], list[list[Filed]]] = {}
    parents: dict[tuple[Any, ...], list[Filed]] = {}
    for item in filed:
        r = item.reading
        if is_device_info(r):
            continue
        compound = _compound_of(r)
        if compound is None:
            single = [item]
            groups.append(single)
            parents.setdefault((r.device, r.t_ms, r.mdc_code, item.patient), single)
            continue
        key = (r.device, r.t_ms, compound, item.patient)
        parent = parents.get(key)
        if parent is not None and all(x.reading.mdc_code != r.mdc_code for x in parent[1:]):
            parent.append(item)
            continue
        candidates = open_groups.setdefault(key, [])
        target = next(
            (g for g in candidates if all(x.reading.mdc_code != r.mdc_code for x in g)), None
        )
        if target is None:
            target = []
            candidates.append(target)
            groups.append(target)
        target.append(item)
    return groups


class _Builder:
    """Accumulates one batch's resources (ids once, occurrences of equal readings)."""

    def __init__(
        self, hub_id: str, format_version: int, devices: Mapping[str, DeviceDescription]
    ) -> None:
        self.hub_id = hub_id
        self.descriptions = devices
        self.gateway = {"reference": f"Device/{gateway_id(hub_id)}"}
        self.out = BatchResources(devices=[gateway_resource(hub_id, format_version)])
        self._device_ids: set[str] = set()
        self._patients: set[PatientRef] = set()
        self._stamps: set[str] = set()
        #: Occurrences of equal readings (narhub's identifiers) in the batch.
        self._seen: dict[str, int] = {}

    def _device(self, name: str) -> tuple[dict[str, Any], bool]:
        """The reference to a device's Device (added once) and whether it is a PhdDevice."""
        if name == HUB_DEVICE:
            return self.gateway, False
        description = self.descriptions.get(name) or DeviceDescription(name)
        if name not in self._device_ids:
            self._device_ids.add(name)
            self.out.devices.append(device_resource(description))
        return {"reference": f"Device/{device_id(name)}"}, description.is_phd

    def _patient(self, patient: PatientRef) -> dict[str, Any]:
        """The subject reference to a patient's Patient (added once)."""
        if patient not in self._patients:
            self._patients.add(patient)
            self.out.patients.append(patient_resource(patient))
        return subject_reference(patient)

    def _time_stamp(self, device: str, clock: ClockRead, ref: dict[str, Any], phd: bool) -> str:
        stamp_id = coincident_time_stamp_id(self.hub_id, device, clock.read_ms)
        if stamp_id not in self._stamps:
            self._stamps.add(stamp_id)
            self.out.time_stamps.append(
                coincident_time_stamp(
                    clock, resource_id=stamp_id, device=ref, gateway=self.gateway, phd=phd
                )
            )
        return stamp_id

    def _identifier(
        self, items: list[Filed], code: int, clock: ClockRead | None, whole: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The Observation's identifier, and narhub's identifier beside it when that one is
        the IG's conditional-create identifier (a patient's time-stamped observation).
        narhub's alone for real-time data and for part of a compound measurement (its other
        components came in another batch: the parts must not share one identifier)."""
        first = items[0]
        patient = first.patient
        identity = tuple(part for item in items for part in reading_identity(item.reading))
        key = "|".join(identity) + f"|{patient}"
        occurrence = self._seen.get(key, 0)
        self._seen[key] = occurrence + 1
        narhub = uri_identifier(narhub_value(self.hub_id, identity, patient, occurrence))
        if clock is not None and patient is not None and whole:
            stamp = phd_time_stamp(first.reading.t_ms, clock.offset_s)
            value = conditional_create_value(first.reading.device, patient, code, stamp)
            return {"system": c.CONDITIONAL_CREATE_SYSTEM, "value": value}, narhub
        return narhub, None

    def add(self, items: list[Filed]) -> None:
        first = items[0]
        reading = first.reading
        device_ref, is_phd = self._device(reading.device)
        patient = first.patient
        subject = self.gateway if patient is None else self._patient(patient)
        context = Context(subject, device_ref, self.gateway, is_phd and patient is not None)
        # The session's clock read, referenced by every time-stamped reading of the session
        # (a suspect one too: the offset is how its stamp was judged and corrected).
        clock = clock_read(reading.flags) if reading.device != HUB_DEVICE else None
        stamp_id = (
            None if clock is None else self._time_stamp(reading.device, clock, device_ref, is_phd)
        )
        compound = _compound_of(reading)
        code = compound if compound is not None else reading.mdc_code
        whole = compound is None or REQUIRED_COMPONENTS.get(compound, frozenset()) <= {
            item.reading.mdc_code for item in items
        }
        stamp = clock if _stamp_trusted(reading) else None
        identifier, alias = self._identifier(items, code, stamp, whole)
        resource_id = observation_id(identifier["value"])
        if compound is None:
            resource = observation(
                reading,
                context,
                resource_id=resource_id,
                identifier=identifier,
                time_stamp_id=stamp_id,
                components=[item.reading for item in items[1:]],
            )
        else:
            resource = compound_observation(
                compound,
                [item.reading for item in items],
                context,
                resource_id=resource_id,
                identifier=identifier,
                time_stamp_id=stamp_id,
            )
        if alias is not None:
            resource["identifier"] = [identifier, alias]
            self.out.alternates[len(self.out.observations)] = {
                **resource,
                "id": observation_id(alias["value"]),
                "identifier": [alias],
            }
        self.out.observations.append(resource)


def batch_resources(
    hub_id: str,
    format_version: int,
    filed: Sequence[Filed],
    devices: Mapping[str, DeviceDescription],
) -> BatchResources:
    """The resources of a batch's filed readings; ``devices``: what is known of each device
    (:func:`protocols.fhir.devices.describe`, merged with what earlier batches said)."""
    builder = _Builder(hub_id, format_version, devices)
    for items in group(filed):
        builder.add(items)
    return builder.out
