"""The rigs the hardware-in-the-loop suite runs on: the virtual rig, or a bench in a file.

A test asks its rig for what it needs (:meth:`Rig.require`): the virtual rig has everything;
a bench skips, with a reason, exactly the tests whose hardware its file does not list. A test
then runs a :class:`Home` (devices, boards, broker, hub, region) for one scenario.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

from rig.home import HubOptions, VirtualHomeRig
from rig.ledger import FhirReading, LedgerEntry, Reconciliation, Tombstone
from rig.processes import eventually

SCENARIOS = Path(__file__).parent / "scenarios"

#: What a test may need. ``ble:KIND``: a device of that kind. ``board``: a sensor board.
#: ``broker-control``: the broker can be stopped and started. ``hub-power``: the hub can be
#: cut off hard (SIGKILL here, a relay on a bench). ``board-power``: a board can be unplugged.
#: ``ble-range``: a device can be taken out of range (a shielded box on a bench).
#: ``internet-control``: the home's connection can be cut (the hub keeps running).
#: ``hub-disk``: the hub's outbox quota can be made small (a nearly full disk).
#: ``hub-clock``: the hub's wall clock can be stepped. ``device-clock``: a device's clock
#: can be set a year off before it measures.
VIRTUAL_CAPABILITIES = frozenset(
    {
        "ble:thermometer",
        "ble:blood_pressure",
        "ble:scale",
        "ble:pulse_oximeter",
        "ble:glucose",
        "ble:cgm",
        "ble:ghs",
        "ble:enhanced_blood_pressure",
        "ble:body_composition",
        "board",
        "broker-control",
        "hub-power",
        "board-power",
        "ble-range",
        "internet-control",
        "hub-disk",
        "hub-clock",
        "device-clock",
    }
)


class Home(Protocol):
    """One running home; :class:`rig.home.VirtualHomeRig` is the virtual one."""

    async def start_hub(self) -> None: ...
    async def stop_hub(self) -> int | None: ...
    def kill_hub(self) -> None: ...
    async def stop_rig(self) -> None: ...
    async def broker_down(self) -> None: ...
    async def broker_up(self) -> None: ...
    async def wait_rig_done(self, timeout_s: float) -> None: ...
    async def wait_delivered(
        self, timeout_s: float, *, check: bool = True, evictions: bool = False
    ) -> Reconciliation: ...
    async def internet(self, online: bool) -> None: ...
    def step_hub_clock(self, offset_s: float) -> None: ...
    def hub_evicted(self) -> int: ...
    def ledger(self) -> list[LedgerEntry]: ...
    def fhir(self) -> list[FhirReading]: ...
    def tombstones(self) -> list[Tombstone]: ...
    def rig_facts(self) -> dict[str, Any]: ...


class Rig(abc.ABC):
    """Where the suite runs."""

    name: str
    capabilities: frozenset[str]

    def require(self, *needs: str) -> None:
        """Skip the test, naming what is missing, when this rig lacks any of ``needs``."""
        missing = sorted(set(needs) - self.capabilities)
        if missing:
            pytest.skip(f"{self.name} lacks {', '.join(missing)}")

    @abc.abstractmethod
    def home(
        self,
        scenario: str,
        workdir: Path,
        *,
        start_hub: bool = True,
        hub_options: HubOptions | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Home]:
        """The home for ``hil_tests/scenarios/{scenario}.toml``."""


class VirtualRig(Rig):
    """Emulated devices (bumble) and boards (MicroPython unix port) in a ``narhub rig``
    process, Mosquitto with TLS, ``narhub run`` as a process, the reference receiver.

    ``ble_backend``: the hub's BLE backend where a test's :class:`HubOptions` leave it open
    (``bluez``: over the virtual BlueZ the rig starts)."""

    name = "virtual rig"
    capabilities = VIRTUAL_CAPABILITIES

    def __init__(self, ble_backend: Literal["sim", "bluez"] = "sim") -> None:
        self.ble_backend = ble_backend

    @contextlib.asynccontextmanager
    async def home(
        self,
        scenario: str,
        workdir: Path,
        *,
        start_hub: bool = True,
        hub_options: HubOptions | None = None,
    ) -> AsyncIterator[Home]:
        options = hub_options or HubOptions()
        if options.ble_backend is None:
            options = dataclasses.replace(options, ble_backend=self.ble_backend)
        async with VirtualHomeRig(
            workdir, SCENARIOS / f"{scenario}.toml", start_hub=start_hub, hub_options=options
        ) as home:
            yield home


class BenchRig(Rig):
    """A bench described by a TOML file::

        name = "bench-1"
        [[ble]]                       # real devices, by address (a button robot plays them)
        kind = "thermometer"
        address = "C0:FF:EE:12:34:56"
        [[boards]]
        port = "serial:usb:E6614C311B5A7E24"
        [controls]                    # commands the bench runs; absent = not available
        broker_stop = "ssh broker sudo systemctl stop mosquitto"
        broker_start = "ssh broker sudo systemctl start mosquitto"
        hub_power_cycle = "usbrelay HUB_1=0 && sleep 1 && usbrelay HUB_1=1"
        board_power_cycle = "usbrelay BOARD_1=0 && sleep 1 && usbrelay BOARD_1=1"
        shield_device = "bench-shield close"
        scenario_player = "bench-play --scenario {scenario} --ledger {ledger}"

    Capabilities follow from what the file lists. Playing a scenario on hardware needs the
    bench's ``scenario_player`` (it presses the devices' buttons and writes the ledger).
    """

    def __init__(self, path: Path) -> None:
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise pytest.UsageError(f"--rig {path}: {exc}") from None
        self.path = path
        self.name = f"bench {data.get('name', path.stem)}"
        self.data = data
        caps = {f"ble:{d['kind']}" for d in data.get("ble", [])}
        if data.get("boards"):
            caps.add("board")
        controls = data.get("controls", {})
        for control, capability in (
            ("broker_stop", "broker-control"),
            ("hub_power_cycle", "hub-power"),
            ("board_power_cycle", "board-power"),
            ("shield_device", "ble-range"),
        ):
            if controls.get(control):
                caps.add(capability)
        if not controls.get("scenario_player"):
            caps = set()
        self.capabilities = frozenset(caps)

    def home(
        self,
        scenario: str,
        workdir: Path,
        *,
        start_hub: bool = True,
        hub_options: HubOptions | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Home]:
        pytest.skip(
            f"{self.name}: no scenario_player for {scenario!r} (the bench cannot play scenarios)"
        )


def load_rig(option: str, *, ble_backend: str = "sim") -> Rig:
    """``virtual`` (its hub on the ``ble_backend`` given) or the path of a bench file."""
    if option == "virtual":
        if ble_backend not in ("sim", "bluez"):
            raise pytest.UsageError(f"--ble-backend {ble_backend}: sim or bluez")
        return VirtualRig("bluez" if ble_backend == "bluez" else "sim")
    return BenchRig(Path(option))


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait until ``predicate()`` holds, polling another process's files every 0.1 s; the
    test fails (AssertionError) naming ``what`` if it does not within ``timeout_s``."""
    try:
        await eventually(predicate, timeout_s=timeout_s, what=what, poll_s=0.1)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None
