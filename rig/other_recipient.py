"""A second care organisation for the virtual home: the municipality's side of the rig.

In :class:`rig.home.VirtualHomeRig` the region has its broker and receiver; with
``HubOptions(municipality=...)`` the municipality gets its own (docs/consent.md): its own CA
and Mosquitto with TLS (:class:`~rig.broker.MosquittoBroker`, its own topic tree), its own
receiver (:class:`~region.receiver.Receiver`) with its own enrolment of the hub and its own
copy of the consents it holds, and its own FHIR output. The hub gets a ``[[recipients]]``
entry for it (:meth:`OtherRecipient.recipient_config`) and consent records in its ledger
(:meth:`OtherRecipient.consent_record`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from common.consent import new_record
from common.pki import Identity, certificate_public_key_pem
from common.signing import PemBatchVerifier
from gateway.config import RecipientConfig
from protocols.categories import DataCategory, category_of
from protocols.consent import ConsentRecord
from protocols.fhir import PatientRef
from region.broker_config import recipient_receiver, recipient_root
from region.consents import SqliteConsentRegistry
from region.enrolment_sqlite import enrol_hub
from region.receiver import Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki
from rig.ledger import FhirReading, LedgerEntry, read_fhir, reconcile
from rig.receiving import keep_receiving, stop_receiving

#: Who recorded the rig's consents (the technician at the rig's visit).
RECORDED_BY = "technician:rig"


def grant(recipient: str, categories: tuple[str, ...], now_ms: int) -> ConsentRecord:
    """A grant of ``categories`` to ``recipient`` for readings from the epoch on."""
    return new_record(
        "grant",
        recipient,
        list(categories),
        by=RECORDED_BY,
        basis="patient-consent",
        recorded_ms=now_ms,
        from_ms=0,
    )


def by_category(readings: list[FhirReading]) -> dict[str, int]:
    """FHIR readings counted per data category (protocols/categories.py)."""
    counts: dict[str, int] = {}
    for reading in readings:
        category = category_of(reading.key[1], alert=False).value
        counts[category] = counts.get(category, 0) + 1
    return dict(sorted(counts.items()))


class OtherRecipient:
    """Another recipient's broker, receiver and output, under ``workdir/{name}``."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        categories: tuple[str, ...],
        *,
        hub_id: str,
        patient: PatientRef,
        enrolled_from_ms: int,
    ) -> None:
        self.name = name
        self.categories = categories
        self.hub_id = hub_id
        self.dir = workdir / name
        self.fhir_path = self.dir / "observations.ndjson"
        self._patient = patient
        self._enrolled_from_ms = enrolled_from_ms
        self.pki: RigPki | None = None
        self.broker: MosquittoBroker | None = None
        self.receiver: Receiver | None = None
        self._hub: Identity | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self, timeout_s: float = 20.0) -> None:
        """Start its broker and receiver; return once the receiver is subscribed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = RigPki.create(self.dir / "pki")
        self.broker = MosquittoBroker(self.pki, self.dir / "broker")
        self.broker.recipients = (self.name,)
        self.broker.start()
        state = self.dir / "seen.sqlite3"
        enrol_hub(state, self.hub_id, self._patient, start_ms=self._enrolled_from_ms)
        consents = SqliteConsentRegistry(state, self.name)
        consents.add(self.hub_id, grant(self.name, self.categories, 0))
        hub = self._hub = self.pki.client(self.hub_id)  # issued once: its key signs batches
        self.receiver = Receiver(
            PemBatchVerifier({self.hub_id: certificate_public_key_pem(hub.cert_file.read_bytes())}),
            SqliteState(state, self.fhir_path),
            consents=consents,
            topic_root=recipient_root(self.name),
        )
        self._task = asyncio.create_task(self._run(), name=f"rig-receiver-{self.name}")
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    async def _run(self) -> None:
        assert self.broker is not None
        assert self.receiver is not None
        connect = self.broker.connector(recipient_receiver(self.name))
        await keep_receiving(self.receiver, connect, self._subscribed)

    def recipient_config(self) -> RecipientConfig:
        """The hub's ``[[recipients]]`` entry: this broker, its CA, the identity it issued."""
        assert self.pki is not None
        assert self.broker is not None
        assert self._hub is not None
        hub = self._hub
        return RecipientConfig(
            name=self.name,
            host=self.broker.host,
            port=self.broker.port,
            ca_file=self.pki.ca_file,
            cert_file=hub.cert_file,
            key_file=hub.key_file,
        )

    def consent_record(self, now_ms: int) -> ConsentRecord:
        """What the hub's ledger holds for this recipient (the same as its receiver's)."""
        return grant(self.name, self.categories, now_ms)

    def fhir(self) -> list[FhirReading]:
        """What this recipient's receiver wrote so far."""
        return read_fhir(self.fhir_path)

    def consented(self, ledger: list[LedgerEntry]) -> list[LedgerEntry]:
        """The ledger's readings this recipient may receive."""
        allowed = {DataCategory(c) for c in self.categories}
        return [e for e in ledger if category_of(e.mdc, alert=False) in allowed]

    async def stop(self) -> None:
        """Stop the receiver and the broker."""
        task, self._task = self._task, None
        receiver, self.receiver = self.receiver, None
        await stop_receiving(task, receiver)
        if self.broker is not None:
            self.broker.stop()


async def wait_delivered(
    others: list[OtherRecipient], ledger: list[LedgerEntry], timeout_s: float
) -> bool:
    """Wait until each other recipient's output holds exactly the ledger's readings it may
    receive (:func:`rig.ledger.reconcile`); False when the time ran out first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if all(reconcile(o.consented(ledger), o.fhir()).exact for o in others):
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.2)  # polling another program's output file


def recipients_summary(
    region: list[FhirReading], others: list[OtherRecipient], ledger: list[LedgerEntry]
) -> dict[str, dict[str, object]]:
    """What went to whom: per recipient, its consented categories and the readings it
    received per category; for the others, whether that is exactly the ledger's readings
    their consent covers, each once."""
    out: dict[str, dict[str, object]] = {
        "region": {"consent": "every category", "received": by_category(region)}
    }
    for other in others:
        result = reconcile(other.consented(ledger), other.fhir())
        out[other.name] = {
            "consent": ", ".join(other.categories),
            "received": by_category(other.fhir()),
            "exact": result.exact,
        }
    return out
