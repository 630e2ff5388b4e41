"""Checked on both sides (docs/consent.md): a receiver refuses, counts and reports a batch
carrying a category its recipient holds no consent for; its own topic tree."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.categories import NARHUB_BOARD_BASE, DataCategory
from protocols.consent import record_from_map
from protocols.fhir import PatientRef
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.broker_config import recipient_root
from region.consents import SqliteConsentRegistry
from region.enrolment_sqlite import enrol_hub
from region.receiver import Receiver
from region.state_sqlite import SqliteState

HUB = "hub-consent"
KEY = new_private_key_pem()
SIGNER = PemBatchSigner(HUB, KEY)
ROOT = recipient_root("municipality")
TOPIC = f"{ROOT}/{HUB}/up/environmental"
T0 = 1_763_800_000_000


def _batch(seq: int, readings: list[WireReading]) -> bytes:
    header = BatchHeader(HUB, "b1", seq, T0, Priority.ENVIRONMENTAL, len(readings))
    return SIGNER.sign(encode_body(header, readings))


def _door(t_ms: int) -> WireReading:
    code = NARHUB_BOARD_BASE + 4
    return WireReading(f"board/{code}", code, "1", t_ms, Decimal(1), device="board")


def _climate(t_ms: int) -> WireReading:
    code = NARHUB_BOARD_BASE + 1
    return WireReading(f"board/{code}", code, "Cel", t_ms, Decimal("21.5"), device="board")


def _grant(categories: list[str], from_ms: int) -> dict[str, object]:
    return {
        "action": "grant",
        "recipient": "municipality",
        "categories": categories,
        "from_ms": from_ms,
        "recorded_by": "kommun:handläggare-7",
        "basis": "patient-consent",
        "recorded_ms": from_ms,
    }


def test_batch_with_a_category_without_consent_is_refused_and_reported(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    enrol_hub(state, HUB, PatientRef("urn:test:patient", "p-1"))
    consents = SqliteConsentRegistry(state, "municipality")
    consents.add(HUB, record_from_map(_grant(["activity"], T0)))
    receiver = Receiver(
        PemBatchVerifier({HUB: public_key_pem(KEY)}),
        SqliteState(state, tmp_path / "obs.ndjson"),
        consents=consents,
        topic_root=ROOT,
    )
    assert receiver.up_filter == f"{ROOT}/+/up/+"
    # Activity alone: consented, filed.
    assert receiver.handle(TOPIC, _batch(0, [_door(T0 + 1000)]))
    # Activity and climate: the whole batch is refused, nothing of it written.
    assert receiver.handle(TOPIC, _batch(1, [_door(T0 + 2000), _climate(T0 + 2000)])) == []
    # Activity taken before the consent's start: refused too.
    assert receiver.handle(TOPIC, _batch(2, [_door(T0 - 1)])) == []
    assert (receiver.stats.batches, receiver.stats.consent_refused) == (1, 2)
    assert consents.refusals() == [
        {"hub": HUB, "boot": "b1", "seq": 1, "missing": {"indoor-climate": 1}},
        {"hub": HUB, "boot": "b1", "seq": 2, "missing": {"activity": 1}},
    ]
    # The region's tree is not this receiver's: refused as a topic mismatch.
    assert receiver.handle(f"narhub/v1/{HUB}/up/environmental", _batch(3, [_door(T0)])) == []
    assert receiver.stats.rejected == 1
    receiver.close()


def test_registry_keeps_records_per_hub_in_order(tmp_path: Path) -> None:
    consents = SqliteConsentRegistry(tmp_path / "state.db", "municipality")
    consents.add(HUB, record_from_map(_grant(["activity"], T0)))
    withdrawal = {**_grant(["activity"], T0 + 5), "action": "withdraw"}
    consents.add(HUB, record_from_map(withdrawal))
    assert [r.action for r in consents.ledger(HUB)] == ["grant", "withdraw"]
    refusal = consents.check(HUB, [_door(T0 + 1)], Priority.ENVIRONMENTAL)
    assert refusal is not None
    assert refusal.missing == {DataCategory.ACTIVITY: 1}
    assert consents.hubs() == [HUB]
    consents.close()


def test_region_consent_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from technician.cli import app

    state = tmp_path / "state.db"
    common = ["--state", str(state), "--recipient", "municipality", "--json"]
    runner = CliRunner()
    granted = runner.invoke(
        app,
        ["region", "consent", "grant", "activity", "--hub", HUB, "--by", "kommun:7", *common],
    )
    assert granted.exit_code == 0, granted.output
    assert json.loads(granted.stdout)["may_receive"] == ["activity"]
    bad = runner.invoke(
        app, ["region", "consent", "grant", "climate", "--hub", HUB, "--by", "k", *common]
    )
    assert (bad.exit_code, json.loads(bad.stdout)["field"]) == (1, "categories")
    runner.invoke(
        app, ["region", "consent", "withdraw", "activity", "--hub", HUB, "--by", "k", *common]
    )
    shown = json.loads(runner.invoke(app, ["region", "consent", "show", *common]).stdout)
    assert shown["hubs"][HUB]["may_receive"] == []
    assert [r["action"] for r in shown["hubs"][HUB]["records"]] == ["grant", "withdraw"]
