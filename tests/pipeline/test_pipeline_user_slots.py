"""Shared cuffs: the user index travels with a reading; other users' readings stay home."""

from __future__ import annotations

from pathlib import Path

from hub_configs import provisioned
from typer.testing import CliRunner

from drivers.ble import MeasurementEvent
from gateway.config import load_config, render_config
from gateway.hub import pipeline_settings
from gateway.pipeline import USER_INDEX_FLAG, Pipeline, PipelineSettings, readings_from_event
from protocols.gatt import (
    BLOOD_PRESSURE_MEASUREMENT,
    BloodPressureMeasurement,
    MedFloat,
    decode,
    encode,
)
from rig.broker import RigPki
from technician.cli import app
from technician.pairing import with_device

CUFF = "C0:00:00:00:0B:01"


def _event(user_id: int | None, systolic: int = 120) -> MeasurementEvent:
    m = BloodPressureMeasurement(
        MedFloat.of(systolic), MedFloat.of(80), MedFloat.of(93), user_id=user_id
    )
    raw = encode(m)
    return MeasurementEvent(
        device=CUFF,
        characteristic=BLOOD_PRESSURE_MEASUREMENT,
        raw=raw,
        measurement=decode(BLOOD_PRESSURE_MEASUREMENT, raw),
        error=None,
        hub_wall_ms=1_764_000_000_000,
        hub_mono_ns=1,
        kind="blood_pressure",
        label="blood_pressure-x",
    )


def test_the_user_index_travels_as_a_flag() -> None:
    readings = readings_from_event(_event(2))
    assert readings
    assert all(f"{USER_INDEX_FLAG}:2" in r.flags for r in readings)
    assert all(f"{USER_INDEX_FLAG}:2" in r.to_wire().flags for r in readings)
    # No User ID field, or the unknown user (0xFF, BLS 1.0): no flag.
    assert not any(USER_INDEX_FLAG in f for r in readings_from_event(_event(None)) for f in r.flags)
    assert not any(USER_INDEX_FLAG in f for r in readings_from_event(_event(0xFF)) for f in r.flags)


def test_other_slots_are_counted_not_forwarded() -> None:
    pipeline = Pipeline(None, PipelineSettings(user_slots=((CUFF, 1),)))  # type: ignore[arg-type]
    events = [_event(1, 121), _event(2, 150), _event(None, 122), _event(0xFF, 123), _event(2)]
    readings = pipeline.from_events(events)
    systolic = sorted(int(r.value) for r in readings if r.mdc_code == 150021 and r.value)
    assert systolic == [121, 122, 123]  # slot 1, and those that name no user, are kept
    assert pipeline.other_user_events == {CUFF: 2}
    unshared = Pipeline(None, PipelineSettings())  # type: ignore[arg-type]
    assert len([r for r in unshared.from_events(events) if r.mdc_code == 150021]) == 5


def test_the_technician_sets_the_slot_and_the_hub_reads_it(tmp_path: Path, rig_pki: RigPki) -> None:
    path = tmp_path / "narhub.toml"
    config = provisioned(path, rig_pki, "hub-slots-1", tmp_path / "d")
    path.write_text(render_config(with_device(config, CUFF, "blood_pressure")))
    runner = CliRunner()
    result = runner.invoke(app, ["devices", "user-index", CUFF, "2", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.stdout
    hub = load_config(path)
    assert pipeline_settings(hub).user_slots == ((CUFF, 2),)
    # Re-pairing after a battery change keeps the slot.
    again = with_device(hub, CUFF, "blood_pressure")
    assert again.ble.devices[0].user_index == 2
    bad = runner.invoke(app, ["devices", "user-index", CUFF, "300", "-c", str(path), "--json"])
    assert bad.exit_code != 0
    unknown = runner.invoke(
        app, ["devices", "user-index", "C0:00:00:00:0B:09", "1", "-c", str(path), "--json"]
    )
    assert unknown.exit_code != 0
    cleared = runner.invoke(app, ["devices", "user-index", CUFF, "-c", str(path), "--json"])
    assert cleared.exit_code == 0
    assert pipeline_settings(load_config(path)).user_slots == ()
