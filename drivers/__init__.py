"""narhub drivers: I/O adapters (BLE, serial, MQTT, emulated devices).

Each third-party I/O library is imported in exactly one module here (checked by
``tests/test_architecture.py``): bleak in ``drivers.ble._bleak``, bumble in
``drivers.ble.sim._bumble``, aiomqtt/paho in ``drivers.mqtt``.
"""

from drivers.errors import BackendNotFoundError, DeviceUnavailableError, DriverError

__all__ = ["BackendNotFoundError", "DeviceUnavailableError", "DriverError"]
