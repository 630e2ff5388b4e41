"""``narhub consent show|grant|withdraw --json`` (docs/consent.md) on a real config and ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub_configs import REGION_RECIPIENT, municipality_recipient
from typer.testing import CliRunner

from gateway.consents import consent_path, read_ledger
from protocols.categories import DataCategory
from technician.cli import app

runner = CliRunner()

CONFIG = (
    """
hub_id = "hub-0001"
data_dir = "{data}"
"""
    + REGION_RECIPIENT
    + municipality_recipient()
)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    return path


def _run(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["consent", *args, "--config", str(config), "--json"])
    return result.exit_code, json.loads(result.stdout)


def _may(doc: dict[str, Any]) -> dict[str, list[str]]:
    return {r["name"]: r["may_receive"] for r in doc["recipients"]}


def test_grant_withdraw_show(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code, doc = _run(config, "show")
    assert code == 0
    assert _may(doc) == {"region": [], "municipality": []}
    by = ["--by", "technician:anna"]
    code, doc = _run(config, "grant", "vital-signs", "glucose", "-r", "region", *by)
    assert (code, doc["may_receive"]) == (0, ["glucose", "vital-signs"])
    code, doc = _run(config, "grant", "activity", "vital-signs", "-r", "municipality", *by)
    assert code == 0
    code, doc = _run(config, "withdraw", "vital-signs", "-r", "municipality", *by)
    assert (code, doc["may_receive"]) == (0, ["activity"])
    code, doc = _run(config, "show")
    assert _may(doc) == {"region": ["glucose", "vital-signs"], "municipality": ["activity"]}
    assert [r["action"] for r in doc["records"]] == ["grant", "grant", "withdraw"]
    ledger = read_ledger(consent_path(tmp_path / "data"))
    assert ledger.records[2].recorded_by == "technician:anna"
    assert ledger.records[2].categories == {DataCategory.VITAL_SIGNS}


def test_unknown_recipient_category_or_basis_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    by = ["--by", "technician:anna"]
    code, doc = _run(config, "grant", "activity", "-r", "pharmacy", *by)
    assert (code, doc["recipients"]) == (3, ["region", "municipality"])
    code, doc = _run(config, "grant", "climate", "-r", "region", *by)
    assert code == 1
    assert "climate" in doc["error"]
    code, doc = _run(config, "grant", "activity", "-r", "region", *by, "--basis", "verbal")
    assert code == 1
    assert "basis" in doc["error"]
    assert read_ledger(consent_path(tmp_path / "data")).records == ()


def test_doctor_shows_recipients_and_what_each_may_receive(tmp_path: Path) -> None:
    import datetime as dt

    from gateway.config import load_config
    from technician.doctor import consent_checks

    config = load_config(_config(tmp_path))
    now = dt.datetime.now(tz=dt.UTC)
    before = [c.detail for c in consent_checks(config, now)]
    assert before[0].startswith("region (broker.region.example:8883): no consent recorded")
    assert before[1].endswith("no consent recorded, nothing goes to municipality")
    _run(_config(tmp_path), "grant", "activity", "-r", "municipality", "--by", "t")
    details = [c.detail for c in consent_checks(config, now + dt.timedelta(seconds=5))]
    assert details == [
        "region (broker.region.example:8883): may receive nothing",
        "municipality (broker.kommun.example:8883): may receive activity",
    ]
