"""The BLE backend named by the configuration (one place for the service and the CLI)."""

from __future__ import annotations

from drivers.ble import BleBackend, resolve_backend
from gateway.config import BleConfig


def make_ble_backend(ble: BleConfig) -> BleBackend:
    """``bluez``: bleak's BlueZ backend. ``sim``: the emulated radio, in this process or, with
    ``ble.sim_transport``, the virtual rig's radio in another (``narhub rig``)."""
    radio = None
    if ble.backend == "sim":
        from drivers.ble.sim.radio import SimRadio  # noqa: PLC0415 - the sim extra only

        radio = SimRadio(transport=ble.sim_transport)
    return resolve_backend(ble.backend, sim_radio=radio)
