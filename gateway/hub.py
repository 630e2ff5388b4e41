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

from drivers.ble import BleBackend, BleCentral, MeasurementEvent
from drivers.ble._bleak import BleakError
from drivers.errors import DriverError
from drivers.mqtt import MqttLink, TlsFiles
from gateway.backoff import Backoff
from gateway.boards import run_board
from gateway.config import HubConfig
from gateway.pipeline import readings_from_event
from gateway.reading import Reading
from gateway.store import AsyncOutbox, Outbox
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
        self.central = BleCentral(backend, self.events)
        key_pem = config.uplink.key_file.read_bytes()
        self.signer = BatchSigner(config.hub_id, key_pem)
        self.outbox = AsyncOutbox(Outbox(config.data_dir / "outbox.sqlite3"))
        self.uplink = Uplink(
            config.hub_id,
            self.outbox,
            self.signer,
            self._connect,
            batch_window_s=config.uplink.batch_window_s,
        )
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
        for device in self.config.ble.devices:
            self._tasks.append(
                group.create_task(self._supervise(device.address), name=f"ble-{device.kind}")
            )
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

    async def _supervise(self, address: str) -> None:
        """Keep a session with one device, backing off after failures."""
        backoff = Backoff(initial_s=1.0, cap_s=120.0)
        while True:
            try:
                await self.central.session(address)
                backoff.reset()
            except (BleakError, TimeoutError, OSError) as exc:
                delay = backoff.next_delay_s()
                logger.warning("BLE session ended (%s); retry in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)

    async def _supervise_board(self, port: str) -> None:
        """Keep a sensor board served; the link reconnects itself, this restarts it on errors."""
        backoff = Backoff(initial_s=1.0, cap_s=60.0)
        while True:
            try:
                await run_board(port, self.outbox)
            except (DriverError, OSError, sqlite3.Error) as exc:
                delay = backoff.next_delay_s()
                logger.warning(
                    "sensor board link ended (%s); retry in %.1fs", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)

    async def _pipeline(self) -> None:
        while True:
            event = await self.events.get()
            batch = readings_from_event(event)
            while not self.events.empty():
                batch.extend(readings_from_event(self.events.get_nowait()))
            if batch:
                # Shielded: once readings leave the queue, cancellation must not lose them.
                self._adding = asyncio.ensure_future(self.outbox.add(batch))
                await asyncio.shield(self._adding)
                self._adding = None
                if self._on_stored is not None:
                    self._on_stored(batch)

    async def _store_remaining(self) -> None:
        """Store events already received but not yet stored, so shutdown loses nothing."""
        if self._adding is not None:
            await self._adding
        remaining: list[Reading] = []
        while not self.events.empty():
            remaining.extend(readings_from_event(self.events.get_nowait()))
        if remaining:
            with contextlib.suppress(asyncio.CancelledError):
                await self.outbox.add(remaining)
