"""Bit-field (ACOM compound state/event) observations as PhdBitsEnumerationObservation.

PHD IG 2.0.0 (``HL7/phd`` tag 2.0.0, commit 5af8412f26a40456084790f8d23a822f04f469ae):

* ``input/fsh/StructureDefinition.PhdBitsEnumerationObservation.fsh``: no ``value[x]``; one
  ``component[bitsComponent]`` per reported bit, its ``code`` from the value set
  ASN1MeasurementBits (**required** binding), its value a ``valueBoolean`` (or the
  ``dataAbsentReason`` "unsupported"). The mapping section: the code is "Observation.type +
  '.' + MDER bit number (ASN1ToHL7 code)", the value the bit.
* ``input/pagecontent/DIMtoFHIRMapping.md``: an event bit is reported only when set; a
  supported state bit is reported set or cleared.
* ``input/fsh/CodeSystem.ASN1ToHL7.fsh`` (system ``http://terminology.hl7.org/CodeSystem/
  ASN1ToHL7``) and ``input/fsh/ValueSet.ASN1MeasurementBits.fsh`` (its codes whose source is
  ``measurement``): :data:`MEASUREMENT_BITS` is that value set, copied type by type.

Bit numbers. A GHS value carries the masks and the bits as ``size`` octets, little-endian
(the Bluetooth order, :mod:`protocols.gatt.acom`): bit *n* is ``1 << n`` of that integer.
MDER numbers bits from the most significant one (MDER bit 0 is the high-order bit, the
FSH's comment on the 8418060 example), so MDER bit = ``8 x size - 1 - n``. The same
relation holds between a Bluetooth profile and the ASN.1 bits of its 11073 twin: PLXS 1.0's
Device and Sensor Status bit 0 "Extended Display Update Ongoing" is ASN1ToHL7 150604.15
"device-extended-update", its bit 15 "Sensor Disconnected" is 150604.0
"sensor-disconnected" (tests/test_fhir_bits.py checks every bit). The state/event mask
says per bit whether it is an event (1) or a state (0) (ACOM's state-or-event mask).

A reading claims the profile only when every bit it must report (the supported bits, and
any set bit) has a code in :data:`MEASUREMENT_BITS`: the binding is required, so a bit of a
type the code system does not list cannot be a conforming component. Such a reading keeps
the integer and its masks (no profile), as before; nothing is dropped either way.
"""

from __future__ import annotations

from typing import Any

from protocols.uplink.wire_reading import WireReading

ASN1_TO_HL7_SYSTEM = "http://terminology.hl7.org/CodeSystem/ASN1ToHL7"
SUPPORTED_PREFIX = "bits-supported:0x"
STATE_EVENT_PREFIX = "bits-state-event:0x"
EVENT = "event"
STATE = "state"

#: ValueSet.ASN1MeasurementBits.fsh: measurement type -> MDER bit -> (ASN.1 name, kind),
#: from CodeSystem.ASN1ToHL7.fsh at tag 2.0.0 (the concepts whose source is measurement).
MEASUREMENT_BITS: dict[int, dict[int, tuple[str, str]]] = {
    67846: {
        0: ("lim-alert-off", STATE),
        1: ("lim-low-off", STATE),
        2: ("lim-high-off", STATE),
    },
    150604: {
        0: ("sensor-disconnected", EVENT),
        1: ("sensor-malfunction", EVENT),
        2: ("sensor-displaced", EVENT),
        3: ("sensor-unsupported", EVENT),
        4: ("sensor-off", EVENT),
        5: ("sensor-interference", EVENT),
        6: ("signal-searching", EVENT),
        7: ("signal-pulse-questionable", EVENT),
        8: ("signal-non-pulsatile", EVENT),
        9: ("signal-erratic", EVENT),
        10: ("signal-low-perfusion", EVENT),
        11: ("signal-poor", EVENT),
        12: ("signal-inadequate", EVENT),
        13: ("signal-processing-irregularity", EVENT),
        14: ("device-equipment-malfunction", EVENT),
        15: ("device-extended-update", EVENT),
    },
    150605: {
        0: ("pulse-qual-nominal", EVENT),
        1: ("pulse-qual-marginal", EVENT),
        2: ("pulse-qual-minimal", EVENT),
        3: ("pulse-qual-unacceptable", EVENT),
    },
    8410584: {
        0: ("leadwire-loss", EVENT),
        1: ("leadsignal-loss", EVENT),
        2: ("leadwire-loss-first-lead", EVENT),
        3: ("leadsignal-loss-first-lead", EVENT),
        4: ("leadwire-loss-second-lead", EVENT),
        5: ("leadsignal-loss-second-lead", EVENT),
        6: ("leadwire-loss-third-lead", EVENT),
        7: ("leadsignal-loss-third-lead", EVENT),
    },
    8417752: {
        0: ("device-battery-low", EVENT),
        1: ("sensor-malfunction", EVENT),
        2: ("sensor-sample-size-insufficient", EVENT),
        3: ("sensor-strip-insertion", EVENT),
        4: ("sensor-strip-type-incorrect", EVENT),
        5: ("sensor-result-too-high", EVENT),
        6: ("sensor-result-too-low", EVENT),
        7: ("sensor-temp-too-high", EVENT),
        8: ("sensor-temp-too-low", EVENT),
        9: ("sensor-read-interrupt", EVENT),
        10: ("device-gen-fault", EVENT),
        11: ("sensor-temp-out-of-range", EVENT),
    },
    8417909: {
        0: ("inr-device-battery-low", EVENT),
        1: ("inr-sensor-malfunction", EVENT),
        2: ("inr-sensor-sample-size-insufficient", EVENT),
        3: ("inr-sensor-strip-insertion", EVENT),
        4: ("inr-sensor-strip-type-incorrect", EVENT),
        5: ("inr-sensor-result-too-high", EVENT),
        6: ("inr-sensor-result-too-low", EVENT),
        7: ("inr-sensor-temp-too-high", EVENT),
        8: ("inr-sensor-temp-too-low", EVENT),
        9: ("inr-sensor-read-interrupt", EVENT),
        10: ("inr-device-gen-fault", EVENT),
        11: ("inr-sensor-calibration-due", EVENT),
    },
    8408608: {
        0: ("device-status-undetermined", EVENT),
        1: ("device-status-reset", EVENT),
        5: ("device-status-error", EVENT),
        6: ("device-status-error-mechanical", EVENT),
        7: ("device-status-error-electronic", EVENT),
        8: ("device-status-error-software", EVENT),
        9: ("device-status-error-battery", EVENT),
        15: ("device-status-service", EVENT),
        16: ("device-status-service-time-sync-required", EVENT),
        17: ("device-status-service-calibration-required", EVENT),
        18: ("device-status-service-replenishment-required", EVENT),
        25: ("device-status-battery-low", EVENT),
        26: ("device-status-battery-depleted", EVENT),
        27: ("device-status-battery-replaced", EVENT),
        28: ("device-status-battery-interrupted", EVENT),
    },
    8418060: {
        0: ("sensor-session-stopped", EVENT),
        2: ("sensor-type-incorrect", EVENT),
        3: ("sensor-malfunction", EVENT),
        4: ("device-specific-alert", EVENT),
        7: ("sensor-calibration-not-allowed", EVENT),
        8: ("sensor-calibration-recommended", EVENT),
        9: ("sensor-calibration-required", EVENT),
        10: ("sensor-temp-too-high", EVENT),
        11: ("sensor-temp-too-low", EVENT),
        12: ("sensor-result-below-patient-low", EVENT),
        13: ("sensor-result-above-patient-high", EVENT),
        14: ("sensor-low-hypo", EVENT),
        15: ("sensor-high-hyper", EVENT),
        16: ("sensor-rate-decrease-exceeded", EVENT),
        17: ("sensor-rate-increase-exceeded", EVENT),
        18: ("sensor-result-too-low", EVENT),
        19: ("sensor-result-too-high", EVENT),
        20: ("sensor-com-out-of-range", EVENT),
    },
    8418512: {
        0: ("Battery-status-Undetermined", STATE),
        1: ("Battery-absent", STATE),
        2: ("Battery-active", STATE),
        3: ("Battery-charging", STATE),
        4: ("Battery-fullyCharged", STATE),
        5: ("Battery-disposable", STATE),
        6: ("Battery-rechargeable", STATE),
        7: ("Battery-overTemperature", EVENT),
        8: ("Battery-faulty", EVENT),
        9: ("Battery-incompatible", EVENT),
    },
    8410608: {
        0: ("body-movement", EVENT),
        1: ("cuff-too-loose", EVENT),
        2: ("irregular-pulse", EVENT),
        3: ("pulse-over-range-limit", EVENT),
        4: ("pulse-under-range-limit", EVENT),
        5: ("improper-body-position", EVENT),
    },
}


def _mask(reading: WireReading, prefix: str) -> tuple[int, int] | None:
    """A mask flag's value (little-endian octets) and its size in octets."""
    for flag in reading.flags:
        if flag.startswith(prefix):
            text = flag.removeprefix(prefix)
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                return None
            return int.from_bytes(raw, "little"), len(raw)
    return None


def mder_bit(bit: int, size: int) -> int:
    """The MDER bit number of little-endian bit ``bit`` of a ``size``-octet field."""
    return 8 * size - 1 - bit


def bits_components(reading: WireReading) -> list[dict[str, Any]] | None:
    """The ``component[bitsComponent]`` list of a bit-field reading, or ``None`` when it
    cannot claim PhdBitsEnumerationObservation (not a bit field, or a bit to report that
    ASN1MeasurementBits does not list)."""
    supported = _mask(reading, SUPPORTED_PREFIX)
    kinds = _mask(reading, STATE_EVENT_PREFIX)
    names = MEASUREMENT_BITS.get(reading.mdc_code)
    if supported is None or kinds is None or names is None or reading.value is None:
        return None
    (supported_mask, size), (event_mask, _) = supported, kinds
    value = int(reading.value)
    out: list[tuple[int, dict[str, Any]]] = []
    for bit in range(8 * size):
        is_set = bool(value >> bit & 1)
        if not (supported_mask >> bit & 1 or is_set):
            continue
        is_event = bool(event_mask >> bit & 1)
        if is_event and not is_set:
            continue  # a cleared event bit is not reported
        number = mder_bit(bit, size)
        known = names.get(number)
        if known is None:
            return None
        coding = {
            "system": ASN1_TO_HL7_SYSTEM,
            "code": f"{reading.mdc_code}.{number}",
            "display": known[0],
        }
        out.append((number, {"code": {"coding": [coding]}, "valueBoolean": is_set}))
    return [component for _, component in sorted(out, key=lambda item: item[0])]
