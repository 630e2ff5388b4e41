"""BLE backends chosen by name (``bluez`` on the hub, ``sim`` on the virtual rig).

The central always talks to real :class:`bleak.BleakClient` / :class:`bleak.BleakScanner`
objects; a backend only decides which ``backend=`` class bleak is given. ``bluez`` passes
``None`` so that bleak picks its platform backend (BlueZ over D-Bus on Raspberry Pi OS); it
talks to the bluetoothd on the system bus, or on the bus ``DBUS_SYSTEM_BUS_ADDRESS`` names (the
virtual BlueZ of the test rig, ``drivers/ble/sim/vbluez``). BlueZ pairs only with an agent
registered, so ``bluez`` pairs through :mod:`drivers.ble.agent`.

The emulated radio is found by its module's name, never by a static import: bumble comes with
the ``sim`` extra only, and the hub and the technician's tools must not depend on it (an
import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from drivers.errors import BackendNotFoundError

if TYPE_CHECKING:
    from drivers.ble._bleak import BaseBleakClient, BaseBleakScanner
    from drivers.ble.sim.radio import SimRadio

KNOWN_BACKENDS = ["bluez", "sim"]

#: The module of each backend that comes with an extra, imported by name when asked for.
_EMULATED = {"sim": "drivers.ble.sim.backend"}


@dataclass(frozen=True)
class BleBackend:
    """The bleak backend classes for one radio; ``None`` means bleak's platform default."""

    name: str
    client_cls: type[BaseBleakClient] | None
    scanner_cls: type[BaseBleakScanner] | None
    #: Pairing goes through BlueZ, which needs a registered ``org.bluez.Agent1``.
    needs_agent: bool = False
    #: Closes a radio connection the backend opened itself (:func:`open_backend`).
    closer: Callable[[], Awaitable[None]] | None = None

    async def aclose(self) -> None:
        """Close what :func:`open_backend` opened (nothing for ``bluez``)."""
        if self.closer is not None:
            await self.closer()


class _EmulatedBackendModule(Protocol):
    """What a backend module found by name offers (``drivers/ble/sim/backend.py``)."""

    def bind_backend(
        self, radio: SimRadio
    ) -> tuple[type[BaseBleakClient], type[BaseBleakScanner]]: ...

    def open_backend(self, *, transport: str | None) -> BleBackend: ...


def _emulated(name: str) -> _EmulatedBackendModule:
    """The backend module called ``name`` (ImportError without its extra, naming it)."""
    try:
        return cast(_EmulatedBackendModule, importlib.import_module(_EMULATED[name]))
    except ImportError as exc:
        raise BackendNotFoundError(
            "ble", f"{name} (install the 'sim' extra: {exc.name or exc})", KNOWN_BACKENDS
        ) from exc


def resolve_backend(name: str, *, sim_radio: SimRadio | None = None) -> BleBackend:
    """The backend called ``name``; ``sim`` needs the emulated radio it runs on."""
    if name == "bluez":
        return BleBackend("bluez", None, None, needs_agent=True)
    if name == "sim":
        if sim_radio is None:
            raise BackendNotFoundError("ble", "sim (no emulated radio is running)", KNOWN_BACKENDS)
        client_cls, scanner_cls = _emulated("sim").bind_backend(sim_radio)
        return BleBackend("sim", client_cls, scanner_cls)
    raise BackendNotFoundError("ble", name, KNOWN_BACKENDS)


def open_backend(name: str, *, sim_transport: str | None = None) -> BleBackend:
    """The backend called ``name`` with a radio of its own: ``sim`` opens the emulated radio in
    this process or, with ``sim_transport``, the virtual rig's radio in another process
    (``narhub rig``). Close it with :meth:`BleBackend.aclose`."""
    if name == "bluez":
        return BleBackend("bluez", None, None, needs_agent=True)
    if name in _EMULATED:
        return _emulated(name).open_backend(transport=sim_transport)
    raise BackendNotFoundError("ble", name, KNOWN_BACKENDS)
