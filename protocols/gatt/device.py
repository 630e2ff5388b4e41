"""Battery Level 0x2A19 (Battery Service 0x180F) and the Device Information Service 0x180A
strings (the wire format; the battery observation is in :mod:`protocols.gatt.mapping.device`).

* Battery Level (GSS 3.27): uint8 percentage 0..100; 101..255 are reserved.
* Device Information strings (DIS 1.1 section 3; GSS ``utf8s``): Manufacturer Name 0x2A29,
  Model Number 0x2A24, Serial Number 0x2A25, Hardware Revision 0x2A27, Firmware Revision 0x2A26,
  Software Revision 0x2A28. ``utf8s`` is not NUL-terminated, but many devices pad with NULs
  (and some add one terminator): trailing NULs are dropped, as every collector does; any
  other invalid UTF-8 is an error. A string runs to the end of the value, so this codec is
  written by hand and registered once per characteristic.
* System ID 0x2A23 (DIS 1.1, "System ID"; GSS "System ID"): 8 bytes, a 40-bit
  manufacturer-defined identifier then the 24-bit IEEE Organizationally Unique Identifier,
  each little-endian. Together they are the device's IEEE EUI-64, OUI first: DIS's example
  is OUI 0x123456 with identifier 0xFFFE9ABCDE (a Bluetooth address 12:34:56:9A:BC:DE with
  FFFE inserted), System ID 0x123456FFFE9ABCDE, on the wire ``DE BC 9A FE FF 56 34 12``.
  Exactly 8 bytes, any value (no value is reserved); hand-written, like the strings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail
from protocols.gatt.generator import slot_constructor
from protocols.gatt.kinds import UInt
from protocols.gatt.numbers import (
    BATTERY_LEVEL,
    FIRMWARE_REVISION,
    HARDWARE_REVISION,
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    SERIAL_NUMBER,
    SOFTWARE_REVISION,
    SYSTEM_ID,
)
from protocols.gatt.registry import REGISTRY, CharacteristicSpec, characteristic
from protocols.gatt.schema import Field, Table

#: DIS string characteristics and their GSS names.
DEVICE_INFORMATION_STRINGS: dict[int, str] = {
    MANUFACTURER_NAME: "Manufacturer Name String",
    MODEL_NUMBER: "Model Number String",
    SERIAL_NUMBER: "Serial Number String",
    HARDWARE_REVISION: "Hardware Revision String",
    FIRMWARE_REVISION: "Firmware Revision String",
    SOFTWARE_REVISION: "Software Revision String",
}

#: Longest attribute value (Core Spec Vol 3 Part F 3.2.9).
_MAX_ATTRIBUTE_SIZE = 512


@characteristic(
    BATTERY_LEVEL,
    "Battery Level",
    gss="3.27 Battery Level",
    service="BAS 1.0 (Battery Level characteristic)",
    table=Table(
        fields=(
            Field(
                "Battery Level",
                UInt(1, maximum=100, reason="battery level {value} % out of range 0..100"),
                "level_percent",
            ),
        )
    ),
)
@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Battery Level 0x2A19 (GSS 3.27): remaining charge in percent."""

    level_percent: int


@dataclass(frozen=True, slots=True)
class DeviceInformationString:
    """One Device Information string characteristic (``characteristic`` says which)."""

    characteristic: int
    value: str

    @property
    def name(self) -> str:
        """The GSS name of the characteristic."""
        return DEVICE_INFORMATION_STRINGS.get(self.characteristic, "Device Information")


_new_device_information_string = slot_constructor(DeviceInformationString)


def decode_device_information_string(characteristic: int, data: bytes) -> DeviceInformationString:
    """Decode a DIS ``utf8s`` value; trailing NUL padding is dropped."""
    name = DEVICE_INFORMATION_STRINGS[characteristic]
    if len(data) > _MAX_ATTRIBUTE_SIZE:
        fail(characteristic, name, f"longer than {_MAX_ATTRIBUTE_SIZE} bytes", _MAX_ATTRIBUTE_SIZE)
    raw = bytes(data).rstrip(b"\x00")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(characteristic, name, f"invalid UTF-8: {exc.reason}", exc.start)
    if "\x00" in text:
        fail(characteristic, name, "NUL inside the string", raw.index(b"\x00"))
    return _new_device_information_string(characteristic, text)


def encode_device_information_string(m: DeviceInformationString) -> bytes:
    """Encode a DIS string (UTF-8, no terminator)."""
    if m.characteristic not in DEVICE_INFORMATION_STRINGS:
        raise EncodeError("Device Information", f"0x{m.characteristic:04X} is not a DIS string")
    data = m.value.encode("utf-8")
    if "\x00" in m.value or len(data) > _MAX_ATTRIBUTE_SIZE:
        raise EncodeError(DEVICE_INFORMATION_STRINGS[m.characteristic], "NUL or too long")
    return data


_SYSTEM_ID_SIZE = 8
_OUI_BITS = 24
_MANUFACTURER_BITS = 40


@dataclass(frozen=True, slots=True)
class SystemId:
    """System ID 0x2A23: the device's EUI-64 as its two DIS fields."""

    #: Manufacturer Identifier (40 bits, the manufacturer's own number for the device).
    manufacturer_identifier: int
    #: Organizationally Unique Identifier (24 bits, assigned by the IEEE).
    organizationally_unique_identifier: int

    @classmethod
    def from_address(cls, address: str) -> SystemId:
        """The System ID DIS 1.1 ("System ID") derives from a public Bluetooth address
        ``AA:BB:CC:DD:EE:FF``: the OUI ``AABBCC``, the manufacturer identifier ``FFFE``
        followed by the company-assigned ``DDEEFF`` (the EUI-64 ``AA-BB-CC-FF-FE-DD-EE-FF``).
        ``ValueError`` when ``address`` is not six colon-separated hex bytes."""
        octets = bytes.fromhex(address.replace(":", ""))
        if len(octets) != 6:
            raise ValueError(f"{address!r} is not a Bluetooth address")
        company_assigned = int.from_bytes(octets[3:], "big")
        return cls((0xFFFE << 24) | company_assigned, int.from_bytes(octets[:3], "big"))

    @property
    def eui64(self) -> str:
        """The EUI-64 as the PHD IG writes a system id (8 two-digit capital hex bytes
        separated by dashes, OUI first: ``12-34-56-FF-FE-9A-BC-DE``)."""
        value = (self.organizationally_unique_identifier << _MANUFACTURER_BITS) | (
            self.manufacturer_identifier
        )
        return "-".join(f"{b:02X}" for b in value.to_bytes(_SYSTEM_ID_SIZE, "big"))


_new_system_id = slot_constructor(SystemId)


def decode_system_id(data: bytes) -> SystemId:
    """Decode a System ID value (exactly 8 bytes)."""
    if len(data) != _SYSTEM_ID_SIZE:
        fail(
            SYSTEM_ID,
            "System ID",
            f"{len(data)} bytes, a System ID has {_SYSTEM_ID_SIZE}",
            min(len(data), _SYSTEM_ID_SIZE),
        )
    value = int.from_bytes(data, "little")
    return _new_system_id(value & ((1 << _MANUFACTURER_BITS) - 1), value >> _MANUFACTURER_BITS)


def encode_system_id(m: SystemId) -> bytes:
    """Encode a System ID (manufacturer identifier then OUI, little-endian)."""
    manufacturer, oui = m.manufacturer_identifier, m.organizationally_unique_identifier
    if not 0 <= manufacturer < 1 << _MANUFACTURER_BITS:
        raise EncodeError("System ID", f"manufacturer identifier {manufacturer} is not 40 bits")
    if not 0 <= oui < 1 << _OUI_BITS:
        raise EncodeError("System ID", f"OUI {oui} is not 24 bits")
    return ((oui << _MANUFACTURER_BITS) | manufacturer).to_bytes(_SYSTEM_ID_SIZE, "little")


REGISTRY.add(
    CharacteristicSpec(
        SYSTEM_ID,
        "System ID",
        gss="System ID",
        service="DIS 1.1 section 3 (System ID)",
        value_types=(SystemId,),
        decode=decode_system_id,
        encode=encode_system_id,
    )
)

for _uuid, _name in DEVICE_INFORMATION_STRINGS.items():
    REGISTRY.add(
        CharacteristicSpec(
            _uuid,
            _name,
            gss=_name,
            service="DIS 1.1 section 3",
            value_types=(DeviceInformationString,),
            decode=functools.partial(decode_device_information_string, _uuid),
            encode=encode_device_information_string,
        )
    )
