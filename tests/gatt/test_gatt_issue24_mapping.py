"""The observation mapping of the CGM, GHS, enhanced BP and body composition values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from protocols import gatt as g
from protocols.gatt import acom, cgm
from protocols.gatt import body_composition as bc
from protocols.gatt import enhanced_bp as ebp
from protocols.gatt import observation as obs
from protocols.gatt.blood_pressure import BloodPressureMeasurement
from protocols.gatt.datetime_ import DateTime
from protocols.gatt.elapsed_time import ElapsedTime, TimeResolution
from protocols.gatt.ghs import ReceivedHealthObservation, StoredHealthObservation
from protocols.gatt.mapping.ghs import UCUM_BY_MDC_DIM
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.weight import WeightUnitSystem

START = cgm.CgmSessionStartTime(DateTime(2026, 3, 1, 8, 0, 0), 4, cgm.DstOffset.STANDARD_TIME)


def _record(offset: int, value: int, **extra: object) -> cgm.CgmMeasurementRecord:
    return cgm.CgmMeasurementRecord(MedFloat.of(value), offset, **extra)  # type: ignore[arg-type]


def test_cgm_records_are_timed_from_their_session_start() -> None:
    m = cgm.CgmMeasurement(
        (
            _record(5, 104),
            _record(
                10,
                110,
                status_octet=0x02,
                trend_mg_dl_per_min=MedFloat(Decimal("1.2"), None),
                quality_percent=MedFloat.of(95),
            ),
        )
    )
    out = g.to_observations(cgm.CgmSessionMeasurement(m, START))
    glucose = [o for o in out if o.mdc_code == obs.MDC_CONC_GLU_ISF]
    assert [o.value for o in glucose] == [Decimal(104), Decimal(110)]
    assert {o.loinc for o in glucose} == {"99504-3"}
    assert {o.unit for o in glucose} == {"mg/dL"}
    assert [o.timestamp for o in glucose] == [
        dt.datetime(2026, 3, 1, 8, 5),
        dt.datetime(2026, 3, 1, 8, 10),
    ]
    assert "cgm-quality-percent:95" in glucose[1].flags
    assert "device-battery-low" in glucose[1].flags
    (trend,) = [o for o in out if o.mdc_code == obs.MDC_CONC_GLU_TREND]
    assert trend.value == Decimal("1.2")
    assert trend.unit == "mg/dL/min"
    assert "component-of:160212" in trend.flags
    assert trend.timestamp == glucose[1].timestamp


def test_cgm_without_a_session_start_has_no_time() -> None:
    (o,) = g.to_observations(cgm.CgmMeasurement((_record(5, 99),)))
    assert o.timestamp is None
    assert "device-time-unknown" in o.flags


def _stamp(seconds: int, *, ticks: bool = False) -> ElapsedTime:
    return ElapsedTime(seconds, TimeResolution.SECOND, tick_counter=ticks, utc=not ticks)


def test_ghs_numeric_compound_discrete_string_and_sample_array() -> None:
    temperature = acom.HealthObservation(
        acom.NumericValue(6048, MedFloat(Decimal("36.8"), None)),
        observation_type=obs.MDC_TEMP_BODY,
        time_stamp=_stamp(826_000_000),
        patient_id=1,
    )
    (t,) = g.to_observations(temperature)
    assert (t.mdc_code, t.value, t.unit, t.user_id) == (150364, Decimal("36.8"), "Cel", 1)
    assert t.timestamp == dt.datetime(2026, 3, 5, 4, 26, 40, tzinfo=dt.UTC)
    bp = acom.HealthObservation(
        acom.CompoundValue(
            tuple(
                acom.CompoundComponent(code, acom.NumericValue(3872, MedFloat.of(v)))
                for code, v in ((150021, 120), (150022, 80), (150023, 93))
            )
        ),
        observation_type=obs.MDC_PRESS_BLD_NONINV,
    )
    parts = g.to_observations(bp)
    assert [(o.mdc_code, o.unit) for o in parts] == [
        (150021, "mm[Hg]"),
        (150022, "mm[Hg]"),
        (150023, "mm[Hg]"),
    ]
    assert all("component-of:150020" in o.flags for o in parts)
    (coded,) = g.to_observations(
        acom.HealthObservation(acom.DiscreteValue(8417868), observation_type=obs.MDC_CTXT_GLU_MEAL)
    )
    assert (coded.value, coded.coded_value, coded.unit) == (None, 8417868, "")
    (text,) = g.to_observations(
        acom.HealthObservation(acom.StringValue("calm"), observation_type=68512)
    )
    assert text.special == "text"
    assert "text:calm" in text.flags
    wave = acom.HealthObservation(
        acom.SampleArrayValue(
            4274,
            MedFloat(Decimal("0.01"), None),
            MedFloat(Decimal(-1), None),
            MedFloat(Decimal("0.1"), None),
            25,
            1,
            bytes([100, 110, 120]),
        ),
        observation_type=131329,
    )
    (w,) = g.to_observations(wave)
    assert w.value == Decimal("0.00")  # 100 x 0.01 - 1, the first sample
    assert w.unit == "mV"
    assert "sampled-data:4 0.01 -1 100 110 120" in w.flags


def test_ghs_stored_record_number_bundle_and_tick_counter() -> None:
    member = acom.HealthObservation(
        acom.NumericValue(2720, MedFloat.of(61)), observation_type=obs.MDC_PULS_RATE_NON_INV
    )
    bundle = acom.HealthObservation(
        acom.BundleValue((member, member)), time_stamp=_stamp(1_000, ticks=True), patient_id=2
    )
    collector = dt.datetime(2026, 3, 5, 12, 0, tzinfo=dt.UTC)
    received = ReceivedHealthObservation(bundle, 7, _stamp(1_600, ticks=True), collector)
    out = g.to_observations(received)
    assert len(out) == 2
    assert {o.timestamp for o in out} == {collector - dt.timedelta(seconds=600)}
    assert all("time-from-tick-counter" in o.flags and o.user_id == 2 for o in out)
    assert {o.sequence_number for o in out} == {7}
    # Without the session's Elapsed Time read, a tick stamp is no time.
    stored = g.to_observations(StoredHealthObservation(7, bundle))
    assert {o.timestamp for o in stored} == {None}
    assert all("device-time-unknown" in o.flags for o in stored)


def test_ghs_units_are_ucum() -> None:
    assert UCUM_BY_MDC_DIM[544] == "%"
    (o,) = g.to_observations(
        acom.HealthObservation(acom.NumericValue(9999, MedFloat.of(1)), observation_type=1)
    )
    assert o.unit == "{MDC_DIM_9999}"


def test_enhanced_bp_maps_as_classic_bp() -> None:
    enhanced = ebp.EnhancedBloodPressureMeasurement(
        MedFloat.of(128),
        MedFloat.of(82),
        MedFloat.of(97),
        user_facing_time_s=826_000_000,
        pulse_rate_bpm=MedFloat.of(66),
        user_id=1,
    )
    classic = BloodPressureMeasurement(
        MedFloat.of(128),
        MedFloat.of(82),
        MedFloat.of(97),
        time_stamp=DateTime(2026, 3, 5, 4, 26, 40),
        pulse_rate_bpm=MedFloat.of(66),
        user_id=1,
    )
    assert g.to_observations(enhanced) == g.to_observations(classic)


def test_body_composition() -> None:
    m = bc.BodyCompositionMeasurement(
        Decimal("23.4"),
        fat_free_mass=Decimal("55.250"),
        body_water_mass=Decimal("40.000"),
        impedance_ohm=Decimal("512.3"),
        weight=Decimal("72.150"),
        height=Decimal("1.780"),
        time_stamp=DateTime(2026, 3, 5, 7, 0, 0),
    )
    out = {o.mdc_code: o for o in g.to_observations(m)}
    assert out[obs.MDC_BODY_FAT].value == Decimal("23.4")
    assert out[obs.MDC_BODY_FAT].unit == "%"
    assert out[obs.MDC_MASS_BODY_FAT_FREE].unit == "kg"
    assert out[obs.MDC_BODY_WATER].value == Decimal("40.000")
    assert out[obs.MDC_MASS_BODY_ACTUAL].loinc == "29463-7"
    assert out[obs.MDC_LEN_BODY_ACTUAL].value == Decimal("178.0")
    # Impedance: MDC_BODY_ELECTRICAL_IMPEDANCE in Ohm (the public encoder table's term
    # 57708 of the SCADA partition, docs/protocols/phd.md 2.12); body fat has LOINC 41982-0.
    assert out[obs.MDC_BODY_ELECTRICAL_IMPEDANCE].value == Decimal("512.3")
    assert out[obs.MDC_BODY_ELECTRICAL_IMPEDANCE].unit == "Ohm"
    assert obs.MDC_BODY_ELECTRICAL_IMPEDANCE == 2 * 65536 + 57708
    assert out[obs.MDC_BODY_FAT].loinc == "41982-0"
    assert len(out) == 6


def test_body_composition_every_field() -> None:
    """Every BCS 1.0 field becomes an observation with its UCUM unit (imperial masses in
    [lb_av]); the terms are SCADA partition 57676-57708 (observation.py names the source)."""
    m = bc.BodyCompositionMeasurement(
        Decimal("23.4"),
        unit_system=WeightUnitSystem.IMPERIAL,
        basal_metabolism_kj=Decimal(6500),
        muscle_percent=Decimal("41.2"),
        muscle_mass=Decimal("66.30"),
        soft_lean_mass=Decimal("120.10"),
    )
    out = {o.mdc_code: (o.value, o.unit) for o in g.to_observations(m)}
    assert out == {
        2 * 65536 + 57676: (Decimal("23.4"), "%"),
        2 * 65536 + 57696: (Decimal(6500), "kJ"),
        2 * 65536 + 57700: (Decimal("41.2"), "%"),
        2 * 65536 + 57704: (Decimal("66.30"), "[lb_av]"),
        2 * 65536 + 57688: (Decimal("120.10"), "[lb_av]"),
    }
    (failed,) = g.to_observations(bc.BodyCompositionMeasurement(None))
    assert failed.special == "nan"
    assert "measurement-unsuccessful" in failed.flags
