"""Readings to HL7 FHIR R4 resources, as the Personal Health Device IG 2.0.0 (STU2) asks.

Pure mapping (no I/O, no clock). The IG's source is the ``HL7/phd`` repository at tag 2.0.0;
each module names the StructureDefinitions (FSH) whose required elements it fills:

* :mod:`protocols.fhir.codes`: code systems, profile URLs, MDC codes, specializations;
* :mod:`protocols.fhir.identity`: patient and device references, logical ids, the IG's
  conditional-create identifier;
* :mod:`protocols.fhir.devices`: PhdDevice and PhgDevice;
* :mod:`protocols.fhir.observations`: numeric, coded, compound and coincident time stamp
  Observations;
* :mod:`protocols.fhir.batch`: a batch of filed readings to its resources;
* :mod:`protocols.fhir.exact_json`: JSON text that keeps every decimal's digits.
"""

from protocols.fhir.batch import BatchResources, Filed, batch_resources
from protocols.fhir.devices import DeviceDescription, describe
from protocols.fhir.exact_json import content_hash, dumps_exact
from protocols.fhir.identity import PatientRef
from protocols.fhir.observations import is_measurement

__all__ = [
    "BatchResources",
    "DeviceDescription",
    "Filed",
    "PatientRef",
    "batch_resources",
    "content_hash",
    "describe",
    "dumps_exact",
    "is_measurement",
]
