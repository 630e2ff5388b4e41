"""The virtual home behind ``narhub rig``: emulated BLE devices and sensor boards, a schedule,
faults, and the ledger of everything they produced.

The emulated devices share one bumble :class:`~drivers.ble.sim.radio.SimRadio` whose hub-side
controller is served over TCP on loopback (:class:`~drivers.ble.sim.radio.HciServer`): the hub
(``narhub run`` with ``ble.backend = "sim"`` and ``ble.sim_transport``) talks to them from
another process, and can be killed and restarted while the home carries on. Each sensor board
is the MicroPython firmware behind its own pty (:class:`~rig.sim_boards.SimBoard`).

Schedules and faults are in scenario seconds; ``time_scale`` compresses them (a day in a
minute at 1440). Device clocks keep real time, so that the hub's clock checks stay meaningful;
readings are distinct by device time stamp as long as they are at least a second apart.

With the ``bluez`` BLE backend the rig also plays bluetoothd: a private ``dbus-daemon`` with
the virtual BlueZ on it (:mod:`drivers.ble.sim.vbluez`), whose adapter is the central on the
rig's radio. The hub then runs ``ble.backend = "bluez"`` (bleak's own BlueZ backend and the
hub's pairing agent) with ``DBUS_SYSTEM_BUS_ADDRESS`` set to rig.json's ``dbus``; like
bluetoothd, the virtual BlueZ outlives a hub that is killed and started again.

``DIR/rig.json`` tells the hub side where everything is (the HCI transport or the D-Bus
address, each board's port) and, once every scheduled measurement was taken, ``"done": true``.
``DIR/ledger.jsonl`` is the ledger (:mod:`rig.ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from drivers.ble.sim._bumble import Characteristic
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.body_composition import EmulatedBodyCompositionScale
from drivers.ble.sim.cgm import EmulatedCgm
from drivers.ble.sim.enhanced_cuff import EmulatedEnhancedCuff
from drivers.ble.sim.ghs import EmulatedGhsDevice
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.peripheral import DeviceClock, EmulatedDevice
from drivers.ble.sim.pulse_oximeter import EmulatedPulseOximeter
from drivers.ble.sim.radio import HciServer, SimRadio
from drivers.ble.sim.scale import EmulatedScale
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.ble.sim.vbluez import PrivateBus, VirtualBlueZ
from gateway.board_source import NARHUB_PRIVATE_BASE
from gateway.reading import Reading
from protocols.gatt import Observation, decode, to_observations
from protocols.sensorlink import SENSOR_KINDS
from rig.ledger import LedgerEntry, LedgerWriter, entries_from_observations
from rig.scenario import BoardSpec, DeviceKind, DeviceSpec, FaultSpec, Scenario
from rig.sim_boards import CorruptingBridge, SimBoard

logger = logging.getLogger(__name__)

#: How often the boards' flash logs are read into the ledger (a log holds 4096 records).
BOARD_POLL_S = 0.1
#: The longest a person waits for a hub's link with a cuff or body composition scale to end
#: before using the device anyway (:func:`after_the_link`).
LINK_WAIT_S = 30.0


class SpotCheckOximeter(EmulatedPulseOximeter):
    """A pulse oximeter used for spot checks only (a finger clip taken off between checks):
    no continuous stream, so that everything it produces is a spot check in the ledger."""

    def on_started(self) -> None:
        """No 1 Hz stream."""


#: What each scenario device kind is on the emulated radio, and the arguments the rig adds
#: (cuffs sleep 5 s between measurements; the rig's glucose meter starts with no records).
_EMULATED: dict[DeviceKind, tuple[Callable[..., EmulatedDevice], dict[str, Any]]] = {
    "thermometer": (EmulatedThermometer, {}),
    "blood_pressure": (EmulatedBloodPressureCuff, {"sleep_s": 5.0}),
    "scale": (EmulatedScale, {}),
    "pulse_oximeter": (SpotCheckOximeter, {}),
    "glucose": (EmulatedGlucoseMeter, {"stored_records": 0}),
    "cgm": (EmulatedCgm, {}),
    "ghs": (EmulatedGhsDevice, {}),
    "enhanced_blood_pressure": (EmulatedEnhancedCuff, {"sleep_s": 5.0}),
    "body_composition": (EmulatedBodyCompositionScale, {}),
}

#: The BLE backends a hub can use on the rig: the emulated radio's HCI, or the virtual BlueZ.
RIG_BLE_BACKENDS = ("sim", "bluez")

#: Kinds the hub bonds with before anything else (GLS and CGMS require an encrypted link).
_BOND_FIRST = frozenset({"glucose", "cgm"})


def _profile_stats(device: EmulatedDevice) -> dict[str, Any]:
    """What a CGM or GHS device did that a test checks (RACP requests, live and stored)."""
    if isinstance(device, EmulatedCgm):
        return {
            "sessions": device.sessions,
            "racp_requests": [[r.operator.name, r.minimum] for r in device.racp.requests],
        }
    if isinstance(device, EmulatedGhsDevice):
        return {
            "live_sent": device.live_sent,
            "stored_sent": device.stored_sent,
            "racp_requests": [[r.operator.name, r.minimum] for r in device.racp_requests],
        }
    return {}


def _uuid16(characteristic: Characteristic[bytes]) -> int:
    return int.from_bytes(bytes(characteristic.uuid.to_bytes()), "little") & 0xFFFF


class VirtualHome:
    """Everything in the home; :meth:`run` until ``stop`` is set."""

    def __init__(self, scenario: Scenario, directory: Path, *, ble_backend: str = "sim") -> None:
        if ble_backend not in RIG_BLE_BACKENDS:
            raise ValueError(f"ble_backend {ble_backend!r}: one of {', '.join(RIG_BLE_BACKENDS)}")
        self.scenario = scenario
        self.ble_backend = ble_backend
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ledger = LedgerWriter(directory / "ledger.jsonl")
        self.radio = SimRadio()
        self.devices: dict[str, EmulatedDevice] = {}
        self.boards: dict[str, SimBoard] = {}
        self._counts: dict[str, int] = {}
        #: Scenario time each CGM's current sensor session started (a sensor change resets it).
        self._cgm_origin_s: dict[str, float] = {}
        self._board_lsn: dict[str, int] = {}
        self._bridges: dict[str, CorruptingBridge] = {}
        self._hci: HciServer | None = None
        #: The virtual BlueZ's bus address (``bluez`` backend only).
        self._dbus_address: str | None = None
        self._done = False
        self._started_ms: int | None = None

    # --- building ------------------------------------------------------------------------

    def _device(self, spec: DeviceSpec, index: int) -> EmulatedDevice:
        seed = spec.seed if spec.seed is not None else self.scenario.seed * 1000 + index
        kwargs: dict[str, Any] = {"seed": seed, "battery_percent": spec.battery_percent}
        if spec.clock_offset_s:
            kwargs["clock"] = DeviceClock(offset_s=spec.clock_offset_s)
        address = spec.address.upper()
        make, options = _EMULATED[spec.kind]
        if spec.kind == "cgm":
            self._cgm_origin_s[address] = 0.0
        return make(self.radio, address, **options, **kwargs)

    def _board(self, spec: BoardSpec, index: int) -> SimBoard:
        seed = spec.seed if spec.seed is not None else self.scenario.seed * 1000 + 500 + index
        rng = random.Random(seed)  # noqa: S311 - emulated sensor values, not security
        values = {
            "board_id": spec.board_id,
            # Distinct values make a lost or doubled reading visible in the ledger check.
            "temperature_cC": [rng.randint(1800, 2600) for _ in range(97)],
            "humidity_cP": [rng.randint(2500, 7000) for _ in range(89)],
        }
        return SimBoard(self.dir / "boards" / spec.board_id, values, interval_ms=spec.interval_ms)

    def status(self) -> dict[str, Any]:
        """What ``rig.json`` holds."""
        return {
            "pid": os.getpid(),
            "scenario": self.scenario.name,
            "ble_backend": self.ble_backend,
            "hci": None if self._hci is None else self._hci.transport_name,
            "dbus": self._dbus_address,
            "devices": [
                {
                    "kind": d.kind,
                    "address": d.address.upper(),
                    "bond": d.kind in _BOND_FIRST,
                }
                for d in self.scenario.devices
            ],
            "boards": {
                b: str(self._bridges[b].port if b in self._bridges else board.port)
                for b, board in self.boards.items()
            },
            "ledger": str(self.ledger.path),
            "corrupted_chunks": {b: bridge.corrupted for b, bridge in self._bridges.items()},
            "device_stats": {
                address: {
                    "connections": d.stats.connections,
                    "drops": d.stats.drops,
                    "stored_confirmed_ms": list(d.stats.stored_confirmed_ms),
                    **_profile_stats(d),
                }
                for address, d in self.devices.items()
            },
            "produced": dict(self.ledger.counts),
            "done": self._done,
            # The wall clock when scenario time 0 began (epoch ms): rig time is
            # started_ms + scenario seconds / time_scale.
            "started_ms": self._started_ms,
        }

    def _write_status(self) -> None:
        path = self.dir / "rig.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), indent=2))
        tmp.replace(path)

    # --- running -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Start the home, play the scenario, and keep running until ``stop`` is set."""
        for i, spec in enumerate(self.scenario.devices):
            self.devices[spec.address.upper()] = self._device(spec, i)
        for i, board_spec in enumerate(self.scenario.boards):
            self.boards[board_spec.board_id] = self._board(board_spec, i)
        try:
            async with (
                HciServer(self.radio, port=self.scenario.hci_port) as hci,
                self._bluetoothd(),
            ):
                self._hci = hci
                for device in self.devices.values():
                    await device.start()
                for board_spec in self.scenario.boards:
                    board = self.boards[board_spec.board_id]
                    await board.plug()
                    if board_spec.corrupt_p > 0:
                        bridge = CorruptingBridge(
                            board.port,
                            board.dir,
                            p=board_spec.corrupt_p,
                            seed=self.scenario.seed,
                        )
                        bridge.open()
                        self._bridges[board_spec.board_id] = bridge
                self._write_status()
                logger.info(
                    "virtual rig running: %d devices, %d boards",
                    len(self.devices),
                    len(self.boards),
                )
                async with asyncio.TaskGroup() as group:
                    play = group.create_task(self._play(), name="rig-scenario")
                    watch = group.create_task(self._watch_boards(), name="rig-boards")
                    await stop.wait()
                    play.cancel()
                    watch.cancel()
                self._read_boards()
                self._write_status()
        finally:
            for bridge in self._bridges.values():
                bridge.close()
            for board in self.boards.values():
                await board.unplug()
            for device in self.devices.values():
                await device.stop()
            self._read_boards()
            self.ledger.close()

    @contextlib.asynccontextmanager
    async def _bluetoothd(self) -> AsyncIterator[None]:
        """The virtual BlueZ on a private bus, for a hub on the ``bluez`` backend."""
        if self.ble_backend != "bluez":
            yield
            return
        async with PrivateBus() as bus:
            assert bus.address is not None
            async with VirtualBlueZ(self.radio, bus.address):
                self._dbus_address = bus.address
                try:
                    yield
                finally:
                    self._dbus_address = None

    def _real_s(self, scenario_s: float) -> float:
        return scenario_s / self.scenario.time_scale

    async def _at(self, start: float, scenario_s: float) -> None:
        """Sleep until scenario time ``scenario_s`` (the schedule is the point of sleeping)."""
        delay = start + self._real_s(scenario_s) - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _play(self) -> None:
        start = asyncio.get_running_loop().time()
        self._started_ms = time.time_ns() // 1_000_000
        self._write_status()
        async with asyncio.TaskGroup() as group:
            for spec in self.scenario.devices:
                device = self.devices[spec.address.upper()]
                group.create_task(self._schedule(spec, device, start), name=f"rig-{spec.kind}")
                for fault in spec.faults:
                    group.create_task(self._device_fault(device, fault, start), name="rig-fault")
            for board_spec in self.scenario.boards:
                board = self.boards[board_spec.board_id]
                for fault in board_spec.faults:
                    group.create_task(self._board_fault(board, fault, start), name="rig-fault")
        self._done = True
        self._write_status()
        logger.info("virtual rig: every scheduled measurement was taken")

    async def _schedule(self, spec: DeviceSpec, device: EmulatedDevice, start: float) -> None:
        last: float | None = None
        # A schedule meant to be a second or more apart stays so when the rig falls behind
        # (a scenario that asks for faster measurements gets them as it asks).
        paced = not isinstance(device, EmulatedCgm) and self._real_s(spec.every_s) >= 1.0
        for i in range(spec.count):
            at_s = spec.first_s + i * spec.every_s
            await self._at(start, at_s)
            if paced:
                last = await _a_second_after(last)
            if isinstance(device, EmulatedBloodPressureCuff | EmulatedBodyCompositionScale):
                await after_the_link(device)
            await self.measure(spec, device, at_s=at_s)
            self._write_status()

    async def measure(self, spec: DeviceSpec, device: EmulatedDevice, *, at_s: float = 0.0) -> None:
        """Take one measurement on ``device`` (at scenario time ``at_s``) and write its
        ledger entries."""
        n = self._counts.get(device.address, 0)
        self._counts[device.address] = n + 1
        taken_ms = time.time_ns() // 1_000_000
        observed = await self._observe(device, at_s, n)
        if observed is not None:
            self.ledger.write(
                entries_from_observations(
                    observed[0],
                    device=device.address,
                    kind=spec.kind,
                    seq=observed[1],
                    taken_ms=taken_ms,
                )
            )
            return
        pdus: list[tuple[int, bytes, str]] = []
        if isinstance(device, EmulatedThermometer | EmulatedBloodPressureCuff | EmulatedScale):
            pdus.append((_uuid16(device.measurement), await device.measure(), str(n)))
        elif isinstance(device, EmulatedPulseOximeter):
            payload = await device.spot_check()
            pdus.append((_uuid16(device.spot_check_char), payload, str(n)))
        elif isinstance(device, EmulatedGlucoseMeter):
            seq = device.add_record()
            record = device.records[-1]
            pdus.extend((_uuid16(c), value, str(seq)) for c, value, _ in record.pdus)
            device._bump()  # a new record: wake anyone waiting on the device's state
        entries: list[LedgerEntry] = []
        taken_ms = time.time_ns() // 1_000_000
        for uuid16, payload, seq_text in pdus:
            measurement = decode(uuid16, payload)
            entries.extend(
                entries_from_observations(
                    to_observations(measurement),
                    device=device.address,
                    kind=spec.kind,
                    seq=seq_text,
                    taken_ms=taken_ms,
                )
            )
        self.ledger.write(entries)

    async def _observe(
        self, device: EmulatedDevice, at_s: float, n: int
    ) -> tuple[list[Observation], str] | None:
        """The new profiles: their measurement's observations (as the device meant them,
        one per reading however many values carry it) and the ledger's ``seq``."""
        if isinstance(device, EmulatedCgm):
            origin = self._cgm_origin_s.get(device.address, 0.0)
            offset = round((at_s - origin) / 60)
            measurement = await device.add_record(offset)
            return to_observations(measurement), f"{device.sessions}/{offset}"
        if isinstance(device, EmulatedGhsDevice):
            return to_observations(await device.observe()), str(n)
        if isinstance(device, EmulatedBodyCompositionScale):
            m = device.random_measurement()
            await device.measure(m)
            return to_observations(m), str(n)
        return None

    async def _device_fault(self, device: EmulatedDevice, fault: FaultSpec, start: float) -> None:
        await self._at(start, fault.at_s)
        logger.info("virtual rig: fault %s on a %s", fault.fault, type(device).__name__)
        if fault.fault == "out_of_range":
            await device.go_out_of_range()
            await self._at(start, fault.at_s + fault.duration_s)
            device.come_back_in_range()
        elif fault.fault == "drop_after_records":
            device.faults.drop_after_records = fault.count
        elif fault.fault == "drop_after_notifications":
            device.faults.drop_after_notifications = fault.count
        elif fault.fault == "malformed":
            device.faults.malformed_next = fault.count
        elif fault.fault == "sensor_change" and isinstance(device, EmulatedCgm):
            device.change_sensor()
            self._cgm_origin_s[device.address] = fault.at_s
        elif fault.fault == "battery_replaced":
            device.battery_percent = 100

    async def _board_fault(self, board: SimBoard, fault: FaultSpec, start: float) -> None:
        await self._at(start, fault.at_s)
        if fault.fault == "unplug":
            logger.info("virtual rig: a sensor board unplugged")
            await board.unplug()
            await self._at(start, fault.at_s + fault.duration_s)
            await board.plug()
            logger.info("virtual rig: a sensor board plugged in again")

    async def _watch_boards(self) -> None:
        while True:
            self._read_boards()
            await asyncio.sleep(BOARD_POLL_S)  # a file written by another process: poll it

    def _read_boards(self) -> None:
        for board in self.boards.values():
            last = self._board_lsn.get(board.board_id, -1)
            fresh = [r for r in board.flash_log() if r.lsn > last]
            if not fresh:
                continue
            self._board_lsn[board.board_id] = fresh[-1].lsn
            seen_ms = time.time_ns() // 1_000_000  # when the rig read it: at most a poll late
            entries = []
            for r in fresh:
                kind = SENSOR_KINDS.get(r.kind)
                exponent = kind.exponent if kind is not None else 0
                entries.append(
                    LedgerEntry(
                        "board",
                        board.board_id,
                        kind.name if kind is not None else f"kind-{r.kind}",
                        NARHUB_PRIVATE_BASE + r.kind,
                        kind.unit if kind is not None else "1",
                        str(Reading.exact(r.value, exponent)),
                        None
                        if r.wall_ms is None
                        else dt.datetime.fromtimestamp(r.wall_ms / 1000, dt.UTC).isoformat(),
                        f"{r.boot_id}/{r.seq}",
                        seen_ms,
                    )
                )
            self.ledger.write(entries)


async def _a_second_after(last: float | None) -> float:
    """Wait, if need be, until a second after ``last`` (loop time); return the time now.

    A device stamps its readings with its clock in whole seconds (the SIG Date Time, GSS
    3.70), and two readings of one device with one code at one stamp are one observation to
    the region (the PHD IG's conditional-create identifier). A real device never measures
    twice in a second; a compressed day that falls behind its schedule would, so the rig
    holds a device's next measurement until a second has passed, whatever its clock's offset.
    (The CGM is exempt: its records are dated by their minute offsets, CGM 1.0.2 §3.1.)
    """
    loop = asyncio.get_running_loop()
    if last is not None and loop.time() < last + 1.0:
        await asyncio.sleep(last + 1.0 - loop.time())  # a device clock's tick is the point
    return loop.time()


async def after_the_link(device: EmulatedDevice) -> None:
    """Wait, if need be, until no central holds a link with ``device`` (a bonded cuff or body
    composition scale), at most :data:`LINK_WAIT_S`.

    A person takes a spot check on a device that is not transferring: a cuff or a scale
    measures, then connects and sends, then sleeps. A compressed day would have someone
    measure in the middle of a link, and at the end of a link with a bonded device the hub
    turns its notifications off (``drivers.ble.session``; a bond keeps CCCDs across links,
    Core 5.3 Vol 3 Part G 3.3.3.3). An indication the device sends while that write is on its
    way is confirmed by the central's stack with no handler left to take it (BlueZ's
    ``StopNotify`` drops the handler first, and ``src/shared/gatt-client.c`` confirms every
    indication; bumble does the same), so the device forgets a reading the hub never got.
    The hub cannot close that window through BlueZ's D-Bus API (it refuses CCCD writes from
    clients), so docs/protocols/phd.md names it as a limit, and the rig does not aim readings
    into it.
    """
    try:
        async with asyncio.timeout(LINK_WAIT_S):  # returns at once when there is no link
            await device.wait_until(lambda: not device.connected)
    except TimeoutError:
        logger.warning("virtual rig: a %s measures during a link", type(device).__name__)


async def run_home(scenario: Scenario, directory: Path, *, ble_backend: str = "sim") -> VirtualHome:
    """Run a home until SIGTERM/SIGINT (what ``narhub rig`` does); ``ble_backend`` is the one
    the hub will use (``bluez``: the rig starts the virtual BlueZ)."""
    import signal  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    home = VirtualHome(scenario, directory, ble_backend=ble_backend)
    try:
        await home.run(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
    return home
