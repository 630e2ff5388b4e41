"""The hub application: BLE sessions -> pipeline -> durable outbox -> uplink, in one TaskGroup.

Lifecycle (docs/ARCHITECTURE.md): :class:`Hub` is an async context manager that owns one
TaskGroup named ``narhub-hub``. Tasks: one BLE session supervisor per allowlisted device,
the pipeline (events -> readings -> outbox), and the uplink. On exit the sources stop first,
the pipeline stores what it already holds, and the outbox keeps everything not yet acknowledged
by the broker for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from drivers.ble import BleBackend, BleCentral, CentralSettings, DeviceSpec, MeasurementEvent
from drivers.errors import DriverError
from drivers.mqtt import MqttLink, TlsFiles
from gateway.aggregate import ReductionRule
from gateway.backoff import Backoff
from gateway.boards import run_board
from gateway.config import HubConfig
from gateway.cursors import SqliteCursorStore
from gateway.pipeline import Pipeline, PipelineSettings
from gateway.reading import Reading
from gateway.store import AsyncOutbox, BatchingPolicy, Outbox
from gateway.thresholds import Threshold
from gateway.uplink import Uplink
from protocols.uplink import BatchSigner

logger = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 10_000


class Hub:
    """The running hub."""

    def __init__(
        self,
        config: HubConfig,
        backend: BleBackend,
        *,
        on_stored: Callable[[list[Reading]], None] | None = None,
    ) -> None:
        self.config = config
        self._backend = backend
        self._on_stored = on_stored
        self.events: asyncio.Queue[MeasurementEvent] = asyncio.Queue(EVENT_QUEUE_SIZE)
        ble = config.ble
        self.cursors = SqliteCursorStore(config.data_dir / "cursors.sqlite3")
        self.central = BleCentral(
            backend,
            self.events,
            [DeviceSpec(d.address, d.kind, d.bond) for d in ble.devices],
            cursors=self.cursors,
            settings=CentralSettings(
                max_connections=ble.max_connections,
                scanning_mode=ble.scanning_mode,
                clock_max_offset_s=ble.clock_max_offset_s,
                idle_disconnect_s=ble.idle_disconnect_s,
            ),
        )
        key_pem = config.uplink.key_file.read_bytes()
        self.signer = BatchSigner(config.hub_id, key_pem)
        self.outbox = open_outbox(config)
        self.pipeline = Pipeline(self.outbox, pipeline_settings(config))
        self.uplink = Uplink(config.hub_id, self.outbox, self.signer, self._connect)
        self._adding: asyncio.Task[int] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _connect(self) -> AbstractAsyncContextManager[MqttLink]:
        up = self.config.uplink
        hub = self.config.hub_id
        return MqttLink(
            up.host,
            up.port,
            client_id=hub,
            tls=TlsFiles(up.ca_file, up.cert_file, up.key_file, up.tls_min_version),
            will=(f"narhub/v1/{hub}/status", b'{"state":"offline"}'),
        )

    async def __aenter__(self) -> Self:
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        if self.config.ble.devices:
            self._tasks.append(group.create_task(self._supervise_ble(), name="ble"))
        for index, board in enumerate(self.config.sensors.boards):
            self._tasks.append(
                group.create_task(self._supervise_board(board.port), name=f"board-{index}")
            )
        self._tasks.append(group.create_task(self._pipeline(), name="pipeline"))
        self._tasks.append(group.create_task(self.uplink.run(), name="uplink"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        group, self._group = self._group, None
        try:
            if group is not None:
                await group.__aexit__(exc_type, exc, tb)
        finally:
            await self._store_remaining()
            self.outbox.close()
            self.cursors.close()

    async def _supervise_ble(self) -> None:
        """Run the BLE central (it retries each device itself); restart it with backoff when
        it fails as a whole (an unexpected error in a device supervisor ends its TaskGroup)."""
        backoff = Backoff(initial_s=1.0, cap_s=120.0)
        while True:
            try:
                await self.central.run()
            except Exception as exc:  # noqa: BLE001 - restarted with backoff, not ignored
                delay = backoff.next_delay_s()
                logger.error("BLE central failed (%s); restart in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)

    async def _supervise_board(self, port: str) -> None:
        """Keep a sensor board served; the link reconnects itself, this restarts it on errors."""
        backoff = Backoff(initial_s=1.0, cap_s=60.0)
        while True:
            try:
                await run_board(port, self.pipeline.commit)
            except (DriverError, OSError, sqlite3.Error) as exc:
                delay = backoff.next_delay_s()
                logger.warning(
                    "sensor board link ended (%s); retry in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)

    async def _pipeline(self) -> None:
        while True:
            events = [await self.events.get()]
            while not self.events.empty():
                events.append(self.events.get_nowait())
            batch = self.pipeline.process(self.pipeline.from_events(events))
            if batch:
                # Shielded: once readings leave the queue, cancellation must not lose them.
                self._adding = asyncio.ensure_future(self.outbox.add(batch))
                await asyncio.shield(self._adding)
                self._adding = None
                if self._on_stored is not None:
                    self._on_stored(batch)
            # Committed: now the central may advance its RACP record cursors.
            for event in events:
                event.acknowledge()

    async def _store_remaining(self) -> None:
        """Store events already received but not yet stored, so shutdown loses nothing."""
        if self._adding is not None:
            await self._adding
        events: list[MeasurementEvent] = []
        while not self.events.empty():
            events.append(self.events.get_nowait())
        remaining = self.pipeline.process(self.pipeline.from_events(events))
        remaining.extend(self.pipeline.drain())
        if remaining:
            with contextlib.suppress(asyncio.CancelledError):
                await self.outbox.add(remaining)
        for event in events:
            event.acknowledge()


def open_outbox(config: HubConfig) -> AsyncOutbox:
    """The hub's outbox as configured (a damaged file is moved aside and reported)."""
    store, batching = config.store, config.batching
    outbox = Outbox(
        config.data_dir / "outbox.sqlite3",
        recover=True,
        batching=BatchingPolicy(
            alert_s=batching.alert_s,
            clinical_s=batching.clinical_s,
            continuous_s=batching.continuous_s,
            environmental_s=batching.environmental_s,
            telemetry_s=batching.telemetry_s,
            max_batch_readings=batching.max_batch_readings,
        ),
        quota_bytes=store.quota_mib * 2**20,
        min_free_bytes=store.min_free_mib * 2**20,
        dedup_retention_s=store.dedup_retention_days * 86_400,
    )
    return AsyncOutbox(
        outbox,
        commit_window_s=store.commit_window_s,
        continuous_commit_window_s=store.continuous_commit_window_s,
        max_pending_readings=store.max_pending_readings,
    )


def pipeline_settings(config: HubConfig) -> PipelineSettings:
    """The stages' settings from the configuration."""
    pipeline = config.pipeline
    return PipelineSettings(
        patient=config.patient_pseudonym,
        thresholds=tuple(
            Threshold(t.mdc_code, t.unit, t.below, t.above) for t in pipeline.thresholds
        ),
        reduction=tuple(
            ReductionRule(r.mdc_code, r.deadband, r.heartbeat_s, r.window_s)
            for r in pipeline.reduction
        ),
    )
