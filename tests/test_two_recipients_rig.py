"""Two recipients on two real brokers (docs/pipeline.md "Recipients", docs/consent.md).

The region and the municipality each run their own Mosquitto with TLS 1.3 and their own CA
(rig/broker.py), and their own receiver (region/receiver.py) with their own consent registry
and enrolment. The hub (gateway/hub.py, ``[[recipients]]``) has one outbox and one uplink per
recipient, each with the identity that recipient's CA issued, whose key signs its batches.
Consent matrix: vital signs to both, activity to the municipality only, indoor climate to
no one.

Every reading the test produces is written down (the ledger of this test: reading, category,
value); each receiver's FHIR output must hold exactly the ledger's readings its consent
covers, each exactly once. Then the municipality's broker is down while the region's flows;
its backlog arrives when it is back; and a withdrawal while it is down removes its queued
activity readings (counted on the hub) without touching the region's.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub_records import CLIMATE, DOOR, consent_record

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from gateway.ble_backend import make_ble_backend
from gateway.config import HubConfig, RecipientConfig
from gateway.consents import append_record, consent_path
from gateway.hub import Hub
from gateway.outbox import AsyncOutbox
from gateway.reading import Reading
from protocols.categories import DataCategory, category_of
from protocols.consent import allowed
from protocols.fhir import PatientRef
from protocols.gatt.observation import MDC_PRESS_BLD_NONINV_SYS
from protocols.uplink import Priority
from region.broker_config import recipient_receiver, recipient_root
from region.consents import SqliteConsentRegistry
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki
from rig.ledger import LedgerEntry, read_fhir, reconcile

HUB = "hub-two-rx"
T0 = 1_795_000_000_000
BP = MDC_PRESS_BLD_NONINV_SYS
MATRIX = {"region": ["vital-signs"], "municipality": ["vital-signs", "activity"]}


class CountingReceiver(Receiver):
    """The reference receiver, waking the test after each message it handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed = asyncio.Event()

    def handle(self, topic: str, payload: bytes) -> list[str]:
        lines = super().handle(topic, payload)
        self.changed.set()
        return lines


@dataclass
class Side:
    """One recipient: its broker, its receiver and its FHIR output."""

    name: str
    broker: MosquittoBroker
    receiver: CountingReceiver
    output: Path
    #: The hub's configuration for this recipient (its broker, CA, identity, tree).
    recipient: RecipientConfig
    #: The receiver's connection to its broker, with its own certificate.
    rx_link: Callable[[], MqttLink]

    def values(self) -> Counter[Decimal]:
        """The value of every Observation written, counted (each reading's value is unique)."""
        seen: Counter[Decimal] = Counter()
        if not self.output.exists():
            return seen
        for line in self.output.read_text().splitlines():
            doc = json.loads(line)
            if doc.get("resourceType") == "Observation":
                seen[_value(doc)] += 1
        return seen


def _value(doc: dict[str, Any]) -> Decimal:
    for key in ("valueQuantity", "valueInteger", "valueDecimal"):
        if key in doc:
            value = doc[key]
            return Decimal(str(value["value"] if isinstance(value, dict) else value))
    raise AssertionError(f"an Observation without a value: {sorted(doc)}")


class Home:
    """What the hub produced: the test's ledger."""

    def __init__(self) -> None:
        self.ledger: list[Reading] = []
        self._n = 0

    def reading(self, code: int) -> Reading:
        self._n += 1
        priority = Priority.CLINICAL if code == BP else Priority.ENVIRONMENTAL
        reading = Reading(
            stream=f"dev/{code}",
            device="dev",
            mdc_code=code,
            unit="mm[Hg]" if code == BP else "1",
            value=Decimal(100 + self._n),
            special=None,
            hub_wall_ms=T0 + self._n * 1000,
            hub_mono_ns=self._n,
            priority=priority,
        )
        self.ledger.append(reading)
        return reading

    def consented(
        self,
        allowed: Callable[[DataCategory, int], bool],
        since: int = 0,
        until: int | None = None,
    ) -> list[LedgerEntry]:
        """The ledger's readings (the ``since``-th up to the ``until``-th) a recipient may
        have, as the rig's ledger writes them."""
        return [
            LedgerEntry("test", r.device, "test", r.mdc_code, r.unit, str(r.value), None, str(i))
            for i, r in enumerate(self.ledger[since:until], start=since)
            if allowed(category_of(r.mdc_code, alert=False), r.hub_wall_ms)
        ]

    def expected(
        self, allowed: Callable[[DataCategory, int], bool], since: int = 0
    ) -> Counter[Decimal]:
        """The ledger's readings (from the ``since``-th on) a recipient may have, each once."""
        return Counter(
            r.value or Decimal(0)
            for r in self.ledger[since:]
            if allowed(category_of(r.mdc_code, alert=False), r.hub_wall_ms)
        )


def _reconciled(side: Side, produced: list[LedgerEntry]) -> None:
    """The rig's own check: every produced reading exactly once in the FHIR output."""
    found = reconcile(produced, read_fhir(side.output))
    assert found.exact, f"{side.name}: {found.explain()}"
    assert sum(found.delivered.values()) == len(produced)


async def _supervised(receiver: CountingReceiver, link: Callable[[], MqttLink]) -> None:
    """The receiver, started again when its broker goes away (as its service manager would)."""
    while True:
        try:
            await receiver.run(link)
        except MqttError:
            await asyncio.sleep(0.1)  # a retry delay, not synchronisation


async def _until(condition: Callable[[], bool], *events: asyncio.Event) -> None:
    """Wait, woken by the receivers, until ``condition`` holds (the caller's timeout bounds it)."""
    while not condition():
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED, timeout=1.0)
        for w in waits:
            w.cancel()
        for e in events:
            e.clear()


async def test_two_brokers_each_receiver_gets_exactly_its_consented_readings_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "hub"
    data_dir.mkdir()
    consents = consent_path(data_dir)
    for name, categories in MATRIX.items():
        append_record(consents, consent_record("grant", name, categories, T0 - 1))
    sides = {name: _side(tmp_path, name, categories) for name, categories in MATRIX.items()}
    config = HubConfig.model_validate(  # as a TOML file with [[recipients]] gives it
        {
            "hub_id": HUB,
            "data_dir": data_dir,
            "ble": {"backend": "sim"},
            "recipients": [side.recipient.model_dump() for side in sides.values()],
            "batching": {"clinical_s": 0, "environmental_s": 0},
            "store": {"commit_window_s": 0},
        }
    )
    try:
        async with Hub(config, make_ble_backend(config.ble)) as hub:
            assert set(hub.other_uplinks) == {"municipality"}
            await _scenario(sides, hub.outbox, consents)
    finally:
        for side in sides.values():
            side.receiver.close()
            side.broker.stop()


def _side(tmp_path: Path, name: str, categories: list[str]) -> Side:
    """One recipient's broker (its own CA), receiver (its own enrolment and consents) and
    the hub's configuration for it (the identity that CA issued, whose key signs its
    batches)."""
    pki = RigPki.create(tmp_path / f"pki-{name}")
    broker = MosquittoBroker(pki, tmp_path / f"broker-{name}")
    root = "narhub/v1" if name == "region" else recipient_root(name)
    if name != "region":
        broker.recipients = (name,)
    broker.start()
    hub_id = pki.client(HUB)
    rx_name = RECEIVER_NAME if name == "region" else recipient_receiver(name)
    rx_id = pki.client(rx_name)
    state = tmp_path / f"{name}.sqlite3"
    enrol_hub(state, HUB, PatientRef("urn:test:patient", f"p-{name}"))
    registry = SqliteConsentRegistry(state, name)
    registry.add(HUB, consent_record("grant", name, categories, T0 - 1))
    receiver = CountingReceiver(
        PemBatchVerifier({HUB: certificate_public_key_pem(hub_id.cert_file.read_bytes())}),
        SqliteState(state, tmp_path / f"{name}.ndjson"),
        consents=registry,
        topic_root=root,
    )

    def rx_link() -> MqttLink:
        tls = TlsFiles(pki.ca_file, rx_id.cert_file, rx_id.key_file)
        return MqttLink(broker.host, broker.port, client_id=rx_name, tls=tls, manual_ack=True)

    recipient = RecipientConfig(
        name=name,
        host=broker.host,
        port=broker.port,
        ca_file=pki.ca_file,
        cert_file=hub_id.cert_file,
        key_file=hub_id.key_file,
    )
    return Side(name, broker, receiver, tmp_path / f"{name}.ndjson", recipient, rx_link)


async def _scenario(sides: dict[str, Side], outbox: AsyncOutbox, consents: Path) -> None:
    region, muni = sides["region"], sides["municipality"]
    home = Home()
    ledger_consents = [consent_record("grant", n, c, T0 - 1) for n, c in MATRIX.items()]

    def allowed_for(name: str) -> Callable[[DataCategory, int], bool]:
        return lambda category, t_ms: allowed(ledger_consents, name, category, t_ms)

    def delivered(side: Side) -> bool:
        return side.values() == home.expected(allowed_for(side.name))

    events = [s.receiver.changed for s in sides.values()]
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        tasks = []
        for side in sides.values():
            tasks.append(
                group.create_task(_supervised(side.receiver, side.rx_link), name=f"rx-{side.name}")
            )
            await side.receiver.subscribed.wait()

        # 1. Both up: vital signs to both, activity to the municipality, climate to no one.
        await outbox.add([home.reading(c) for c in (BP, DOOR, CLIMATE, BP, DOOR, CLIMATE, BP)])
        await _until(lambda: delivered(region) and delivered(muni), *events)
        assert sum(region.values().values()) == 3
        assert sum(muni.values().values()) == 5

        # 2. The municipality's broker goes down; the region's readings keep flowing.
        muni.broker.stop()
        await outbox.add([home.reading(c) for c in (BP, DOOR, BP, DOOR, CLIMATE)])
        await _until(lambda: delivered(region), *events)
        assert sum(region.values().values()) == 5
        backlog = (await outbox.recipient_backlog())["municipality"]
        assert backlog["waiting_readings"] + backlog["batched_readings"] >= 4
        assert not delivered(muni)
        # ... and comes back: its backlog arrives, exactly once.
        muni.broker.start()
        await _until(lambda: delivered(muni), *events)
        assert sum(muni.values().values()) == 9

        # 3. Down again, and the municipality's activity consent is withdrawn meanwhile:
        #    its queued door readings are removed and counted; the region is unaffected.
        muni.broker.stop()
        queued = [home.reading(c) for c in (BP, DOOR, DOOR)]
        await outbox.add(queued)
        await _until(lambda: delivered(region), *events)
        before = home.expected(allowed_for("municipality"), since=0)
        entries_before = home.consented(allowed_for("municipality"), until=12)
        withdrawal = consent_record("withdraw", "municipality", ["activity"], T0 + 100_000)
        append_record(consents, withdrawal)
        ledger_consents.append(withdrawal)
        # A withdrawal ends earlier grants: of the queued readings only the vital signs go.
        expected = before - home.expected(lambda c, _t: c is DataCategory.ACTIVITY, since=12)
        muni.broker.start()
        await _until(lambda: muni.values() == expected, *events)
        withheld = outbox.outbox.withheld()
        assert withheld["municipality"]["activity"] == 2
        assert withheld["region"]["activity"] == 2 + 2 + 2
        assert "municipality" not in withheld or "vital-signs" not in withheld["municipality"]
        # Exactly once: no reading written twice at either recipient; the rig's ledger check
        # (rig/ledger.py) agrees for what each recipient may have.
        _reconciled(region, home.consented(allowed_for("region")))
        vital = home.consented(lambda c, _t: c is DataCategory.VITAL_SIGNS, since=12)
        _reconciled(muni, entries_before + vital)
        for side in sides.values():
            assert max(side.values().values()) == 1
            assert side.receiver.stats.consent_refused == 0
        for task in tasks:
            task.cancel()
