"""The one module that imports bleak; everything else in narhub imports bleak names from here."""

from bleak import BleakClient, BleakScanner
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak.uuids import normalize_uuid_str

__all__ = [
    "AdvertisementData",
    "AdvertisementDataType",
    "BLEDevice",
    "BaseBleakClient",
    "BaseBleakScanner",
    "BleakClient",
    "BleakDBusError",
    "BleakDeviceNotFoundError",
    "BleakError",
    "BleakGATTCharacteristic",
    "BleakGATTDescriptor",
    "BleakGATTProtocolError",
    "BleakGATTProtocolErrorCode",
    "BleakGATTService",
    "BleakGATTServiceCollection",
    "BleakScanner",
    "NotifyCallback",
    "normalize_uuid_str",
]
