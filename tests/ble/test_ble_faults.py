"""Clock drift, slots, malformed payloads, bonding and the injected faults of every kind, on
both backends (``sim``, and ``bluez`` over the virtual BlueZ)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from ble_rig import FAST, Rig

from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.heart_rate import EmulatedHeartRateStrap
from drivers.ble.sim.peripheral import DeviceClock
from drivers.ble.sim.scale import EmulatedScale
from drivers.ble.sim.thermometer import EmulatedThermometer
from gateway.pipeline import readings_from_event
from protocols import gatt as g
from protocols.uplink.undecoded import is_undecoded

pytestmark = pytest.mark.parametrize("backend", ["sim", "bluez"])


async def test_clock_drift_is_recorded_with_the_readings_and_corrected(rig: Rig) -> None:
    hub_now = dt.datetime(2026, 3, 1, 9, 0, 0)
    settings = dataclasses.replace(FAST, clock_max_offset_s=60.0, hub_clock=lambda: hub_now)
    clock = DeviceClock(hub_now, offset_s=900.0, drift_ppm=250.0)  # 15 min fast and drifting
    scale = EmulatedScale(rig.radio, "C0:00:00:00:03:01", seed=31, clock=clock)
    await scale.start()
    await scale.measure("80.0")  # stamped by the wrong clock
    async with rig.running(("scale", scale), settings=settings, start_devices=False) as (
        central,
        got,
    ):
        await got.wait_for(lambda: bool(got.of(g.WEIGHT_MEASUREMENT)))
        await scale.wait_until(lambda: clock.sets == 1)
        await scale.wait_until(lambda: not scale.connected)  # the session finished
    event = got.of(g.WEIGHT_MEASUREMENT)[0]
    assert event.clock is not None
    assert event.clock.offset_s is not None
    assert 899 <= event.clock.offset_s <= 902
    # Read first, recorded, then set (docs/protocols/phd.md 4): the reading flushed on subscribe
    # carries the offset of the timeline it was stamped on.
    status_clock = central.status[scale.address].clock
    assert status_clock is not None
    assert status_clock.adjusted
    assert clock.sets == 1
    assert abs((clock.now() - hub_now).total_seconds()) < 5
    assert central.status[scale.address].clock_sets == 1
    flags = {f for r in readings_from_event(event) for f in r.flags}
    assert any(f.startswith("device-clock-offset-s:90") for f in flags)


async def test_clock_within_the_limit_is_left_alone(rig: Rig) -> None:
    scale = EmulatedScale(rig.radio, "C0:00:00:00:03:02", seed=32, clock=DeviceClock(offset_s=5.0))
    async with rig.running(("scale", scale)) as (central, got):
        await scale.measure("70.0")
        await got.wait_for(lambda: bool(got.of(g.WEIGHT_MEASUREMENT)))
    assert scale.clock.sets == 0
    assert central.status[scale.address].clock is not None
    assert not got.of(g.WEIGHT_MEASUREMENT)[0].clock.adjusted  # type: ignore[union-attr]


async def test_more_devices_than_slots_all_served_fairly(rig: Rig) -> None:
    thermos = [
        EmulatedThermometer(rig.radio, f"C0:00:00:00:03:1{i}", name=f"t{i}", seed=40 + i)
        for i in range(5)
    ]
    settings = dataclasses.replace(FAST, max_connections=2, idle_disconnect_s=0.2)
    async with rig.running(*[("thermometer", t) for t in thermos], settings=settings) as (
        central,
        got,
    ):
        for t in thermos:
            await t.measure()
        await got.wait_for(lambda: len({e.device for e in got.of(g.TEMPERATURE_MEASUREMENT)}) == 5)
        assert central.slots.max_in_use == 2
    assert len(got.of(g.TEMPERATURE_MEASUREMENT)) == 5


async def test_malformed_payload_is_counted_reported_and_the_session_goes_on(rig: Rig) -> None:
    thermo = EmulatedThermometer(rig.radio, "C0:00:00:00:03:21", seed=51)
    thermo.faults.malformed_next = 1
    async with rig.running(("thermometer", thermo)) as (central, got):
        await thermo.measure()
        await thermo.measure()
        await got.wait_for_count(g.TEMPERATURE_MEASUREMENT, 2)
    bad, good = got.of(g.TEMPERATURE_MEASUREMENT)
    assert bad.measurement is None
    assert bad.error is not None
    assert len(bad.raw) == 2
    (raw,) = readings_from_event(bad)  # kept as a raw record, not dropped
    assert raw.special == "hex:" + bad.raw.hex()
    assert is_undecoded(raw.to_wire())
    assert good.measurement is not None
    assert central.status[thermo.address].malformed == 1
    assert central.malformed == 1


async def test_device_that_needs_bonding_refuses_until_paired_and_reencrypts_later(
    rig: Rig,
) -> None:
    scale = EmulatedScale(rig.radio, "C0:00:00:00:03:31", seed=61, bonding_required=True)
    async with rig.running(("scale", scale)) as (central, got):
        await scale.measure("65.5")
        await got.wait_for_count(g.WEIGHT_MEASUREMENT, 1)
        first_sessions = central.status[scale.address].sessions
        await scale.wait_until(lambda: not scale.connected)  # idle: the session ended
        await scale.measure("65.6")  # next session: the stored bond encrypts the link
        await got.wait_for_count(g.WEIGHT_MEASUREMENT, 2)
        assert central.status[scale.address].sessions > first_sessions
    assert central.status[scale.address].bonded
    assert rig.radio.central_keys() == {scale.address}


async def test_refused_connections_and_out_of_range_are_retried(rig: Rig) -> None:
    cuff = EmulatedBloodPressureCuff(
        rig.radio, "C0:00:00:00:03:41", seed=71, sleep_s=0.2, linger_s=0.05
    )
    cuff.faults.refuse_connections = 2
    async with rig.running(("blood_pressure", cuff)) as (central, got):
        await cuff.measure()
        await got.wait_for_count(g.BLOOD_PRESSURE_MEASUREMENT, 1)
        assert cuff.stats.refused == 2
        await cuff.go_out_of_range()
        await cuff.measure()
        cuff.come_back_in_range()
        await got.wait_for_count(g.BLOOD_PRESSURE_MEASUREMENT, 2)
    assert central.status[cuff.address].failures


async def test_stalled_response_times_out_and_the_device_is_retried(rig: Rig) -> None:
    meter = EmulatedGlucoseMeter(rig.radio, "C0:00:00:00:03:51", seed=81, stored_records=3)
    meter.faults.stall_reads_s[g.CURRENT_TIME] = 5.0
    async with rig.running(("glucose", meter)) as (central, got):
        await got.wait_for(lambda: central.status[meter.address].failures.get("stalled", 0) >= 1)
        meter.faults.stall_reads_s.clear()
        await got.wait_for(lambda: central.cursors_committed(meter.address) == 2)


async def test_watchdog_restarts_a_silent_scanner(rig: Rig) -> None:
    strap = EmulatedHeartRateStrap(rig.radio, "C0:00:00:00:03:61", seed=91, interval_s=0.02)
    settings = dataclasses.replace(FAST, scanner_watchdog_s=0.3)
    async with rig.running(("heart_rate", strap), settings=settings) as (central, got):
        await got.wait_for(lambda: len(got.of(g.HEART_RATE_MEASUREMENT)) >= 3)
        starts = rig.radio.scanner_starts
        rig.radio.stall_scanner()
        await got.wait_for(
            lambda: rig.radio.scanner_starts > starts and not rig.radio.scanner_stalled
        )
        assert central.scanner.restarts >= 1
