"""The walking skeleton on the virtual rig, end to end with real parts.

Emulated Health Thermometer (bumble) -> real bleak BleakClient on the sim backend ->
Temperature Measurement decoded -> Reading -> SQLite outbox -> COSE-signed CBOR batch ->
aiomqtt over mutual TLS -> Mosquitto -> reference receiver -> FHIR R4 Observation (NDJSON).
Used by ``narhub demo`` and by ``tests/test_walking_skeleton.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from drivers.ble import resolve_backend
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.mqtt import MqttLink, TlsFiles
from gateway.config import (
    BatchingConfig,
    BleConfig,
    DeviceConfig,
    HubConfig,
    StoreConfig,
)
from gateway.hub import Hub
from gateway.outbox import PendingBatch
from gateway.reading import Reading
from protocols.fhir import PatientRef, is_measurement
from protocols.gatt import TemperatureMeasurement
from protocols.uplink import Batch
from region.enrolment_sqlite import enrol_hub
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki

THERMOMETER_ADDRESS = "C0:FF:EE:00:00:01"
HUB_ID = "hub-demo-0001"
#: The pseudonym the skeleton's hub is lent to (enrolled from the epoch, open-ended).
PATIENT = PatientRef("urn:narhub:patient-pseudonym", "demo-0001")


@dataclass
class SkeletonTrace:
    """What flowed, stage by stage (values only in this local trace, never in logs)."""

    sent: list[tuple[TemperatureMeasurement, bytes]] = field(default_factory=list)
    stored: list[Reading] = field(default_factory=list)
    published: list[tuple[PendingBatch, int]] = field(default_factory=list)
    received: list[tuple[Batch, list[str]]] = field(default_factory=list)

    @property
    def observation_lines(self) -> list[str]:
        """The receiver's lines that are Observations of readings (not the Devices and
        coincident time stamps they reference)."""
        return [
            line for _, lines in self.received for line in lines if is_measurement(json.loads(line))
        ]

    @property
    def observations(self) -> list[dict[str, Any]]:
        """The FHIR Observations of readings written by the receiver, parsed."""
        return [json.loads(line) for line in self.observation_lines]


def _receiver_link(broker: MosquittoBroker, pki: RigPki) -> Callable[[], MqttLink]:
    identity = pki.client(RECEIVER_NAME)
    tls = TlsFiles(pki.ca_file, identity.cert_file, identity.key_file)

    def connect() -> MqttLink:
        return MqttLink(broker.host, broker.port, client_id=RECEIVER_NAME, tls=tls)

    return connect


async def run_skeleton(
    workdir: Path,
    measurements: Sequence[TemperatureMeasurement],
    *,
    broker: MosquittoBroker | None = None,
    pki: RigPki | None = None,
    timeout_s: float = 60.0,
    on_stage: Callable[[str, Any], None] | None = None,
    undecodable: int = 0,
) -> SkeletonTrace:
    """Run the whole path for ``measurements`` and return the trace once all arrived.

    ``undecodable``: the first N indications are cut short on the air (the emulated device's
    malformed-payload fault); each must reach the region as a raw record, not an Observation.
    """
    trace = SkeletonTrace()
    note = on_stage or (lambda _stage, _data: None)
    pki = pki or RigPki.create(workdir / "pki")
    own_broker = broker is None
    if broker is None:
        broker = MosquittoBroker(pki, workdir / "broker")
        broker.start()
    try:
        note("broker", broker)
        hub_identity = pki.client(HUB_ID)
        config = HubConfig(
            hub_id=HUB_ID,
            data_dir=workdir / "hub",
            ble=BleConfig(
                backend="sim",
                devices=[DeviceConfig(address=THERMOMETER_ADDRESS, kind="thermometer")],
            ),
            uplink=broker.uplink_config(hub_identity),
            # The rig shows the path, not the SD-card economy: short windows.
            store=StoreConfig(commit_window_s=0.05, continuous_commit_window_s=0.05),
            batching=BatchingConfig(clinical_s=0.2),
        )
        verifier = PemBatchVerifier(
            {HUB_ID: certificate_public_key_pem(hub_identity.cert_file.read_bytes())}
        )
        workdir.mkdir(parents=True, exist_ok=True)
        output = workdir / "region" / "observations.ndjson"
        output.parent.mkdir(parents=True, exist_ok=True)
        done = asyncio.Event()
        expected = len(measurements) - undecodable

        def on_batch(batch: Batch, lines: list[str]) -> None:
            trace.received.append((batch, lines))
            note("received", (batch, lines))
            if len(trace.observations) >= expected and receiver.stats.raw_records >= undecodable:
                done.set()

        enrol_hub(output.parent / "seen.sqlite3", HUB_ID, PATIENT)
        receiver = Receiver(
            verifier, SqliteState(output.parent / "seen.sqlite3", output), on_batch=on_batch
        )
        radio = SimRadio()
        thermometer = EmulatedThermometer(radio, THERMOMETER_ADDRESS)
        thermometer.faults.malformed_next = undecodable
        await thermometer.start()
        note("device", thermometer)

        def on_stored(readings: list[Reading]) -> None:
            trace.stored.extend(readings)
            note("stored", readings)

        def on_published(batch: PendingBatch, reason: int) -> None:
            trace.published.append((batch, reason))
            note("published", (batch, reason))

        hub = Hub(
            config,
            resolve_backend("sim", sim_radio=radio),
            on_stored=on_stored,
            on_published=on_published,
        )
        connect_receiver: Callable[[], AbstractAsyncContextManager[MqttLink]] = _receiver_link(
            broker, pki
        )
        async with asyncio.timeout(timeout_s), asyncio.TaskGroup() as group:
            receiver_task = group.create_task(receiver.run(connect_receiver), name="receiver")
            await receiver.subscribed.wait()
            async with hub:
                await thermometer.wait_subscribed()
                for measurement in measurements:
                    payload = await thermometer.measure(measurement)
                    trace.sent.append((measurement, payload))
                    note("sent", (measurement, payload))
                await done.wait()
                # Leave only once the outbox is drained (every batch acknowledged).
                await hub.uplink.idle.wait()
            receiver_task.cancel()
        receiver.close()
        await thermometer.stop()
    finally:
        if own_broker:
            broker.stop()
    return trace


def demo_measurements(now: dt.datetime) -> list[TemperatureMeasurement]:
    """Two readings, as a patient takes them: oral in Celsius, then ear in Fahrenheit."""
    from protocols.gatt import DateTime, MedFloat, TemperatureType, TemperatureUnit  # noqa: PLC0415

    stamp = DateTime.from_datetime(now)
    return [
        TemperatureMeasurement(
            MedFloat.of("37.20"), TemperatureUnit.CELSIUS, stamp, TemperatureType.MOUTH
        ),
        TemperatureMeasurement(
            MedFloat.of("99.1"), TemperatureUnit.FAHRENHEIT, stamp, TemperatureType.TYMPANUM
        ),
    ]
