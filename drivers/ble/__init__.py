"""BLE central for medical devices, on bleak; backends chosen by name (``bluez``, ``sim``)."""

from drivers.ble.backends import BleBackend, resolve_backend
from drivers.ble.central import BleCentral, MeasurementEvent

__all__ = ["BleBackend", "BleCentral", "MeasurementEvent", "resolve_backend"]
