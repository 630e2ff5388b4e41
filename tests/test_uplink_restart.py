"""The uplink against a real broker that goes away and comes back: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from hub_records import body_temperature
from hub_uplink import connects_as, hub_outbox

from common.backoff import Backoff
from common.pki import certificate_public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from drivers.mqtt import MqttError, MqttLink
from gateway.reading import Reading
from gateway.uplink import Uplink
from protocols.fhir import PatientRef
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki


def _reading(i: int) -> Reading:
    return body_temperature(i, Decimal(f"36.{i:02d}"))


class GatedLink:
    """A named seam around the real MqttLink: counts failed connects, can hold a connect."""

    def __init__(self, make: Callable[[], MqttLink]) -> None:
        self._make = make
        self.gate = asyncio.Event()
        self.gate.set()
        self.failed = asyncio.Event()
        self._link: MqttLink | None = None

    def __call__(self) -> GatedLink:
        return self

    async def __aenter__(self) -> MqttLink:
        await self.gate.wait()
        link = self._make()
        try:
            await link.__aenter__()
        except MqttError:
            self.failed.set()
            raise
        self._link = link
        return link

    async def __aexit__(self, *exc: object) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.__aexit__(None, None, None)


async def test_outbox_drains_after_broker_restart_exactly_once(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path
) -> None:
    hub = rig_pki.client("hub-r")
    receiver_id = rig_pki.client(RECEIVER_NAME)

    receiver_link = connects_as(rig_pki, receiver_id, RECEIVER_NAME, broker, timeout_s=5)
    gated = GatedLink(connects_as(rig_pki, hub, "hub-r", broker, timeout_s=5))
    outbox = hub_outbox(tmp_path, commit_window_s=0.05, clinical_s=0.05)
    signer = PemBatchSigner("hub-r", hub.key_file.read_bytes())
    uplink = Uplink(
        "hub-r",
        outbox,
        signer,
        gated,
        backoff=Backoff(initial_s=0.05, cap_s=0.5),
    )
    output = tmp_path / "obs.ndjson"
    verifier = PemBatchVerifier({"hub-r": certificate_public_key_pem(hub.cert_file.read_bytes())})
    got = asyncio.Event()
    total = 30

    def on_batch(_batch: object, _lines: list[str]) -> None:
        if receiver.stats.observations >= total:
            got.set()

    enrol_hub(tmp_path / "seen.sqlite3", "hub-r", PatientRef("urn:test:patient", "p-1"))
    receiver = Receiver(verifier, SqliteState(tmp_path / "seen.sqlite3", output), on_batch=on_batch)

    # The broker is down while the hub collects: readings wait in the outbox.
    broker.stop()
    await outbox.add([_reading(i) for i in range(10)])
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        up_task = group.create_task(uplink.run(), name="uplink")
        await gated.failed.wait()  # the uplink tried and failed while the broker was down
        await outbox.add([_reading(i) for i in range(10, total)])
        gated.gate.clear()  # hold the uplink's next connect until the region listens
        broker.start()
        rx_task = group.create_task(receiver.run(receiver_link), name="receiver")
        await receiver.subscribed.wait()
        gated.gate.set()
        await got.wait()
        await uplink.idle.wait()
        up_task.cancel()
        rx_task.cancel()
    receiver.close()

    lines = [json.loads(line, parse_float=str) for line in output.read_text().splitlines()]
    values = [r["valueQuantity"]["value"] for r in lines if r["resourceType"] == "Observation"]
    assert sorted(values) == [f"36.{i:02d}" for i in range(total)]  # all, once, exact
    assert uplink.stats.connects == 1
    assert (await outbox.counts())["pending_batches"] == 0
    outbox.close()
