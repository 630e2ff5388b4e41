"""The BLE backend named by the configuration (one place for the service and the CLI)."""

from __future__ import annotations

from drivers.ble import BleBackend, open_backend
from gateway.config import BleConfig


def make_ble_backend(ble: BleConfig) -> BleBackend:
    """``bluez``: bleak's BlueZ backend. ``sim``: the emulated radio, in this process or, with
    ``ble.sim_transport``, the virtual rig's radio in another (``narhub rig``); found by name."""
    return open_backend(ble.backend, sim_transport=ble.sim_transport)
