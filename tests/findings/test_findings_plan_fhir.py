"""Care plans (validation naming the key, windows across midnight and daylight saving, the
CLI), status documents (property tests) and findings as FHIR (validated with the R4B
models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from findings_helpers import PLAN, at
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from region.findings.errors import StatusDocumentError
from region.findings.facts import DeviceStatus, HubStatus, parse_status, status_json
from region.findings.fhir import resource
from region.findings.model import Finding, Kind
from region.findings.plan import PlanError, format_duration, parse_duration, parse_plan
from technician.cli import app


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"zone": "Mars/Olympus"}, "zone"),
        ({"expect": [{"measure": "blood-pressure", "by": "25:00"}]}, "expect[0].by"),
        ({"expect": [{"measure": "bp", "by": "10:00"}]}, "expect[0].measure"),
        ({"expect": [{"measure": "spo2", "from": "07:00", "by": "07:00"}]}, "expect[0].from"),
        ({"expect": [{"measure": "sensor-board", "max_gap": "15 minutes"}]}, "expect[0].max_gap"),
        ({"expect": [{"measure": "sensor-board"}]}, "expect[0].max_gap"),
        ({"expect": [{"measure": "spo2", "by": "07:00", "every": "day"}]}, "expect[0].every"),
        ({"limits": {"battery_low_percent": 120}}, "limits.battery_low_percent"),
        ({"limits": {"hub_silent_after": "PT0M"}}, "limits.hub_silent_after"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_plan_names_its_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan({**PLAN, **change})
    assert caught.value.key == key
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{key}: ")


def test_windows_keep_local_times_across_daylight_saving_and_midnight() -> None:
    plan = parse_plan(PLAN)
    bp, _, spo2, _ = plan.expect
    # Sweden moves to summer time on 29 March 2026: 10:00 stays 10:00 local.
    windows = plan.windows(bp, at(28, 0), at(31, 0))
    assert [w.by_ms for w in windows] == [at(28, 10), at(29, 10), at(30, 10)]
    assert windows[1].by_ms - windows[0].by_ms == 23 * 3_600_000
    night = plan.windows(spo2, at(2, 12), at(3, 12))
    assert [(w.start_ms, w.by_ms) for w in night] == [(at(2, 22), at(3, 7))]


@given(st.integers(min_value=1, max_value=10**9).map(lambda s: s * 1000))
def test_durations_round_trip(ms: int) -> None:
    assert parse_duration("k", format_duration(ms)) == ms


def test_plan_round_trips_through_its_json() -> None:
    plan = parse_plan(PLAN)
    assert parse_plan(json.loads(json.dumps(plan.to_json()))) == plan


def test_plan_cli_sets_shows_and_refuses(tmp_path: Path) -> None:
    runner = CliRunner()
    state = tmp_path / "s.db"
    good = tmp_path / "plan.json"
    good.write_text(json.dumps(PLAN))
    base = ["region", "plan"]
    who = ["--state", str(state), "--patient", "pat-0001"]
    result = runner.invoke(app, [*base, "set", *who, "--file", str(good), "--json"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, [*base, "show", *who, "--json"])
    assert json.loads(shown.output)["plan"]["expect"][0]["by"] == "10:00"
    bad = tmp_path / "bad.toml"
    bad.write_text('zone = "Europe/Stockholm"\n[[expect]]\nmeasure = "blood-pressure"\nby = "9"\n')
    refused = runner.invoke(app, [*base, "set", *who, "--file", str(bad), "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.output)["error"].startswith("expect[0].by: '9' is not a time")
    nobody = runner.invoke(app, [*base, "show", "--state", str(state), "--patient", "x", "--json"])
    assert nobody.exit_code == 1


_STATUS = st.builds(
    HubStatus,
    st.just("hub-0001"),
    st.sampled_from(["online", "offline"]),
    st.none() | st.integers(0, 2**53),
    st.none() | st.integers(0, 2**31),
    st.lists(
        st.builds(
            DeviceStatus,
            st.integers(0, 1023),
            st.sampled_from(["blood_pressure", "scale"]),
            st.booleans(),
            st.none() | st.integers(0, 100),
        ),
        max_size=5,
    ).map(tuple),
)


@given(_STATUS)
def test_status_documents_round_trip(status: HubStatus) -> None:
    assert parse_status("hub-0001", json.dumps(status_json(status)).encode()) == status


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_status_or_a_named_error(payload: bytes) -> None:
    try:
        parse_status("hub-0001", payload)
    except StatusDocumentError as exc:
        field = exc.field
    else:
        field = "parsed"
    assert field


def test_a_status_of_another_hub_is_refused() -> None:
    doc = status_json(HubStatus("hub-0002", "online", 1, 1, ()))
    with pytest.raises(StatusDocumentError) as caught:
        parse_status("hub-0001", json.dumps(doc).encode())
    assert caught.value.field == "hub"


def _finding(kind: Kind, **changes: object) -> Finding:
    base = {
        "id": 7,
        "key": "k",
        "kind": kind,
        "evidence": "e",
        "hub": "hub-0001",
        "patient": "urn:narhub:patient-pseudonym|pat-0001",
        "device": "C0:FF:EE:00:00:02",
        "opened_ms": at(2, 10),
        "noticed_ms": at(2, 10),
        "closed_ms": None,
        "detail": {"measure": "blood-pressure", "mdc_code": 150021, "offset_s": 400},
    }
    return Finding(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(Kind))
def test_findings_are_valid_fhir(kind: Kind) -> None:
    from fhir.resources.R4B.detectedissue import DetectedIssue
    from fhir.resources.R4B.task import Task

    for finding in (
        _finding(kind),
        _finding(kind, ack_by="nurse@example.org", ack_ms=at(2, 11)),
        _finding(kind, closed_ms=at(2, 12), ack_by="nurse@example.org", ack_ms=at(2, 11)),
    ):
        out = resource(finding)
        model = DetectedIssue if out["resourceType"] == "DetectedIssue" else Task
        model.model_validate(out)
    assert resource(_finding(kind))["resourceType"] == (
        "DetectedIssue" if kind in {Kind.ALERT, Kind.CLOCK_OFF} else "Task"
    )


def test_task_follows_the_finding_lifecycle() -> None:
    assert resource(_finding(Kind.MISSED))["status"] == "requested"
    acked = resource(_finding(Kind.MISSED, ack_by="n", ack_ms=at(2, 11)))
    assert (acked["status"], acked["owner"]["identifier"]["value"]) == ("accepted", "n")
    done = resource(_finding(Kind.MISSED, closed_ms=at(2, 12)))
    assert done["status"] == "completed"
    assert done["executionPeriod"]["end"].startswith("2026-03-02T11:00")
    issue = resource(_finding(Kind.ALERT, closed_ms=at(2, 12), ack_by="n", ack_ms=at(2, 11)))
    assert (issue["status"], issue["mitigation"][0]["author"]["identifier"]["value"]) == (
        "final",
        "n",
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_NEAR_PLAN = st.fixed_dictionaries(
    {
        "expect": st.lists(
            st.dictionaries(
                st.sampled_from(["measure", "from", "by", "max_gap"]),
                _JSON | st.sampled_from(["spo2", "sensor-board", "07:00", "24:00", "PT5M"]),
                max_size=4,
            ),
            max_size=3,
        )
    },
    optional={"zone": _JSON | st.just("Europe/Stockholm"), "limits": _JSON},
)


@given(_JSON | _NEAR_PLAN)
def test_any_json_is_a_plan_or_an_error_naming_its_key(data: object) -> None:
    try:
        plan = parse_plan(data)
    except PlanError as exc:
        key = exc.key
    else:
        key = "parsed"
        assert parse_plan(plan.to_json()) == plan
    assert key
