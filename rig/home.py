"""A whole home on the virtual rig, each part its own process where it is in the field.

:class:`VirtualHomeRig` runs, under one working directory:

* ``narhub rig`` (the emulated devices and boards, the ledger) as a process;
* Mosquitto with TLS 1.3 and client certificates (:class:`~rig.broker.MosquittoBroker`);
* the home's internet connection (:class:`~rig.router.HomeRouter`) between hub and
  broker;
* the hub, ``narhub run`` with a configuration written from the rig's ``rig.json``, as a
  process that can be stopped, killed with SIGKILL and started again;
* the region's reference receiver (:class:`~region.receiver.Receiver`), in this process
  so that it is known to be subscribed before the hub may publish: the broker acknowledges a
  publication nobody is subscribed to (PUBACK 0x10), and the hub then rightly deletes it.
  The hub is enrolled to a patient pseudonym (:data:`RIG_PATIENT`, from ``enrolled_from_ms``,
  the epoch by default) so that the region files its readings.

Used by ``hil_tests`` (the virtual :class:`Rig`) and by ``narhub demo``. Waiting is on
conditions with deadlines; files and processes of other programs are polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.pki import certificate_public_key_pem
from common.signing import PemBatchVerifier
from drivers._aio import Lifecycle
from gateway.config import (
    DEFAULT_RECIPIENT,
    BatchingConfig,
    BleConfig,
    BoardConfig,
    ClockConfig,
    DeviceConfig,
    FeedbackConfig,
    HubConfig,
    PipelineConfig,
    RecipientConfig,
    SensorsConfig,
    StoreConfig,
    ThresholdConfig,
    UplinkConfig,
    render_config,
)
from gateway.consents import append_record, consent_path
from protocols.categories import DataCategory
from protocols.fhir import PatientRef
from region.enrolment import DEFAULT_PATIENT_SYSTEM
from region.enrolment_sqlite import SqliteEnrolmentStore, enrol_hub
from region.filing import Filing
from region.receiver import RECEIVER_NAME, Receiver
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki
from rig.ledger import (
    FhirReading,
    LedgerEntry,
    Reconciliation,
    Tombstone,
    read_fhir,
    read_ledger,
    read_tombstones,
    reconcile,
)
from rig.other_recipient import OtherRecipient, grant
from rig.processes import (
    ManagedProcess,
    RigProcessError,
    eventually,
    narhub_executable,
    read_json,
)
from rig.receiving import keep_receiving, stop_receiving
from rig.router import HomeRouter
from rig.sim_boards import unacknowledged
from technician.status_view import recorded_queue

logger = logging.getLogger(__name__)

HUB_ID = "hub-rig-0001"
#: The pseudonym the rig's hub is lent to.
RIG_PATIENT = PatientRef(DEFAULT_PATIENT_SYSTEM, "rig-0001")
#: Set (to anything) to run the rig and the hub with ``--debug`` (logs then hold values and
#: addresses: for diagnosing a failing scenario on a developer's machine, never in a home).
DEBUG_ENV = "NARHUB_RIG_DEBUG"
#: How long the ledger may lag the region for a board's reading (the rig polls the boards'
#: flash logs every 0.1 s; seconds on a loaded machine).
LEDGER_LAG_S = 5.0


@dataclass(frozen=True)
class HubOptions:
    """What a scenario changes in the hub's configuration or surroundings.

    ``quota_mib``: the store's quota (``store.quota_mib``), small for a nearly full disk.
    ``steppable_clock``: run the hub behind :mod:`rig.hubclock`, so that
    :meth:`VirtualHomeRig.step_hub_clock` can make its wall clock jump.
    ``feedback``: the patient's light, display and voice (docs/feedback.md).
    """

    quota_mib: float | None = None
    steppable_clock: bool = False
    #: The care team's thresholds (``[pipeline] thresholds``): readings past them are alerts.
    thresholds: tuple[ThresholdConfig, ...] = ()
    #: The hub's ``[feedback]`` (the light on gpiozero's mock pins, its trace in a file).
    feedback: FeedbackConfig | None = None
    #: The hub's BLE backend: ``sim`` (the rig's radio over HCI) or ``bluez`` (bleak's BlueZ
    #: backend and the hub's agent, over the virtual BlueZ the rig then starts); ``None``:
    #: the rig's choice (``sim`` unless the HIL suite runs with ``--ble-backend``).
    ble_backend: Literal["sim", "bluez"] | None = None
    #: The categories the municipality holds consent for: it then has its own broker and
    #: receiver (:mod:`rig.other_recipient`) and the hub forwards to both; the region holds
    #: consent for every category. None: the region alone, no consent file (as before).
    municipality: tuple[str, ...] | None = None


class VirtualHomeRig(Lifecycle):
    """The home, the broker, the hub and the region for one scenario (an async context)."""

    stop_after_failed_start = True

    def __init__(
        self,
        workdir: Path,
        scenario: Path,
        *,
        hub_id: str = HUB_ID,
        ready_timeout_s: float = 30.0,
        start_hub: bool = True,
        hub_options: HubOptions | None = None,
        patient: PatientRef = RIG_PATIENT,
        enrolled_from_ms: int = 0,
        on_ingested: Callable[[Filing], object] | None = None,
    ) -> None:
        self.dir = workdir
        self.on_ingested = on_ingested
        self.patient = patient
        self.enrolled_from_ms = enrolled_from_ms
        self._start_hub = start_hub
        self.hub_options = hub_options or HubOptions()
        #: The hub's BLE backend (``sim`` unless the options say ``bluez``).
        self.ble_backend: Literal["sim", "bluez"] = self.hub_options.ble_backend or "sim"
        #: The file :mod:`rig.hubclock` reads the hub's wall-clock offset from.
        self.hub_clock_file = workdir / "hub" / "wall-clock-offset-s"
        self.scenario = scenario
        self.hub_id = hub_id
        self.ready_timeout_s = ready_timeout_s
        self.rig_dir = workdir / "rig"
        self.hub_dir = workdir / "hub"
        self.region_dir = workdir / "region"
        self.fhir_path = self.region_dir / "observations.ndjson"
        self.region_state = self.region_dir / "seen.sqlite3"
        self.ledger_path = self.rig_dir / "ledger.jsonl"
        debug = ["--debug"] if os.environ.get(DEBUG_ENV) else []
        self.hub_config_path = self.hub_dir / "narhub.toml"
        self.pki: RigPki | None = None
        self.broker: MosquittoBroker | None = None
        self.router: HomeRouter | None = None
        self.receiver: Receiver | None = None
        self.rig = ManagedProcess(
            "narhub rig",
            [
                narhub_executable(),
                "rig",
                "--scenario",
                str(scenario),
                "--dir",
                str(self.rig_dir),
                "--ble-backend",
                self.ble_backend,
                *debug,
            ],
            workdir / "logs" / "rig.log",
        )
        hub_argv = ["run", "--config", str(self.hub_config_path), *debug]
        if self.hub_options.steppable_clock:
            hub_command = [sys.executable, "-m", "rig.hubclock", str(self.hub_clock_file)]
        else:
            hub_command = [narhub_executable()]
        self.hub = ManagedProcess(
            "narhub run", [*hub_command, *hub_argv], workdir / "logs" / "hub.log"
        )
        self._receiver_task: asyncio.Task[None] | None = None
        #: The other recipients (``HubOptions.municipality``), by name.
        self.others: dict[str, OtherRecipient] = {}
        self._subscribed = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.region_dir.mkdir(parents=True, exist_ok=True)
        self.pki = RigPki.create(self.dir / "pki")
        self.broker = MosquittoBroker(self.pki, self.dir / "broker")
        self.broker.start()
        self.router = await self._stack.enter_async_context(
            HomeRouter(self.broker.host, self.broker.port)
        )
        hub_identity = self.pki.client(self.hub_id)
        verifier = PemBatchVerifier(
            {self.hub_id: certificate_public_key_pem(hub_identity.cert_file.read_bytes())}
        )
        enrol_hub(self.region_state, self.hub_id, self.patient, start_ms=self.enrolled_from_ms)
        self.receiver = Receiver(
            verifier,
            SqliteState(self.region_state, self.fhir_path),
            on_ingested=self.on_ingested,
        )
        self._receiver_task = asyncio.create_task(self._run_receiver(), name="rig-receiver")
        await self.wait_receiver()
        if self.hub_options.municipality is not None:
            other = OtherRecipient(
                self.dir,
                "municipality",
                self.hub_options.municipality,
                hub_id=self.hub_id,
                patient=self.patient,
                enrolled_from_ms=self.enrolled_from_ms,
            )
            self.others[other.name] = other
            await other.start()
        self.rig.start()
        status = await self.rig_status()
        if self.ble_backend == "bluez":
            # The hub's "system bus" is the rig's private one, where the virtual BlueZ is.
            self.hub.env["DBUS_SYSTEM_BUS_ADDRESS"] = str(status["dbus"])
        self._write_hub_config(status, hub_identity.cert_file, hub_identity.key_file)
        if self._start_hub:
            await self.start_hub()

    async def stop(self) -> None:
        await self.hub.stop()
        await self.rig.stop()
        task, self._receiver_task = self._receiver_task, None
        receiver, self.receiver = self.receiver, None
        await stop_receiving(task, receiver)
        for other in self.others.values():
            await other.stop()
        await self._stack.aclose()
        if self.broker is not None:
            self.broker.stop()

    async def rig_status(self) -> dict[str, Any]:
        """``rig.json`` once the rig process wrote it."""
        path = self.rig_dir / "rig.json"

        def ready() -> bool:
            if not self.rig.running:
                raise RigProcessError(f"narhub rig exited:\n{self.rig.log_tail()}")
            return path.exists()

        await eventually(ready, timeout_s=self.ready_timeout_s, what="narhub rig ready")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def _write_hub_config(self, status: dict[str, Any], cert: Path, key: Path) -> None:
        assert self.router is not None
        assert self.pki is not None
        quota = self.hub_options.quota_mib
        store = (
            StoreConfig(commit_window_s=0.05, continuous_commit_window_s=0.05)
            if quota is None
            else StoreConfig(commit_window_s=0.05, continuous_commit_window_s=0.05, quota_mib=quota)
        )
        config = HubConfig(
            hub_id=self.hub_id,
            data_dir=self.hub_dir / "data",
            ble=BleConfig(
                backend=self.ble_backend,
                sim_transport=status["hci"] if self.ble_backend == "sim" else None,
                devices=[
                    DeviceConfig(address=d["address"], kind=d["kind"], bond=d["bond"])
                    for d in status["devices"]
                ],
                max_connections=5,
            ),
            sensors=SensorsConfig(
                boards=[BoardConfig(port=f"serial:{p}") for p in status["boards"].values()]
            ),
            uplink=UplinkConfig(
                host=self.router.host,
                port=self.router.port,
                ca_file=self.pki.ca_file,
                cert_file=cert,
                key_file=key,
            ),
            # The rig shows the path, not the SD-card economy: short windows.
            store=store,
            batching=BatchingConfig(
                clinical_s=0.2, continuous_s=0.5, environmental_s=0.5, telemetry_s=1.0
            ),
            pipeline=PipelineConfig(thresholds=list(self.hub_options.thresholds)),
            feedback=self.hub_options.feedback,
            # The rig runs on development machines and containers without NTP, whichever
            # BLE backend the hub uses (``sim`` implies it; ``bluez`` must be told).
            clock=ClockConfig(require_sync=False),
        )
        (self.hub_dir / "data").mkdir(parents=True, exist_ok=True)
        if self.others:
            config = self._with_recipients(config)
        if self.hub_options.steppable_clock:
            self.hub_clock_file.write_text("0\n")
        self.hub_config_path.write_text(render_config(config))

    def _with_recipients(self, config: HubConfig) -> HubConfig:
        """``config`` forwarding to the region and to every other recipient, with their
        consents in the hub's ledger: the region every category, the others theirs."""
        now_ms = time.time_ns() // 1_000_000
        region = RecipientConfig(name=DEFAULT_RECIPIENT, **config.uplink.model_dump())
        others = [o.recipient_config() for o in self.others.values()]
        path = consent_path(config.data_dir)
        append_record(path, grant(DEFAULT_RECIPIENT, tuple(c.value for c in DataCategory), now_ms))
        for other in self.others.values():
            append_record(path, other.consent_record(now_ms))
        return config.model_copy(update={"recipients": [region, *others]})

    # --- the region's receiver -----------------------------------------------------------

    async def _run_receiver(self) -> None:
        assert self.broker is not None
        assert self.receiver is not None
        await keep_receiving(self.receiver, self.broker.connector(RECEIVER_NAME), self._subscribed)

    async def wait_receiver(self, timeout_s: float = 20.0) -> None:
        """Wait until the receiver is subscribed."""
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    # --- faults and operations -----------------------------------------------------------

    async def start_hub(self) -> None:
        """Start ``narhub run``."""
        self.hub.start()

    async def stop_hub(self) -> int | None:
        """SIGTERM the hub (it flushes what it received) and wait for it."""
        return await self.hub.stop()

    async def stop_rig(self) -> None:
        """Stop ``narhub rig`` (it writes its final ``rig.json``); the home is over."""
        await self.rig.stop()

    def kill_hub(self) -> None:
        """SIGKILL the hub: a power cut."""
        self.hub.kill()

    async def broker_down(self) -> None:
        """Stop the broker (the region's side is down; the hub keeps everything)."""
        assert self.broker is not None
        assert self.router is not None
        await self.router.offline()
        self.broker.stop()

    async def broker_up(self) -> None:
        """Start the broker again; the hub may reach it once the receiver subscribed again."""
        assert self.broker is not None
        assert self.router is not None
        self.broker.start()
        await self.wait_receiver()
        self.router.online()

    async def internet(self, online: bool) -> None:
        """The home's connection down or up (the broker and the region are unaffected)."""
        assert self.router is not None
        if online:
            self.router.online()
        else:
            await self.router.offline()

    # --- what happened -------------------------------------------------------------------

    @property
    def broker_port(self) -> int | None:
        """The broker's port (for display)."""
        return None if self.broker is None else self.broker.port

    def ledger(self) -> list[LedgerEntry]:
        """What the home produced so far."""
        return read_ledger(self.ledger_path)

    def on_boards(self) -> set[str]:
        """The board readings (ledger ``seq``: ``boot/seq``) the boards' flash still holds
        unacknowledged: taken but not yet read and committed by the hub."""
        return {
            f"{r.boot_id}/{r.seq}"
            for log in sorted((self.rig_dir / "boards").glob("*/readings.log"))
            for r in unacknowledged(log)
        }

    def tombstones(self) -> list[Tombstone]:
        """The hub's tombstones the region received (readings it evicted over its quota)."""
        return read_tombstones(self.fhir_path)

    def step_hub_clock(self, offset_s: float) -> None:
        """Set the hub's wall clock to the real time plus ``offset_s`` (a jump; the hub sees
        it within :data:`rig.hubclock.RELOAD_S`). Needs ``steppable_clock``."""
        if not self.hub_options.steppable_clock:
            raise RigProcessError("step_hub_clock needs HubOptions(steppable_clock=True)")
        tmp = self.hub_clock_file.with_suffix(".tmp")
        tmp.write_text(f"{offset_s}\n")
        tmp.replace(self.hub_clock_file)

    def hub_evicted(self) -> int:
        """Readings the hub's outbox evicted so far, as the running hub last recorded it in
        its activity file (the hub holds its store exclusively, as in the field)."""
        queue = recorded_queue(self.hub_dir / "data")
        return 0 if queue is None else queue.evicted_readings_total

    def unattributed(self) -> int:
        """Readings the region holds because no enrolment covers them."""
        store = SqliteEnrolmentStore(self.region_state)
        try:
            return len(store.held())
        finally:
            store.close()

    def fhir(self) -> list[FhirReading]:
        """What the region wrote so far."""
        return read_fhir(self.fhir_path)

    def rig_facts(self) -> dict[str, Any]:
        """The rig's last ``rig.json`` (what it did: produced counts, corrupted chunks)."""
        return read_json(self.rig_dir / "rig.json") or {}

    def rig_done(self) -> bool:
        """True once every scheduled measurement was taken."""
        return bool(self.rig_facts().get("done"))

    async def wait_rig_done(self, timeout_s: float) -> None:
        """Wait until the scenario's schedule is played out."""

        def done() -> bool:
            if not self.rig.running:
                raise RigProcessError(f"narhub rig exited:\n{self.rig.log_tail()}")
            return self.rig_done()

        await eventually(done, timeout_s=timeout_s, what="the scenario's schedule played out")

    async def wait_delivered(
        self, timeout_s: float, *, check: bool = True, evictions: bool = False
    ) -> Reconciliation:
        """Wait until every reading produced so far is in the region's output exactly once.

        Readings produced while waiting (boards keep sampling) need not have arrived, but
        nothing may arrive twice. With ``evictions``, readings the hub's tombstones say it
        evicted over its quota may be absent instead (:func:`reconcile`). Returns the last
        reconciliation; with ``check`` (default) a mismatch raises :class:`AssertionError`
        with the details and the hub's log.
        """
        settled = self.ledger()
        deadline = time.monotonic() + timeout_s
        doubled_since: float | None = None
        while True:
            # The output first, then the ledger. Still, a board's reading can reach the
            # region before the rig has read it from the board's flash log into the ledger
            # (polled; a busy machine delays the poll): it then looks like a second copy of
            # an earlier reading with the same value. A doubling is final only once it has
            # outlived that lag.
            fhir = self.fhir()
            tombstones = self.tombstones() if evictions else []
            result = reconcile(self.ledger(), fhir, settled=settled, tombstones=tombstones)
            now = time.monotonic()
            if result.duplicated:
                doubled_since = now if doubled_since is None else doubled_since
            else:
                doubled_since = None
            if (
                result.exact
                or (doubled_since is not None and now - doubled_since > LEDGER_LAG_S)
                or now > deadline
            ):
                break
            await asyncio.sleep(0.2)
        if check and not result.exact:
            raise AssertionError(
                f"region output does not match the ledger: {result.explain()}; "
                f"first missing: {result.missing[:3]}; duplicated: {result.duplicated[:3]}; "
                f"unexpected: {result.unexpected[:3]}\nhub log:\n{self.hub.log_tail()}"
            )
        return result


__all__ = [
    "RIG_PATIENT",
    "HubOptions",
    "ManagedProcess",
    "RigProcessError",
    "VirtualHomeRig",
    "eventually",
    "narhub_executable",
]
