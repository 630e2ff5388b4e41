"""Quirky devices on both backends (``sim``, and ``bluez`` over the virtual BlueZ): every
session hint of the quirk profile applied, exact readings, flagged when a quirk corrected them
(docs/protocols/phd.md 6.2; drivers/ble/hints.py; drivers/ble/sim/quirky.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TypeVar

import pytest
from ble_rig import Collector, Rig

from drivers.ble import BleCentral, MemoryRecordCursorStore
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.peripheral import DeviceClock
from drivers.ble.sim.quirky import (
    BM85_CAPTURES,
    EmulatedAndCuff,
    EmulatedBeurerBM85,
    EmulatedOmronCuff,
    EmulatedOmronRecords,
)
from gateway.pipeline import Pipeline, PipelineSettings, readings_from_event
from gateway.reading import Reading
from protocols.fhir import Filed, PatientRef, batch_resources
from protocols.gatt import (
    BLOOD_PRESSURE_MEASUREMENT,
    GLUCOSE_MEASUREMENT,
    BloodPressureMeasurement,
    BloodPressureMeasurementStatus,
    DateTime,
    MedFloat,
    RacpFilterType,
    RacpOperator,
    decode,
)

CuffT = TypeVar("CuffT", bound=EmulatedBloodPressureCuff)

pytestmark = pytest.mark.parametrize("backend", ["sim", "bluez"])

SYSTOLIC, DIASTOLIC, PULSE = (
    150021,
    150022,
    149546,
)  # MDC_PRESS_BLD_NONINV_SYS, _DIA, MDC_PULS_RATE_NON_INV


def _reading(taken: dt.datetime) -> BloodPressureMeasurement:
    return BloodPressureMeasurement(
        MedFloat.of(124),
        MedFloat.of(80),
        MedFloat.of(95),
        time_stamp=DateTime.from_datetime(taken),
        pulse_rate_bpm=MedFloat.of(72),
        user_id=1,
        measurement_status=BloodPressureMeasurementStatus(0),
    )


async def _stored_reading(cuff: EmulatedBloodPressureCuff, taken: dt.datetime) -> bytes:
    """The cuff started, a reading taken at ``taken`` (no hub listening yet); its payload."""
    await cuff.start()
    return await cuff.measure(_reading(taken))


def _cuff_with_clock(
    model: type[CuffT], rig: Rig, address: str, seed: int, *, offset_s: float
) -> CuffT:
    """A cuff of ``model`` whose clock is ``offset_s`` off the hub's (ahead when positive)."""
    clock = DeviceClock(offset_s=offset_s)
    return model(rig.radio, address, seed=seed, sleep_s=0.5, linger_s=0.3, clock=clock)


def _hub_near(
    rig: Rig, cuff: EmulatedBloodPressureCuff
) -> contextlib.AbstractAsyncContextManager[tuple[BleCentral, Collector]]:
    """A hub running near ``cuff``, which the test started (its stored readings first)."""
    return rig.running(("blood_pressure", cuff), start_devices=False)


async def _clock_written_after_a_stored_reading(
    rig: Rig, cuff: EmulatedBloodPressureCuff, taken: dt.datetime
) -> tuple[bytes, BleCentral, Collector]:
    """The cuff stores a reading taken at ``taken``; a hub comes near and hears it, writes the
    cuff's clock (early or not), and the cuff goes back to sleep. The reading's payload."""
    payload = await _stored_reading(cuff, taken)
    async with _hub_near(rig, cuff) as (central, got):
        await got.wait_for_count(BLOOD_PRESSURE_MEASUREMENT, 1)
        async with asyncio.timeout(15):
            await cuff.wait_until(lambda: cuff.clock.sets > 0 or cuff.early_clock_writes > 0)
            await cuff.wait_until(lambda: cuff.asleep)  # the session is over
    return payload, central, got


def _values(readings: Sequence[Reading]) -> dict[int, Decimal | None]:
    return {r.mdc_code: r.value for r in readings}


async def test_beurer_bm85_without_dis_is_chosen_by_name_and_its_bytes_corrected(rig: Rig) -> None:
    cuff = EmulatedBeurerBM85(rig.radio, "C0:00:00:00:08:01", seed=3, sleep_s=0.5, linger_s=0.1)
    taken = dt.datetime.now().replace(microsecond=0) - dt.timedelta(minutes=5)
    payload = await _stored_reading(cuff, taken)
    assert payload[0] == 0x56  # the BM85's flags: RFU bit 6, user id byte unflagged
    with pytest.raises(ValueError, match="0x2A35"):
        decode(BLOOD_PRESSURE_MEASUREMENT, payload)  # strict decoding refuses it
    async with _hub_near(rig, cuff) as (central, got):
        await got.wait_for_count(BLOOD_PRESSURE_MEASUREMENT, 1)
    (event,) = got.of(BLOOD_PRESSURE_MEASUREMENT)
    assert event.raw == payload
    status = central.status[cuff.address]
    assert status.information == {}  # no Device Information Service
    assert status.profile.name == "beurer-bpm"
    assert "advertised name 'BM85'" in status.profile_reason
    readings = readings_from_event(event)
    values = _values(readings)
    assert values[SYSTOLIC] == Decimal(124)
    assert values[DIASTOLIC] == Decimal(80)
    assert values[PULSE] == Decimal(72)  # big-endian on the air, exact after correction
    assert all("quirk-corrected:beurer-bpm-byte-order" in r.flags for r in readings)
    assert status.malformed == 0
    # ... all the way to FHIR: the compound Observation's note names the correction.
    wire = [r.to_wire() for r in readings]
    patient = PatientRef("https://example.org/patients", "p-1")
    (observation, *_) = batch_resources(
        "hub-q", 3, [Filed(r, patient) for r in wire], {}
    ).observations
    notes = " ".join(n["text"] for n in observation["note"])
    assert "quirk-corrected:beurer-bpm-byte-order" in notes


async def test_a_real_bm85_recording_arrives_exact_and_flagged(rig: Rig) -> None:
    """The bytes a real BM85 sent (BM85_CAPTURES), replayed by the emulated cuff: exact
    readings through the central on both backends, each flagged with the correction; the
    fourth carries the irregular pulse in its big-endian status."""
    cuff = EmulatedBeurerBM85(rig.radio, "C0:00:00:00:08:05", seed=8, sleep_s=0.5, linger_s=0.1)
    await cuff.start()
    for captured in BM85_CAPTURES:
        cuff.replay(captured)
    async with _hub_near(rig, cuff) as (central, got):
        await got.wait_for_count(BLOOD_PRESSURE_MEASUREMENT, len(BM85_CAPTURES))
    events = got.of(BLOOD_PRESSURE_MEASUREMENT)
    assert [e.raw for e in events] == list(BM85_CAPTURES)
    values = [_values(readings_from_event(e)) for e in events]
    assert [(v[SYSTOLIC], v[DIASTOLIC], v[PULSE]) for v in values] == [
        (Decimal(106), Decimal(71), Decimal(63)),
        (Decimal(113), Decimal(73), Decimal(65)),
        (Decimal(119), Decimal(70), Decimal(87)),
        (Decimal(118), Decimal(80), Decimal(60)),
    ]
    for event in events:
        readings = readings_from_event(event)
        assert all("quirk-corrected:beurer-bpm-byte-order" in r.flags for r in readings)
    assert central.status[cuff.address].malformed == 0


async def test_and_cuff_clock_set_through_date_time_after_its_settle_delay(rig: Rig) -> None:
    cuff = _cuff_with_clock(EmulatedAndCuff, rig, "C0:00:00:00:08:02", 4, offset_s=3600.0)
    taken = cuff.clock.now().replace(microsecond=0)  # stamped by the cuff's own clock
    payload, central, got = await _clock_written_after_a_stored_reading(rig, cuff, taken)
    status = central.status[cuff.address]
    assert status.profile.name == "and-medical"
    assert status.profile_reason.startswith("Device Information manufacturer 'A&D Medical'")
    assert cuff.early_clock_writes == 0  # the hub waited its settle delay before the write
    assert status.clock_sets == 1
    assert abs((cuff.clock.now() - dt.datetime.now()).total_seconds()) < 5
    (event,) = got.of(BLOOD_PRESSURE_MEASUREMENT)
    assert event.raw == payload
    assert event.clock is not None
    assert event.clock.offset_s is not None
    assert abs(event.clock.offset_s - 3600) < 5
    readings = readings_from_event(event)
    assert _values(readings)[SYSTOLIC] == Decimal(124)
    # Stamped an hour ahead, filed at the time it was taken on the hub's clock.
    source_ms = readings[0].source_wall_ms
    assert source_ms is not None
    expected_ms = (taken - dt.timedelta(seconds=3600)).timestamp() * 1000
    assert abs(source_ms - expected_ms) <= 2000
    assert any(f.startswith("device-clock-offset-s:") for f in readings[0].flags)


async def test_omron_cuff_is_bonded_before_anything_is_read(rig: Rig) -> None:
    cuff = _cuff_with_clock(EmulatedOmronCuff, rig, "C0:00:00:00:08:03", 5, offset_s=-1800.0)
    taken = dt.datetime.now().replace(microsecond=0)
    payload, central, got = await _clock_written_after_a_stored_reading(rig, cuff, taken)
    status = central.status[cuff.address]
    assert cuff.stats.unbonded_reads == 0  # nothing was read before the bond
    # The clock written right after the cuff's first Current Time notification, not before.
    assert (cuff.early_clock_writes, cuff.clock.sets, status.clock_sets) == (0, 1, 1)
    assert status.bonded
    assert status.profile.name == "omron"
    (event,) = got.of(BLOOD_PRESSURE_MEASUREMENT)
    assert event.raw == payload
    assert _values(readings_from_event(event))[SYSTOLIC] == Decimal(124)


async def test_omron_records_are_asked_for_with_omrons_filter_type(rig: Rig) -> None:
    meter = EmulatedOmronRecords(rig.radio, "C0:00:00:00:08:05", seed=7, stored_records=30)
    cursors = MemoryRecordCursorStore()
    cursors.cursors[meter.address] = 24  # committed in an earlier run of the hub
    async with rig.running(("glucose", meter), cursors=cursors) as (central, got):
        await got.wait_for(lambda: central.cursors_committed(meter.address) == 29)
    assert central.status[meter.address].profile.name == "omron"
    # Only the new records: the device answers "from sequence number 25" under 0x04 alone.
    assert [e.sequence_number for e in got.of(GLUCOSE_MEASUREMENT)] == [25, 26, 27, 28, 29]
    (request,) = meter.racp.requests
    assert request.operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO
    assert (request.filter_type, request.minimum) == (RacpFilterType.OMRON_SEQUENCE_NUMBER, 25)


async def test_a_shared_cuff_reports_its_user_slots_and_only_the_patients_is_kept(rig: Rig) -> None:
    cuff = EmulatedBeurerBM85(rig.radio, "C0:00:00:00:08:04", seed=6, sleep_s=0.5, linger_s=0.1)
    taken = dt.datetime.now().replace(microsecond=0)
    await cuff.start()
    for user, systolic in ((1, 121), (2, 151), (1, 122)):  # two people share the cuff
        m = dataclasses.replace(_reading(taken), systolic=MedFloat.of(systolic), user_id=user)
        await cuff.measure(m)
    async with _hub_near(rig, cuff) as (_central, got):
        await got.wait_for_count(BLOOD_PRESSURE_MEASUREMENT, 3)
    events = got.of(BLOOD_PRESSURE_MEASUREMENT)
    pipeline = Pipeline(None, PipelineSettings(user_slots=((cuff.address, 1),)))  # type: ignore[arg-type]
    readings = pipeline.from_events(events)
    kept = [r for r in readings if r.mdc_code == SYSTOLIC]
    assert [r.value for r in kept] == [Decimal(121), Decimal(122)]
    assert all("user-index:1" in r.flags for r in kept)
    assert pipeline.other_user_events == {cuff.address: 1}
