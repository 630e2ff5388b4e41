"""BLE central for medical devices, on bleak; backends chosen by name (``bluez``, ``sim``)."""

from drivers.ble.backends import BleBackend, resolve_backend
from drivers.ble.central import BleCentral, CentralSettings, DeviceSpec, DeviceStatus
from drivers.ble.cursors import MemoryCursorStore, RecordCursorStore
from drivers.ble.events import ClockObservation, MeasurementEvent
from drivers.ble.retry import Failure, SessionError

__all__ = [
    "BleBackend",
    "BleCentral",
    "CentralSettings",
    "ClockObservation",
    "DeviceSpec",
    "DeviceStatus",
    "Failure",
    "MeasurementEvent",
    "MemoryCursorStore",
    "RecordCursorStore",
    "SessionError",
    "resolve_backend",
]
