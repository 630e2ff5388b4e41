"""The devices home care is moving to, in a whole home: a CGM that loses the hub for three
hours (and the hub restarts meanwhile), and a Generic Health Sensor with live and stored
observations beside a BLS 1.1 cuff and a body composition scale. The region's FHIR output
must hold every ledger reading exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hil_rig import Home, Rig, until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CGM = "C0:FF:EE:00:24:01"
PHD = "http://hl7.org/fhir/uv/phd/StructureDefinition/"


def _output(workdir: Path) -> Path:
    """The region's FHIR output of the home in ``workdir`` (rig.home.VirtualHomeRig)."""
    return workdir / "region" / "observations.ndjson"


GHS = "C0:FF:EE:00:25:01"


def _cgm_records(home: Home) -> int:
    return len({e.seq for e in home.ledger() if e.kind == "cgm"})


async def test_cgm_gap_and_hub_restart_every_record_once(rig: Rig, workdir: Path) -> None:
    rig.require("ble:cgm", "ble-range", "hub-power")
    async with rig.home("cgm_gap", workdir) as home:
        # In the sensor's three hours out of range (records 48 to 83), the hub dies and
        # comes back: its committed cursor is all it keeps.
        await until(lambda: _cgm_records(home) >= 60, 90, "the CGM out of range")
        home.kill_hub()
        await until(lambda: _cgm_records(home) >= 72, 90, "more records made unheard")
        await home.start_hub()
        await home.wait_rig_done(timeout_s=120)
        result = await home.wait_delivered(timeout_s=90)
        facts = home.rig_facts()
    assert result.exact, result.explain()
    assert _cgm_records(home) == 144
    assert result.produced["cgm"] == result.delivered["cgm"]
    assert result.produced["cgm"] >= 144  # the glucose values, and their trends
    stats = facts["device_stats"][CGM]
    # The gap was closed by a backfill from the committed cursor (a Time Offset, minutes),
    # near where the sensor left (offset 240), not by "report all" again.
    resumed = [r for r in stats["racp_requests"] if r[0] == "GREATER_THAN_OR_EQUAL_TO"]
    assert resumed, stats
    assert max(minimum for _, minimum in resumed) >= 200, stats


async def test_ghs_live_and_stored_with_the_new_cuff_and_scale(rig: Rig, workdir: Path) -> None:
    rig.require("ble:ghs", "ble:enhanced_blood_pressure", "ble:body_composition", "ble-range")
    async with rig.home("ghs_day", workdir) as home:
        await home.wait_rig_done(timeout_s=120)
        result = await home.wait_delivered(timeout_s=90)
        facts = home.rig_facts()
    assert result.exact, result.explain()
    # Live and stored observations alike are Observations of the IG's profiles, by class.
    resources = [json.loads(line) for line in _output(workdir).read_text().splitlines()]
    device_id = "phd-" + GHS.replace(":", "")
    device = [r for r in resources if r["resourceType"] == "Device" and r["id"] == device_id]
    assert device, "the GHS device has no Device resource"
    assert PHD + "PhdDevice" in device[0]["meta"]["profile"]
    profiles = [
        p.removeprefix(PHD)
        for r in resources
        if r["resourceType"] == "Observation"
        and r.get("device", {}).get("reference") == f"Device/{device_id}"
        for p in r.get("meta", {}).get("profile", [])
    ]
    assert set(profiles) == {
        "PhdNumericObservation",
        "PhdCompoundNumericObservation",
        "PhdRtsaObservation",
        "PhdCodedEnumerationObservation",
    }, profiles
    stats = facts["device_stats"][GHS]
    assert stats["live_sent"] > 0, stats
    assert stats["stored_sent"] > 0, stats
    assert (
        result.delivered["enhanced_blood_pressure"]
        == result.produced["enhanced_blood_pressure"]
        > 0
    )
    assert result.delivered["body_composition"] == result.produced["body_composition"] > 0
