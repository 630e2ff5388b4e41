"""A hung adapter is power-cycled through BlueZ (Adapter1.Powered), on the virtual BlueZ: one
that went silent, and one whose D-Bus calls time out; links an earlier hub process left open
in bluetoothd are released at start."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest
from ble_rig import FAST, Rig
from vbluez_rig import virtual_bluez

from drivers.ble import BleCentral, CentralSettings
from drivers.ble._dbus import Message, MessageType, call_method, close_bus, connect_system_bus
from drivers.ble.adapter import AdapterResetError, power_cycle
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.ble.sim.vbluez import VirtualBlueZ
from protocols.gatt import TEMPERATURE_MEASUREMENT

_DBUS = "org.freedesktop.DBus"
_ADDED_RULE = (
    "type='signal',interface='org.freedesktop.DBus.ObjectManager',member='InterfacesAdded'"
)


@contextlib.asynccontextmanager
async def _heard_again_after_a_hang(
    monkeypatch: pytest.MonkeyPatch,
    address: str,
    seed: int,
    settings: CentralSettings,
    *,
    calls_hang: bool = False,
) -> AsyncIterator[tuple[BleCentral, VirtualBlueZ]]:
    """A thermometer is heard; then the adapter hangs (no advertisements reach the hub, and
    with ``calls_hang`` its D-Bus calls go unanswered too) and the thermometer, its session
    over, takes a second reading, heard only once the hub power-cycled the adapter. Yields when
    the hub heard it and runs its scanner again (the reading can come in while the power
    cycle's second half is still running: the scanner runs again only after it)."""
    rig = Rig("bluez", monkeypatch)
    thermo = EmulatedThermometer(rig.radio, address, seed=seed)
    async with rig.running(("thermometer", thermo), settings=settings) as (central, got):
        await thermo.measure()
        await got.wait_for_count(TEMPERATURE_MEASUREMENT, 1)
        bluez = got.bluez
        assert bluez is not None
        bluez.hung = True  # restarts or not
        if calls_hang:
            bluez.calls_hang = True
        await thermo.wait_until(lambda: not thermo.connected)  # the session went idle
        await thermo.measure()
        await got.wait_for_count(TEMPERATURE_MEASUREMENT, 2)
        async with asyncio.timeout(15):
            await central.scanner.running.wait()
        assert central.scanner.adapter_resets >= 1
        assert bluez.power_cycles >= 1
        yield central, bluez
    assert central.scanner.adapter_reset_failures == 0


async def test_a_hung_adapter_is_power_cycled_and_readings_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sightings go stale fast: after the hang the hub needs a new advertisement to reconnect.
    settings = dataclasses.replace(
        FAST, scanner_watchdog_s=0.3, scanner_restart_delay_s=0.05, advert_fresh_s=0.15
    )
    async with _heard_again_after_a_hang(monkeypatch, "C0:00:00:00:09:01", 21, settings) as (
        _central,
        bluez,
    ):
        assert not bluez.hung


async def test_an_adapter_whose_calls_time_out_is_power_cycled_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Silence alone would take 1000 watchdog rounds: only the call timeout can trigger it.
    settings = dataclasses.replace(
        FAST,
        scanner_watchdog_s=0.3,
        scanner_restart_delay_s=0.05,
        advert_fresh_s=0.15,
        adapter_call_timeout_s=1.0,
        silent_restarts_before_reset=1000,
    )
    # The adapter hangs: nothing heard, and StopDiscovery / StartDiscovery unanswered.
    async with _heard_again_after_a_hang(
        monkeypatch, "C0:00:00:00:09:02", 22, settings, calls_hang=True
    ) as (central, bluez):
        assert bluez.unanswered_calls >= 1
        assert central.scanner.adapter_call_timeouts >= 1
        assert not bluez.calls_hang


async def test_a_hub_starting_on_an_adapter_that_does_not_answer_power_cycles_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig("bluez", monkeypatch)
    thermo = EmulatedThermometer(rig.radio, "C0:00:00:00:09:03", seed=23)
    settings = dataclasses.replace(FAST, scanner_restart_delay_s=0.05, adapter_call_timeout_s=1.0)

    async def hang(bluez: VirtualBlueZ) -> None:
        bluez.calls_hang = True  # the scanner's first SetDiscoveryFilter goes unanswered

    async with rig.running(("thermometer", thermo), settings=settings, before_central=hang) as (
        central,
        got,
    ):
        await thermo.measure()
        await got.wait_for_count(TEMPERATURE_MEASUREMENT, 1)
        bluez = got.bluez
        assert bluez is not None
        assert bluez.unanswered_calls >= 1
        assert central.scanner.adapter_call_timeouts >= 1
        assert (central.scanner.adapter_resets, bluez.power_cycles) == (1, 1)


async def test_power_cycle_names_the_step_when_there_is_no_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with virtual_bluez(SimRadio(), monkeypatch):
        with pytest.raises(AdapterResetError) as info:
            await power_cycle("/org/bluez/hci9", timeout_s=2.0, off_s=0.0)
    assert info.value.step == "Powered=false"


async def _earlier_hub_leaves_a_link(bluez: VirtualBlueZ, address: str) -> None:
    """An earlier hub process: its own D-Bus connection discovers and connects the device,
    then goes away without disconnecting (a crash); bluetoothd keeps the link."""
    path = f"{bluez.adapter_path}/dev_{address.replace(':', '_')}"
    bus = await connect_system_bus()
    try:
        heard = asyncio.Event()

        def on_message(msg: Message) -> None:
            if msg.member == "InterfacesAdded" and msg.body and msg.body[0] == path:
                heard.set()

        bus.add_message_handler(on_message)
        for destination, obj, interface, member, signature, body in (
            (_DBUS, "/org/freedesktop/DBus", _DBUS, "AddMatch", "s", [_ADDED_RULE]),
            ("org.bluez", bluez.adapter_path, "org.bluez.Adapter1", "StartDiscovery", "", []),
        ):
            reply = await call_method(bus, destination, obj, interface, member, signature, body)
            assert reply is not None
            assert reply.message_type != MessageType.ERROR, reply.body
        async with asyncio.timeout(10):
            await heard.wait()
        reply = await call_method(bus, "org.bluez", path, "org.bluez.Device1", "Connect")
        assert reply is not None
        assert reply.message_type != MessageType.ERROR, reply.body
    finally:
        await close_bus(bus)
    assert bluez.devices[address].prop("Connected")


async def test_a_link_left_by_an_earlier_hub_process_is_released_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = Rig("bluez", monkeypatch)
    thermo = EmulatedThermometer(rig.radio, "C0:00:00:00:09:04", seed=24)

    async def crashed_hub(bluez: VirtualBlueZ) -> None:
        await _earlier_hub_leaves_a_link(bluez, thermo.address)

    async with rig.running(("thermometer", thermo), before_central=crashed_hub) as (central, got):
        await thermo.measure()  # heard only once the stale link is gone
        await got.wait_for_count(TEMPERATURE_MEASUREMENT, 1)
    assert central.stale_links_released == 1


async def test_a_start_that_fails_after_the_agent_registered_unregisters_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start cut short after the pairing agent registered (here: releasing stale links
    fails) leaves no agent behind in bluetoothd: the supervisor restarts the central, and
    each attempt would otherwise leave one more D-Bus connection and agent."""
    rig = Rig("bluez", monkeypatch)
    thermo = EmulatedThermometer(rig.radio, "C0:00:00:00:09:05", seed=25)
    seen: list[VirtualBlueZ] = []

    async def fail(devices: object) -> int:
        del devices
        assert seen[0].agents.agents, "the agent registers before stale links are released"
        raise RuntimeError("bluetoothd went away")

    async def remember(bluez: VirtualBlueZ) -> None:
        seen.append(bluez)

    monkeypatch.setattr("drivers.ble.adapter.release_stale_links", fail)
    with pytest.raises(RuntimeError, match="bluetoothd went away"):
        async with rig.running(("thermometer", thermo), before_central=remember):
            pass
    assert seen[0].agents.agents == {}
