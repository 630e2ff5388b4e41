"""BLE backends chosen by name (``bluez`` on the hub, ``sim`` on the virtual rig).

The central always talks to real :class:`bleak.BleakClient` / :class:`bleak.BleakScanner`
objects; a backend only decides which ``backend=`` class bleak is given. ``bluez`` passes
``None`` so that bleak picks its platform backend (BlueZ over D-Bus on Raspberry Pi OS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.errors import BackendNotFoundError

if TYPE_CHECKING:
    from drivers.ble._bleak import BaseBleakClient, BaseBleakScanner
    from drivers.ble.sim.radio import SimRadio

KNOWN_BACKENDS = ["bluez", "sim"]


@dataclass(frozen=True)
class BleBackend:
    """The bleak backend classes for one radio; ``None`` means bleak's platform default."""

    name: str
    client_cls: type[BaseBleakClient] | None
    scanner_cls: type[BaseBleakScanner] | None


def resolve_backend(name: str, *, sim_radio: SimRadio | None = None) -> BleBackend:
    """The backend called ``name``; ``sim`` needs the emulated radio it runs on."""
    if name == "bluez":
        return BleBackend("bluez", None, None)
    if name == "sim":
        if sim_radio is None:
            raise BackendNotFoundError("ble", "sim (no emulated radio is running)", KNOWN_BACKENDS)
        # Imported lazily: bumble is only installed with the `sim` extra.
        from drivers.ble.sim.backend import bind_backend  # noqa: PLC0415

        client_cls, scanner_cls = bind_backend(sim_radio)
        return BleBackend("sim", client_cls, scanner_cls)
    raise BackendNotFoundError("ble", name, KNOWN_BACKENDS)
