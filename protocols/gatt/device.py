"""Battery Level 0x2A19 (Battery Service 0x180F) and the Device Information Service 0x180A
strings.

* Battery Level (GSS 3.27): uint8 percentage 0..100; 101..255 are reserved.
* Device Information strings (DIS 1.1 section 3; GSS ``utf8s``): Manufacturer Name 0x2A29,
  Model Number 0x2A24, Serial Number 0x2A25, Hardware Revision 0x2A27, Firmware Revision 0x2A26,
  Software Revision 0x2A28. ``utf8s`` is not NUL-terminated, but many devices pad with NULs
  (and some add one terminator): trailing NULs are dropped, as every collector does; any
  other invalid UTF-8 is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from protocols.errors import EncodeError
from protocols.gatt import observation as obs
from protocols.gatt._wire import fail, length_error

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


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Battery Level 0x2A19 (GSS 3.27): remaining charge in percent."""

    level_percent: int


def decode_battery_level(data: bytes) -> BatteryLevel:
    """Decode 0x2A19: exactly one byte, 0..100."""
    name = "Battery Level"
    if len(data) != 1:
        raise length_error(BATTERY_LEVEL, name, (("Battery Level", 1),), len(data))
    if data[0] > 100:
        fail(BATTERY_LEVEL, name, f"battery level {data[0]} % out of range 0..100", 0)
    return BatteryLevel(data[0])


def encode_battery_level(m: BatteryLevel) -> bytes:
    """Encode 0x2A19."""
    if not 0 <= m.level_percent <= 100:
        raise EncodeError("Battery Level", f"{m.level_percent} % out of range 0..100")
    return bytes((m.level_percent,))


def battery_observations(m: BatteryLevel) -> list[obs.Observation]:
    """MDC_ATTR_VAL_BATT_CHARGE in %, device data rather than a clinical reading."""
    return [
        obs.Observation(obs.MDC_ATTR_VAL_BATT_CHARGE, None, Decimal(m.level_percent), None, "%")
    ]


@dataclass(frozen=True, slots=True)
class DeviceInformationString:
    """One Device Information string characteristic (``characteristic`` says which)."""

    characteristic: int
    value: str

    @property
    def name(self) -> str:
        """The GSS name of the characteristic."""
        return DEVICE_INFORMATION_STRINGS.get(self.characteristic, "Device Information")


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
    return DeviceInformationString(characteristic, text)


def encode_device_information_string(m: DeviceInformationString) -> bytes:
    """Encode a DIS string (UTF-8, no terminator)."""
    if m.characteristic not in DEVICE_INFORMATION_STRINGS:
        raise EncodeError("Device Information", f"0x{m.characteristic:04X} is not a DIS string")
    data = m.value.encode("utf-8")
    if "\x00" in m.value or len(data) > _MAX_ATTRIBUTE_SIZE:
        raise EncodeError(DEVICE_INFORMATION_STRINGS[m.characteristic], "NUL or too long")
    return data
