"""Every device type end to end through real bleak classes on the emulated radio, on both
backends: ``sim`` (bleak with the emulated radio's backend classes) and ``bluez`` (bleak's own
BlueZ backend over the virtual BlueZ, the same emulated devices behind it)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ble_rig import Rig

from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.glucose import EmulatedGlucoseMeter
from drivers.ble.sim.heart_rate import EmulatedHeartRateStrap
from drivers.ble.sim.pulse_oximeter import EmulatedPulseOximeter
from drivers.ble.sim.scale import EmulatedScale
from drivers.ble.sim.thermometer import EmulatedThermometer
from protocols.gatt import (
    BATTERY_LEVEL,
    BLOOD_PRESSURE_MEASUREMENT,
    GLUCOSE_MEASUREMENT,
    GLUCOSE_MEASUREMENT_CONTEXT,
    HEART_RATE_MEASUREMENT,
    INTERMEDIATE_CUFF_PRESSURE,
    MANUFACTURER_NAME,
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    TEMPERATURE_MEASUREMENT,
    WEIGHT_MEASUREMENT,
    BloodPressureMeasurement,
    GlucoseMeasurement,
    HeartRateMeasurement,
    PlxContinuousMeasurement,
    TemperatureMeasurement,
    WeightMeasurement,
    decode,
)

pytestmark = pytest.mark.parametrize("backend", ["sim", "bluez"])


async def test_thermometer_indication_decoded_with_identity_times_and_raw_bytes(rig: Rig) -> None:
    thermo = EmulatedThermometer(rig.radio, "C0:00:00:00:01:01", seed=7)
    async with rig.running(("thermometer", thermo)) as (central, got):
        payload = await thermo.measure()
        await got.wait_for(lambda: bool(got.of(TEMPERATURE_MEASUREMENT)))
        await got.wait_for(lambda: bool(got.of(BATTERY_LEVEL)))
    event = got.of(TEMPERATURE_MEASUREMENT)[0]
    assert event.raw == payload
    assert event.measurement == decode(TEMPERATURE_MEASUREMENT, payload)
    assert isinstance(event.measurement, TemperatureMeasurement)
    assert event.device == thermo.address
    assert event.kind == "thermometer"
    assert event.hub_wall_ms > 0
    assert event.hub_mono_ns > 0
    assert event.device_time is not None
    assert thermo.address not in event.label  # redacted label for logs
    status = central.status[thermo.address]
    assert status.battery_percent == thermo.battery_percent
    assert status.information[MANUFACTURER_NAME] == "narhub-sim"


async def test_blood_pressure_cuff_bonds_flushes_stored_readings_then_sleeps(rig: Rig) -> None:
    cuff = EmulatedBloodPressureCuff(
        rig.radio, "C0:00:00:00:01:02", seed=3, sleep_s=0.5, linger_s=0.1
    )
    await cuff.start()
    sent = [await cuff.measure() for _ in range(3)]  # taken while nobody listens
    async with rig.running(("blood_pressure", cuff), start_devices=False) as (central, got):
        await got.wait_for_count(BLOOD_PRESSURE_MEASUREMENT, 3)
        await cuff.wait_until(lambda: cuff.asleep)
        live = await cuff.measure(cuff_pressures_mmhg=(40, 80, 120))
        await got.wait_for_count(BLOOD_PRESSURE_MEASUREMENT, 4)
    assert [e.raw for e in got.of(BLOOD_PRESSURE_MEASUREMENT)] == [*sent, live]
    assert all(
        isinstance(e.measurement, BloodPressureMeasurement)
        for e in got.events
        if e.characteristic == BLOOD_PRESSURE_MEASUREMENT
    )
    assert central.status[cuff.address].bonded
    # Intermediate cuff pressure is display-only: decoded if it came, never a reading.
    assert all(e.measurement is not None for e in got.of(INTERMEDIATE_CUFF_PRESSURE))


async def test_scale_weight_rounded_to_feature_resolution_on_the_fixed_lsb(rig: Rig) -> None:
    scale = EmulatedScale(rig.radio, "C0:00:00:00:01:03", seed=5)
    async with rig.running(("scale", scale)) as (_central, got):
        await scale.measure("72.34")
        await got.wait_for(lambda: bool(got.of(WEIGHT_MEASUREMENT)))
    m = got.of(WEIGHT_MEASUREMENT)[0].measurement
    assert isinstance(m, WeightMeasurement)
    assert m.weight == Decimal("72.3")


async def test_pulse_oximeter_stream_spot_check_and_stored_records(rig: Rig) -> None:
    plx = EmulatedPulseOximeter(
        rig.radio, "C0:00:00:00:01:04", seed=9, interval_s=0.02, stored_records=4
    )
    async with rig.running(("pulse_oximeter", plx)) as (central, got):
        await got.wait_for(lambda: len(got.of(PLX_CONTINUOUS_MEASUREMENT)) >= 5)
        await got.wait_for_count(PLX_SPOT_CHECK_MEASUREMENT, 4)
        await plx.wait_until(lambda: not plx.racp.records)  # deleted after commit
        await plx.spot_check()
        await got.wait_for_count(PLX_SPOT_CHECK_MEASUREMENT, 5)
    stored = [e for e in got.of(PLX_SPOT_CHECK_MEASUREMENT) if e.stored]
    assert len(stored) == 4
    assert isinstance(got.of(PLX_CONTINUOUS_MEASUREMENT)[0].measurement, PlxContinuousMeasurement)
    assert central.status[plx.address].records_pending_delete == 0


async def test_glucose_meter_records_with_context_through_racp(rig: Rig) -> None:
    meter = EmulatedGlucoseMeter(rig.radio, "C0:00:00:00:01:05", seed=11, stored_records=40)
    async with rig.running(("glucose", meter)) as (central, got):
        await got.wait_for_count(GLUCOSE_MEASUREMENT, 40)
        await got.wait_for(lambda: central.cursors_committed(meter.address) == 39)
    seqs = [e.sequence_number for e in got.of(GLUCOSE_MEASUREMENT)]
    assert seqs == list(range(40))
    assert all(isinstance(e.measurement, GlucoseMeasurement) for e in got.of(GLUCOSE_MEASUREMENT))
    contexts = got.of(GLUCOSE_MEASUREMENT_CONTEXT)
    with_context = [r.sequence_number for r in meter.records if len(r.pdus) == 2]
    assert [e.sequence_number for e in contexts] == with_context
    assert central.status[meter.address].bonded


async def test_heart_rate_strap_notifications_with_rr_intervals(rig: Rig) -> None:
    strap = EmulatedHeartRateStrap(rig.radio, "C0:00:00:00:01:06", seed=13, interval_s=0.01)
    async with rig.running(("heart_rate", strap)) as (_central, got):
        await got.wait_for(lambda: len(got.of(HEART_RATE_MEASUREMENT)) >= 20)
    values = [e.measurement for e in got.of(HEART_RATE_MEASUREMENT)]
    assert all(isinstance(m, HeartRateMeasurement) and m.rr_intervals_1024th_s for m in values)
