"""The consent gate at sealing (gateway/outbox/consent_gate.py, docs/consent.md): only what the
recipient holds consent for leaves; the rest is deleted with its chunks and counted, never
silently; a withdrawal applies from the next seal; no consent file, no gate (as before)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from hub_records import CLIMATE, DOOR, consent_record, reading

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from gateway.consents import append_record
from gateway.outbox import Outbox
from gateway.outbox.consent_gate import ConsentGate, partition
from gateway.reading import Reading
from protocols.categories import DataCategory
from protocols.consent import record_from_map
from protocols.gatt.observation import MDC_PRESS_BLD_NONINV_SYS
from protocols.uplink import Priority, WireReading

KEY = new_private_key_pem()
SIGNER = PemBatchSigner("hub-c", KEY)
VERIFIER = PemBatchVerifier({"hub-c": public_key_pem(KEY)})
T0 = 1_763_800_000_000


def _r(i: int, code: int, priority: Priority = Priority.CLINICAL) -> Reading:
    return reading(i, code, Decimal(i), hub_wall_ms=T0 + i, priority=priority)


def _consent(path: Path, action: str, categories: list[str], at_ms: int) -> None:
    append_record(path, consent_record(action, "region", categories, at_ms))


def _sent(store: Outbox) -> list[tuple[int, int]]:
    out = []
    for batch, _reason in store.all_batches():
        out += [(r.mdc_code, int(r.value or 0)) for r in VERIFIER.verify(batch.message).readings]
    return sorted(out)


def test_only_consented_categories_leave_and_the_rest_is_counted(tmp_path: Path) -> None:
    consents = tmp_path / "consents.json"
    _consent(consents, "grant", ["vital-signs", "activity"], T0)
    store = Outbox(tmp_path / "outbox.db", consent=ConsentGate(consents, "region"))
    store.add([_r(1, MDC_PRESS_BLD_NONINV_SYS), _r(2, DOOR, Priority.ENVIRONMENTAL)])
    store.add([_r(3, CLIMATE, Priority.ENVIRONMENTAL), _r(4, CLIMATE, Priority.ENVIRONMENTAL)])
    while store.seal(SIGNER, now_ms=T0 + 10):
        pass
    assert _sent(store) == [(MDC_PRESS_BLD_NONINV_SYS, 1), (DOOR, 2)]
    assert store.withheld() == {"region": {"indoor-climate": 2}}
    assert store.stats.withheld == 2
    assert store.unbatched_count() == 0  # withheld chunks are gone, not waiting

    # A withdrawal applies from the next seal: activity no longer leaves.
    _consent(consents, "withdraw", ["activity"], T0 + 20)
    store.add([_r(5, DOOR, Priority.ENVIRONMENTAL), _r(6, MDC_PRESS_BLD_NONINV_SYS)])
    while store.seal(SIGNER, now_ms=T0 + 30):
        pass
    # The door reading sealed earlier and not yet acknowledged is taken back too.
    assert _sent(store) == [(MDC_PRESS_BLD_NONINV_SYS, 1), (MDC_PRESS_BLD_NONINV_SYS, 6)]
    assert store.withheld() == {"region": {"indoor-climate": 2, "activity": 2}}
    store.close()


def test_an_all_withheld_seal_writes_no_batch_and_no_sequence(tmp_path: Path) -> None:
    consents = tmp_path / "consents.json"
    _consent(consents, "grant", ["vital-signs"], T0)
    store = Outbox(tmp_path / "outbox.db", consent=ConsentGate(consents, "region"))
    store.add([_r(1, CLIMATE, Priority.ENVIRONMENTAL)])
    assert store.seal(SIGNER, now_ms=T0 + 10) is None
    store.add([_r(2, MDC_PRESS_BLD_NONINV_SYS)])
    batch = store.seal(SIGNER, now_ms=T0 + 20)
    assert batch is not None
    assert batch.seq == 0  # the withheld seal took no sequence number
    store.close()
    db = sqlite3.connect(tmp_path / "outbox.db")
    rows = db.execute("SELECT recipient, category, n, first_ms, last_ms FROM withheld").fetchall()
    assert rows == [("region", "indoor-climate", 1, T0 + 1, T0 + 1)]


def test_no_consent_file_no_gate(tmp_path: Path) -> None:
    store = Outbox(tmp_path / "outbox.db", consent=ConsentGate(tmp_path / "none.json", "region"))
    store.add([_r(1, CLIMATE, Priority.ENVIRONMENTAL)])
    assert store.seal(SIGNER, now_ms=T0 + 10) is not None
    assert store.withheld() == {}
    store.close()


def test_partition_keeps_alerts_with_their_category() -> None:
    ledger = [
        record_from_map(
            {
                "action": "grant",
                "recipient": "municipality",
                "categories": ["alerts", "vital-signs"],
                "from_ms": 0,
                "recorded_by": "t",
                "basis": "patient-consent",
                "recorded_ms": 0,
            }
        )
    ]
    bp = WireReading("d/1", MDC_PRESS_BLD_NONINV_SYS, "mm[Hg]", 5, Decimal(190))
    door = WireReading("d/2", DOOR, "1", 6, Decimal(1))
    odd = WireReading("d/3", 99, "1", 7, Decimal(1))
    kept, withheld = partition([bp, door, odd], ledger, "municipality", alert=True)
    assert kept == [bp, odd]  # an unknown alert is "alerts"
    assert [(w.category, w.n) for w in withheld] == [(DataCategory.ACTIVITY, 1)]


def test_a_withdrawal_takes_apart_sealed_batches_not_yet_sent(tmp_path: Path) -> None:
    consents = tmp_path / "consents.json"
    _consent(consents, "grant", ["vital-signs", "activity"], T0)
    store = Outbox(tmp_path / "outbox.db", consent=ConsentGate(consents, "region"))
    store.add([_r(1, MDC_PRESS_BLD_NONINV_SYS), _r(2, DOOR), _r(3, DOOR)])
    sealed = store.seal(SIGNER, now_ms=T0 + 10)
    assert sealed is not None
    assert _sent(store) == [(MDC_PRESS_BLD_NONINV_SYS, 1), (DOOR, 2), (DOOR, 3)]
    # Not acknowledged yet (the broker is down): the withdrawal reaches it too.
    _consent(consents, "withdraw", ["activity"], T0 + 20)
    resealed = store.seal(SIGNER, now_ms=T0 + 30)
    assert resealed is not None
    assert resealed.seq == sealed.seq + 1
    assert _sent(store) == [(MDC_PRESS_BLD_NONINV_SYS, 1)]
    assert store.withheld() == {"region": {"activity": 2}}
    # Nothing changed since: the next seal takes nothing apart.
    assert store.seal(SIGNER, now_ms=T0 + 40) is None
    assert _sent(store) == [(MDC_PRESS_BLD_NONINV_SYS, 1)]
    store.close()


def test_an_acknowledged_batch_is_left_alone(tmp_path: Path) -> None:
    consents = tmp_path / "consents.json"
    _consent(consents, "grant", ["activity"], T0)
    store = Outbox(tmp_path / "outbox.db", consent=ConsentGate(consents, "region"))
    store.add([_r(2, DOOR)])
    sealed = store.seal(SIGNER, now_ms=T0 + 10)
    assert sealed is not None
    store.acknowledge(sealed.batch_id, defer=True)
    _consent(consents, "withdraw", ["activity"], T0 + 20)
    assert store.seal(SIGNER, now_ms=T0 + 30) is None
    assert store.withheld() == {}
    store.close()
