"""GHS sessions on the emulated radio: stored observations through the GHS RACP's Combined
Report (by record number, from the committed cursor), live observations after the GHS Control
Point's start, segmentation at the default MTU, a schedule change, the Elapsed Time clock
against the hub's; and the BLS 1.1 cuff and body composition scale through the same central."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from ble_rig import FAST, running

from drivers.ble import MemoryRecordCursorStore
from drivers.ble.ghs_records import cursor_key
from drivers.ble.sim.body_composition import EmulatedBodyCompositionScale
from drivers.ble.sim.enhanced_cuff import EmulatedEnhancedCuff
from drivers.ble.sim.ghs import EmulatedGhsDevice
from drivers.ble.sim.peripheral import DeviceClock
from drivers.ble.sim.radio import SimRadio
from protocols import gatt as g
from protocols.gatt import observation as mdc
from protocols.gatt.acom import SampleArrayValue
from protocols.gatt.ghs_racp import GhsRacpOperator


async def test_stored_then_live_observations_each_once() -> None:
    radio = SimRadio()
    device = EmulatedGhsDevice(radio, "C0:00:00:00:0D:01", seed=1)
    for _ in range(6):
        await device.observe()  # nobody listens: stored, records 1-6
    cursors = MemoryRecordCursorStore()
    key = cursor_key(device.address)
    patient = dataclasses.replace(FAST, idle_disconnect_s=10.0)
    async with running(radio, [("ghs", device)], cursors=cursors, settings=patient) as (
        central,
        got,
    ):
        await got.wait_for(lambda: central.tracker(key).committed == 6)
        async with asyncio.timeout(10):
            await device.wait_until(lambda: device.live_enabled)
        live = await device.observe()
        await got.wait_for(lambda: len(got.of(g.LIVE_HEALTH_OBSERVATIONS)) == 1)
        assert await device.change_schedule(mdc.MDC_TEMP_BODY, 600)
        await got.wait_for(lambda: bool(central.status[device.address].ghs.schedules))  # type: ignore[union-attr]
        info = central.status[device.address].ghs
        assert info is not None
        assert set(info.observation_types) >= {mdc.MDC_TEMP_BODY, mdc.MDC_PRESS_BLD_NONINV}
        assert info.live_started
    stored = got.of(g.STORED_HEALTH_OBSERVATIONS)
    assert sorted(e.sequence_number for e in stored) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
    assert all(isinstance(e.measurement, g.ReceivedHealthObservation) for e in stored)
    # The plethysmogram (25 samples) needed several segments at the default MTU.
    arrays = [
        e
        for e in stored
        if isinstance(e.measurement, g.ReceivedHealthObservation)
        and isinstance(e.measurement.observation.value, SampleArrayValue)
    ]
    assert arrays
    (live_event,) = got.of(g.LIVE_HEALTH_OBSERVATIONS)
    assert isinstance(live_event.measurement, g.ReceivedHealthObservation)
    assert live_event.measurement.observation == live
    assert live_event.measurement.clock is not None  # the session's Elapsed Time read
    assert live_event.clock is not None
    assert live_event.clock.offset_s is not None
    assert abs(live_event.clock.offset_s) < 5
    assert device.racp_requests[0].operator is GhsRacpOperator.ALL_RECORDS


async def test_next_session_asks_from_the_committed_record() -> None:
    radio = SimRadio()
    device = EmulatedGhsDevice(radio, "C0:00:00:00:0D:02", seed=2)
    for _ in range(4):
        await device.observe()
    cursors = MemoryRecordCursorStore()
    key = cursor_key(device.address)
    cursors.cursors[key] = 2  # committed by an earlier run of the hub
    async with running(radio, [("ghs", device)], cursors=cursors) as (central, got):
        await got.wait_for(lambda: central.tracker(key).committed == 4)
    assert [e.sequence_number for e in got.of(g.STORED_HEALTH_OBSERVATIONS)] == [3, 4]
    assert device.racp_requests[0].minimum == 3


async def test_a_clock_off_by_an_hour_is_set_from_the_hub() -> None:
    radio = SimRadio()
    device = EmulatedGhsDevice(radio, "C0:00:00:00:0D:03", seed=3, clock=DeviceClock(offset_s=3600))
    async with running(radio, [("ghs", device)]) as (central, got):
        await got.wait_for(lambda: central.status[device.address].clock_sets == 1)
    assert abs(device.clock.now().timestamp() - time.time()) < 5


async def test_enhanced_cuff_and_body_composition_scale() -> None:
    radio = SimRadio()
    cuff = EmulatedEnhancedCuff(radio, "C0:00:00:00:0D:04", seed=4, sleep_s=0.2)
    scale = EmulatedBodyCompositionScale(radio, "C0:00:00:00:0D:05", seed=5)
    await cuff.measure()
    payloads = await scale.measure()
    assert len(payloads) == 2  # every field does not fit one value at the default MTU
    devices = [("enhanced_blood_pressure", cuff), ("body_composition", scale)]
    async with running(radio, devices) as (_central, got):
        await got.wait_for(
            lambda: (
                len(got.of(g.ENHANCED_BLOOD_PRESSURE_MEASUREMENT)) == 1
                and len(got.of(g.BODY_COMPOSITION_MEASUREMENT)) == 2
            )
        )
    (bp,) = got.of(g.ENHANCED_BLOOD_PRESSURE_MEASUREMENT)
    assert isinstance(bp.measurement, g.EnhancedBloodPressureMeasurement)
    codes = {o.mdc_code for o in g.to_observations(bp.measurement)}
    assert mdc.MDC_PRESS_BLD_NONINV_SYS in codes
    parts = [e.measurement for e in got.of(g.BODY_COMPOSITION_MEASUREMENT)]
    assert all(isinstance(p, g.BodyCompositionMeasurement) for p in parts)
    assert all(p.multiple_packet_measurement for p in parts)  # type: ignore[union-attr]
