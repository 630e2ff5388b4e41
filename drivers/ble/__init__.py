"""BLE central for medical devices, on bleak; backends chosen by name (``bluez``, ``sim``)."""

from drivers.ble.backends import BleBackend, open_backend, resolve_backend
from drivers.ble.central import BleCentral, CentralSettings, DeviceSpec, DeviceStatus
from drivers.ble.events import ClockObservation, MeasurementEvent
from drivers.ble.record_cursors import MemoryRecordCursorStore, RecordCursorStore
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
    "MemoryRecordCursorStore",
    "RecordCursorStore",
    "SessionError",
    "open_backend",
    "resolve_backend",
]
