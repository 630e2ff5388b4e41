"""``narhub demo --duration S --out DIR --json``: the whole product, its files and summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hil_rig import Rig

from protocols.fhir import is_measurement

pytestmark = [pytest.mark.broker, pytest.mark.micropython, pytest.mark.slow]

PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
#: A component that is not a reading (PHD IG supplementalTypesComponent).
SUPPLEMENTAL_TYPES = "68193"


def _profiles(resource: dict[str, Any]) -> list[str]:
    return list(resource.get("meta", {}).get("profile", []))


def _readings(resource: dict[str, Any]) -> int:
    parts = [
        c
        for c in resource.get("component", [])
        if c["code"]["coding"][0]["code"] != SUPPLEMENTAL_TYPES
    ]
    if PHD + "PhdCompoundNumericObservation" in _profiles(resource):
        return len(parts)
    return 1 + len(parts)


def test_demo_leaves_ledger_fhir_and_an_explained_summary(rig: Rig, tmp_path: Path) -> None:
    """The FHIR file holds Observations and the Devices and coincident time stamps they
    reference. Readings are counted in Observations: a blood pressure is one compound
    Observation of three readings (systolic, diastolic, mean; PHD IG 2.0.0
    PhdCompoundNumericObservation), a CGM glucose one Observation of two (its trend a
    component), every other Observation one reading."""
    rig.require("ble:thermometer", "ble:glucose", "board")  # the demo runs the virtual home
    out = tmp_path / "demo"
    narhub = str(Path(sys.executable).parent / "narhub")
    done = subprocess.run(
        [narhub, "demo", "--duration", "10", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.stdout.lstrip().startswith("{"), done.stdout + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    kinds = summary["kinds"]
    # Every kind exact, glucose included (the glucose shortfall was the emulated adapter
    # keeping a timed-out connection attempt pending: tests/ble/test_ble_connect_cancel.py).
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert summary["ok"] is True
    assert summary == json.loads((out / "summary.json").read_text())
    for kind in (
        "thermometer",
        "blood_pressure",
        "scale",
        "pulse_oximeter",
        "glucose",
        "cgm",
        "ghs",
        "enhanced_blood_pressure",
        "body_composition",
    ):
        # Exact, or a measurement a device gave up to the radio just before the plug was
        # pulled, named as such (rig/showcase.py, POWER_CUT_WINDOW_MS): never a silent gap.
        k = kinds[kind]
        assert k["missing"] == 0, kind
        assert k["produced"] == k["delivered"] + k["lost_in_power_cut"], kind
        assert k["delivered"] > 0, kind
    assert kinds["air-temperature"]["missing"] == 0
    cut = sum(k["lost_in_power_cut"] for k in kinds.values())
    # Both recipients (docs/consent.md): the municipality got exactly what its consent covers.
    municipality = summary["recipients"]["municipality"]
    assert municipality["exact"] is True
    assert set(municipality["received"]) <= {"vital-signs", "activity"}
    assert municipality["received"]["vital-signs"] > 0
    assert (out / "municipality-observations.ndjson").exists()
    ledger = (out / "ledger.jsonl").read_text().splitlines()
    fhir = [json.loads(line) for line in (out / "observations.ndjson").read_text().splitlines()]
    observations = [r for r in fhir if is_measurement(r)]
    compound = [r for r in observations if PHD + "PhdCompoundNumericObservation" in _profiles(r)]
    # Readings: a compound's components, a value with its components (a CGM trend), or one.
    readings = sum(_readings(r) for r in observations)
    assert readings >= sum(k["delivered"] for k in kinds.values())
    assert len(ledger) == sum(k["produced"] for k in kinds.values())
    # The demo day is enrolled: every Observation names the patient; the cuff's three
    # measurements are three compound Observations; Devices and coincident time stamps.
    shapes = summary["fhir"]
    assert shapes["unattributed"] == 0
    assert shapes["with_patient_subject"] == shapes["observations"] == len(observations)
    # Three classic cuff readings, two BLS 1.1 ones, two GHS blood pressures (of ten), less
    # any a power cut took (each lost measurement takes one at most).
    assert shapes["compound_blood_pressure"] == len(compound)
    assert 7 - cut <= len(compound) <= 7
    assert 2 - cut <= shapes["waveforms"] <= 2  # the GHS device's plethysmograms
    assert shapes["phd_devices"] == 9
    assert shapes["gateway_devices"] == 1
    assert shapes["coincident_time_stamps"] > 0
    assert {r["subject"]["identifier"]["value"] for r in observations} == {"demo-day-0001"}
    # No live view without a TTY: the JSON is the whole of stdout.
    assert done.stdout.lstrip().startswith("{")
