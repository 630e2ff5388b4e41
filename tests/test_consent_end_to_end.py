"""Consent on both sides, end to end (docs/consent.md): the hub's outbox with its consent gate,
its uplink, a real Mosquitto, and the recipient's receiver with its own consents; for the
region, and for the municipality in its own topic tree on the same broker.

1. The hub sends only the consented category; the rest is withheld and counted on the hub.
2. A misconfigured hub (its ledger grants climate, the region holds no such consent): the
   receiver refuses the batch whole, counts and records it; nothing of it is written.
3. A withdrawal on the hub: from the next seal nothing of the category leaves.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hub_records import consent_record
from hub_uplink import connects_as, hub_uplink

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from gateway.consents import append_record
from gateway.outbox import AsyncOutbox, BatchingPolicy, Outbox, PendingBatch
from gateway.outbox.consent_gate import ConsentGate
from gateway.reading import Reading
from protocols.categories import NARHUB_BOARD_BASE
from protocols.fhir import PatientRef
from protocols.gatt.observation import MDC_PRESS_BLD_NONINV_SYS
from protocols.uplink import Priority
from region.broker_config import recipient_receiver, recipient_root
from region.consents import SqliteConsentRegistry
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-e2e-consent"
T0 = 1_795_000_000_000
CLIMATE = NARHUB_BOARD_BASE + 1


def _bp(i: int) -> Reading:
    return Reading(
        stream="bp/150021",
        device="bp",
        mdc_code=MDC_PRESS_BLD_NONINV_SYS,
        unit="mm[Hg]",
        value=Decimal(120 + i),
        special=None,
        hub_wall_ms=T0 + i * 1000,
        hub_mono_ns=i,
        priority=Priority.CLINICAL,
    )


def _climate(i: int) -> Reading:
    return Reading(
        stream=f"board/{CLIMATE}",
        device="board",
        mdc_code=CLIMATE,
        unit="Cel",
        value=Decimal(f"21.{i}"),
        special=None,
        hub_wall_ms=T0 + i * 1000,
        hub_mono_ns=i,
        priority=Priority.ENVIRONMENTAL,
    )


class CountingReceiver(Receiver):
    """The reference receiver, counting the messages it handled (to wait for them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled = 0
        self.changed = asyncio.Event()

    def handle(self, topic: str, payload: bytes) -> list[str]:
        lines = super().handle(topic, payload)
        self.handled += 1
        self.changed.set()
        return lines


@pytest.mark.parametrize("recipient", ["region", "municipality"])
async def test_consent_is_enforced_on_the_hub_and_checked_at_the_receiver(
    rig_pki: RigPki, tmp_path: Path, recipient: str
) -> None:
    """For the region, and for the municipality on the same broker in its own topic tree."""
    broker = MosquittoBroker(rig_pki, tmp_path / "broker")
    broker.recipients = ("municipality",)
    with broker:
        await _scenario(broker, rig_pki, tmp_path, recipient)


async def _scenario(broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path, who: str) -> None:
    hub = rig_pki.client(HUB)
    rx_name = RECEIVER_NAME if who == "region" else recipient_receiver(who)
    rx = rig_pki.client(rx_name)
    root = "narhub/v1" if who == "region" else recipient_root(who)
    state = tmp_path / "region.sqlite3"
    enrol_hub(state, HUB, PatientRef("urn:test:patient", "p-1"))
    region_consents = SqliteConsentRegistry(state, who)
    region_consents.add(HUB, consent_record("grant", who, ["vital-signs"], T0 - 1))
    receiver = CountingReceiver(
        PemBatchVerifier({HUB: certificate_public_key_pem(hub.cert_file.read_bytes())}),
        SqliteState(state, tmp_path / "obs.ndjson"),
        consents=region_consents,
        topic_root=root,
    )
    hub_consents = tmp_path / "consents.json"
    append_record(hub_consents, consent_record("grant", who, ["vital-signs"], T0 - 1))
    store = Outbox(
        tmp_path / "outbox.sqlite3",
        batching=BatchingPolicy(clinical_s=0, environmental_s=0),
        consent=ConsentGate(hub_consents, who),
    )
    outbox = AsyncOutbox(store, commit_window_s=0)
    published: list[PendingBatch] = []

    rx_link = connects_as(rig_pki, rx, rx_name, broker, manual_ack=True)
    uplink = hub_uplink(
        HUB,
        outbox,
        hub,
        connects_as(rig_pki, hub, HUB, broker, timeout_s=5),
        on_published=lambda batch, _reason: published.append(batch),
        topic_root=root,
    )

    async def settled() -> None:
        """The hub sent everything and the receiver handled every batch it sent."""
        await asyncio.sleep(0)  # let the uplink see the commit (it clears idle on waking)
        uplink.idle.clear()
        outbox.changed.set()
        await uplink.idle.wait()
        while receiver.handled < len(published):
            receiver.changed.clear()
            await receiver.changed.wait()

    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        rx_task = group.create_task(receiver.run(rx_link), name="receiver")
        await receiver.subscribed.wait()
        up_task = group.create_task(uplink.run(), name="uplink")

        # 1. Vital signs leave, climate is withheld on the hub.
        await outbox.add([_bp(i) for i in range(3)] + [_climate(i) for i in range(4)])
        await settled()
        assert store.withheld() == {who: {"indoor-climate": 4}}
        assert (receiver.stats.observations, receiver.stats.consent_refused) == (3, 0)

        # 2. A hub that wrongly holds consent for climate: the region refuses the batch.
        append_record(hub_consents, consent_record("grant", who, ["indoor-climate"], T0 - 1))
        await outbox.add([_bp(10), _climate(10)])
        await settled()
        assert receiver.stats.consent_refused == 1
        assert receiver.stats.observations == 3
        [refusal] = region_consents.refusals()
        assert refusal["missing"] == {"indoor-climate": 1}

        # 3. Withdrawal of vital signs on the hub: nothing more of it leaves.
        append_record(hub_consents, consent_record("withdraw", who, ["vital-signs"], T0 + 50_000))
        append_record(
            hub_consents, consent_record("withdraw", who, ["indoor-climate"], T0 + 50_000)
        )
        sent_before = len(published)
        await outbox.add([_bp(20), _bp(21)])
        await settled()
        assert len(published) == sent_before
        assert store.withheld() == {who: {"indoor-climate": 4, "vital-signs": 2}}
        rx_task.cancel()
        up_task.cancel()
    receiver.close()
    outbox.close()

    written = [
        json.loads(line)
        for line in (tmp_path / "obs.ndjson").read_text().splitlines()
        if '"Observation"' in line
    ]
    values = sorted(o["valueQuantity"]["value"] for o in written)
    assert values == [120, 121, 122]
