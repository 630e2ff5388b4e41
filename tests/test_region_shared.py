"""Two reference receivers on one MQTT 5 shared subscription (MQTT 5.0 section 4.8.2), as
``narhub region ingest`` runs them: the broker splits the batches between them, and every
Observation appears exactly once in the union of their FHIR outputs."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

from hub_records import WALL_MS, body_temperature
from hub_uplink import connects_as, hub_outbox, hub_uplink

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from gateway.reading import Reading
from protocols.fhir import PatientRef
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki

HUB = "hub-shared"
TOTAL = 120
PER_BATCH = 4


def _reading(i: int) -> Reading:
    return body_temperature(
        i, Decimal(f"3{i // 100}.{i % 100:02d}"), hub_wall_ms=WALL_MS + i * 1000
    )


async def test_two_receivers_split_the_load_and_write_each_observation_once(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    hub = rig_pki.client(HUB)
    rx = rig_pki.client(RECEIVER_NAME)
    verifier = PemBatchVerifier({HUB: certificate_public_key_pem(hub.cert_file.read_bytes())})
    done = asyncio.Event()
    receivers: list[Receiver] = []

    def on_batch(_batch: object, _lines: list[str]) -> None:
        if sum(r.stats.observations for r in receivers) >= TOTAL:
            done.set()

    for n in (1, 2):  # each receiver keeps its own state (PostgreSQL shares one)
        enrol_hub(tmp_path / f"seen-{n}.sqlite3", HUB, PatientRef("urn:test:patient", "p-1"))
    receivers += [
        Receiver(
            verifier,
            SqliteState(tmp_path / f"seen-{n}.sqlite3", tmp_path / f"obs-{n}.ndjson"),
            on_batch=on_batch,
        )
        for n in (1, 2)
    ]

    # What `narhub region ingest --client-id region-receiver-N` connects with.
    connect_as = {
        n: connects_as(
            rig_pki, rx, f"{RECEIVER_NAME}-{n}", broker, manual_ack=True, session_expiry_s=600
        )
        for n in (1, 2)
    }
    outbox = hub_outbox(tmp_path, clinical_s=0, max_batch_readings=PER_BATCH)
    for start in range(0, TOTAL, PER_BATCH):  # one commit per future batch
        await outbox.add([_reading(i) for i in range(start, start + PER_BATCH)])

    uplink = hub_uplink(HUB, outbox, hub, connects_as(rig_pki, hub, HUB, broker, timeout_s=5))
    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(receiver.run(connect_as[n]), name=f"receiver-{n}")
            for n, receiver in zip((1, 2), receivers, strict=True)
        ]
        for receiver in receivers:
            await receiver.subscribed.wait()
        tasks.append(group.create_task(uplink.run(), name="uplink"))
        await done.wait()
        await uplink.idle.wait()
        for task in tasks:
            task.cancel()
    for receiver in receivers:
        receiver.close()
    outbox.close()

    # The load is split: each receiver wrote some of the batches.
    batches = [r.stats.batches for r in receivers]
    assert all(b > 0 for b in batches), batches
    assert sum(batches) == TOTAL // PER_BATCH
    # The union holds each Observation exactly once, values exact.
    lines = [
        resource
        for n in (1, 2)
        for line in (tmp_path / f"obs-{n}.ndjson").read_text().splitlines()
        if (resource := json.loads(line, parse_float=str))["resourceType"] == "Observation"
    ]
    ids = [obs["id"] for obs in lines]
    assert len(ids) == TOTAL
    assert len(set(ids)) == TOTAL
    values = sorted(obs["valueQuantity"]["value"] for obs in lines)
    assert values == sorted(str(_reading(i).value) for i in range(TOTAL))
