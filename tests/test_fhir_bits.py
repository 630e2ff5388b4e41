"""Bit fields as PhdBitsEnumerationObservation components (protocols/fhir/bits.py).

Source: PHD IG 2.0.0, ``HL7/phd`` tag 2.0.0 (commit 5af8412f26a40456084790f8d23a822f04f469ae):
input/fsh/StructureDefinition.PhdBitsEnumerationObservation.fsh (component code from
ASN1MeasurementBits, required; ``valueBoolean``), input/fsh/CodeSystem.ASN1ToHL7.fsh and
input/fsh/ValueSet.ASN1MeasurementBits.fsh (the codes), input/pagecontent/DIMtoFHIRMapping.md
(events only when set, supported states set or cleared).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.fhir.bits import MEASUREMENT_BITS, bits_components, mder_bit
from protocols.gatt.plx import PlxDeviceAndSensorStatus
from protocols.uplink.wire_reading import WireReading

#: Lines of CodeSystem.ASN1ToHL7.fsh (tag 2.0.0), code -> name, copied by hand as vectors.
FSH_LINES = {
    "150604.0": "sensor-disconnected",
    "150604.15": "device-extended-update",
    "8417752.0": "device-battery-low",
    "8418060.3": "sensor-malfunction",
    "8418060.4": "device-specific-alert",
    "8418060.20": "sensor-com-out-of-range",
    "8408608.28": "device-status-battery-interrupted",
}
#: PLXS 1.0 Device and Sensor Status bit (little-endian) -> the ASN1ToHL7 150604 name of the
#: same condition: the Bluetooth bit n is MDER bit 15 - n.
PLX_TWINS = {
    PlxDeviceAndSensorStatus.EXTENDED_DISPLAY_UPDATE_ONGOING: "device-extended-update",
    PlxDeviceAndSensorStatus.EQUIPMENT_MALFUNCTION_DETECTED: "device-equipment-malfunction",
    PlxDeviceAndSensorStatus.SIGNAL_PROCESSING_IRREGULARITY_DETECTED: (
        "signal-processing-irregularity"
    ),
    PlxDeviceAndSensorStatus.INADEQUATE_SIGNAL_DETECTED: "signal-inadequate",
    PlxDeviceAndSensorStatus.POOR_SIGNAL_DETECTED: "signal-poor",
    PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED: "signal-low-perfusion",
    PlxDeviceAndSensorStatus.ERRATIC_SIGNAL_DETECTED: "signal-erratic",
    PlxDeviceAndSensorStatus.NONPULSATILE_SIGNAL_DETECTED: "signal-non-pulsatile",
    PlxDeviceAndSensorStatus.QUESTIONABLE_PULSE_DETECTED: "signal-pulse-questionable",
    PlxDeviceAndSensorStatus.SIGNAL_ANALYSIS_ONGOING: "signal-searching",
    PlxDeviceAndSensorStatus.SENSOR_INTERFERENCE_DETECTED: "sensor-interference",
    PlxDeviceAndSensorStatus.SENSOR_UNCONNECTED_TO_USER: "sensor-off",
    PlxDeviceAndSensorStatus.UNKNOWN_SENSOR_CONNECTED: "sensor-unsupported",
    PlxDeviceAndSensorStatus.SENSOR_DISPLACED: "sensor-displaced",
    PlxDeviceAndSensorStatus.SENSOR_MALFUNCTIONING: "sensor-malfunction",
    PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED: "sensor-disconnected",
}


def _reading(code: int, supported: int, events: int, value: int, size: int = 2) -> WireReading:
    def hexed(x: int) -> str:
        return x.to_bytes(size, "little").hex()

    flags = frozenset(
        {f"bits-supported:0x{hexed(supported)}", f"bits-state-event:0x{hexed(events)}"}
    )
    return WireReading("clinical", code, "1", 0, Decimal(value), flags=flags, device="ghs")


def test_the_table_is_the_value_set() -> None:
    codes = {
        f"{t}.{b}": name for t, bits in MEASUREMENT_BITS.items() for b, (name, _) in bits.items()
    }
    assert len(codes) == 104  # the measurement-source concepts of ASN1ToHL7 at 2.0.0
    for code, name in FSH_LINES.items():
        assert codes[code] == name


def test_plx_status_bits_are_their_asn1_twins_reversed() -> None:
    names = MEASUREMENT_BITS[150604]
    for flag, name in PLX_TWINS.items():
        bit = int(flag).bit_length() - 1
        assert names[mder_bit(bit, 2)][0] == name


def test_events_only_when_set_states_both_ways() -> None:
    # 8418512 (battery status): MDER bits 0-3 are states; little-endian bits 15..12.
    reading = _reading(8418512, 0xF000, 0x0000, 0x4000)
    components = bits_components(reading)
    assert components is not None
    assert [(c["code"]["coding"][0]["code"], c["valueBoolean"]) for c in components] == [
        ("8418512.0", False),
        ("8418512.1", True),
        ("8418512.2", False),
        ("8418512.3", False),
    ]
    events = bits_components(_reading(8418060, 0x0018 << 8, 0xFFFF, 0))
    assert events == []  # supported events, none set: nothing to report


def test_a_bit_the_code_system_does_not_name_claims_nothing() -> None:
    # 8418060 has no MDER bit 1; reporting it would break the required binding.
    assert bits_components(_reading(8418060, 1 << 14, 0xFFFF, 1 << 14)) is None
    assert bits_components(_reading(8454999, 1, 1, 1)) is None  # a type it does not list


@pytest.mark.parametrize("size", [1, 2, 4])
def test_mder_bit_reverses_within_the_field(size: int) -> None:
    assert sorted(mder_bit(b, size) for b in range(8 * size)) == list(range(8 * size))
    assert mder_bit(0, size) == 8 * size - 1


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_every_reported_bit_is_a_listed_code_with_its_value(
    supported: int, events: int, value: int
) -> None:
    components = bits_components(_reading(150604, supported, events, value))
    assert components is not None  # 150604 names all 16 bits
    for c in components:
        type_code, _, bit = c["code"]["coding"][0]["code"].partition(".")
        little = 15 - int(bit)
        assert type_code == "150604"
        assert c["valueBoolean"] == bool(value >> little & 1)
        assert supported >> little & 1 or value >> little & 1
        assert c["valueBoolean"] or not events >> little & 1
