"""A hung adapter is power-cycled through BlueZ (Adapter1.Powered), on the virtual BlueZ: one
that went silent, and one whose D-Bus calls time out."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from ble_rig import FAST, running
from vbluez_rig import virtual_bluez

from drivers.ble.adapter import AdapterResetError, power_cycle
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.ble.sim.vbluez import VirtualBlueZ
from protocols.gatt import TEMPERATURE_MEASUREMENT


async def test_a_hung_adapter_is_power_cycled_and_readings_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    thermo = EmulatedThermometer(radio, "C0:00:00:00:09:01", seed=21)
    # Sightings go stale fast: after the hang the hub needs a new advertisement to reconnect.
    settings = dataclasses.replace(
        FAST, scanner_watchdog_s=0.3, scanner_restart_delay_s=0.05, advert_fresh_s=0.15
    )
    async with running(
        radio,
        [("thermometer", thermo)],
        backend="bluez",
        monkeypatch=monkeypatch,
        settings=settings,
    ) as (central, got):
        await thermo.measure()
        await got.wait_for(lambda: len(got.of(TEMPERATURE_MEASUREMENT)) == 1)
        bluez = got.bluez
        assert bluez is not None
        bluez.hung = True  # no advertisements reach the hub any more, restarts or not
        await thermo.wait_until(lambda: not thermo.connected)  # the session went idle
        await thermo.measure()  # heard only once the hub power-cycled the adapter
        await got.wait_for(lambda: len(got.of(TEMPERATURE_MEASUREMENT)) == 2, timeout_s=15)
        # The reading can come in while the power cycle's second half is still running: the
        # scanner runs again only after it (the count is taken first).
        async with asyncio.timeout(15):
            await central.scanner.running.wait()
        assert central.scanner.adapter_resets >= 1
        assert not bluez.hung
        assert bluez.power_cycles >= 1
    assert central.scanner.adapter_reset_failures == 0


async def test_an_adapter_whose_calls_time_out_is_power_cycled_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    thermo = EmulatedThermometer(radio, "C0:00:00:00:09:02", seed=22)
    # Silence alone would take 1000 watchdog rounds: only the call timeout can trigger it.
    settings = dataclasses.replace(
        FAST,
        scanner_watchdog_s=0.3,
        scanner_restart_delay_s=0.05,
        advert_fresh_s=0.15,
        adapter_call_timeout_s=1.0,
        silent_restarts_before_reset=1000,
    )
    async with running(
        radio,
        [("thermometer", thermo)],
        backend="bluez",
        monkeypatch=monkeypatch,
        settings=settings,
    ) as (central, got):
        await thermo.measure()
        await got.wait_for(lambda: len(got.of(TEMPERATURE_MEASUREMENT)) == 1)
        bluez = got.bluez
        assert bluez is not None
        # The adapter hangs: nothing heard, and StopDiscovery / StartDiscovery unanswered.
        bluez.hung = bluez.calls_hang = True
        await thermo.wait_until(lambda: not thermo.connected)
        await thermo.measure()  # heard only after the power cycle
        await got.wait_for(lambda: len(got.of(TEMPERATURE_MEASUREMENT)) == 2, timeout_s=15)
        async with asyncio.timeout(15):
            await central.scanner.running.wait()  # after the power cycle (see above)
        assert central.scanner.adapter_resets >= 1
        assert bluez.unanswered_calls >= 1
        assert central.scanner.adapter_call_timeouts >= 1
        assert bluez.power_cycles >= 1
        assert not bluez.calls_hang
    assert central.scanner.adapter_reset_failures == 0


async def test_a_hub_starting_on_an_adapter_that_does_not_answer_power_cycles_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    thermo = EmulatedThermometer(radio, "C0:00:00:00:09:03", seed=23)
    settings = dataclasses.replace(FAST, scanner_restart_delay_s=0.05, adapter_call_timeout_s=1.0)

    def hang(bluez: VirtualBlueZ) -> None:
        bluez.calls_hang = True  # the scanner's first SetDiscoveryFilter goes unanswered

    async with running(
        radio,
        [("thermometer", thermo)],
        backend="bluez",
        monkeypatch=monkeypatch,
        settings=settings,
        before_central=hang,
    ) as (central, got):
        await thermo.measure()
        await got.wait_for(lambda: len(got.of(TEMPERATURE_MEASUREMENT)) == 1)
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
