"""Battery Level 0x2A19 (Battery Service 0x180F) and the Device Information Service 0x180A
strings (the wire format; the battery observation is in :mod:`protocols.gatt.mapping.device`).

* Battery Level (GSS 3.27): uint8 percentage 0..100; 101..255 are reserved.
* Device Information strings (DIS 1.1 section 3; GSS ``utf8s``): Manufacturer Name 0x2A29,
  Model Number 0x2A24, Serial Number 0x2A25, Hardware Revision 0x2A27, Firmware Revision 0x2A26,
  Software Revision 0x2A28. ``utf8s`` is not NUL-terminated, but many devices pad with NULs
  (and some add one terminator): trailing NULs are dropped, as every collector does; any
  other invalid UTF-8 is an error. A string runs to the end of the value, so this codec is
  written by hand and registered once per characteristic.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from protocols.errors import EncodeError
from protocols.gatt._wire import fail
from protocols.gatt.generator import slot_constructor
from protocols.gatt.kinds import UInt
from protocols.gatt.registry import REGISTRY, CharacteristicSpec, characteristic
from protocols.gatt.schema import Field, Table

BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19
DEVICE_INFORMATION_SERVICE = 0x180A

MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
HARDWARE_REVISION = 0x2A27
SOFTWARE_REVISION = 0x2A28
MANUFACTURER_NAME = 0x2A29

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
