"""The hub application: BLE devices and sensor boards -> pipeline -> durable outbox -> uplink.

Lifecycle (docs/ARCHITECTURE.md, "Async lifecycle"): :class:`Hub` is a component
(:mod:`gateway.supervisor`) that composes the others on one
:class:`contextlib.AsyncExitStack`, each an async context manager owning its TaskGroup: the
uplink, the BLE source (:mod:`gateway.ble_source`), the sensor boards
(:mod:`gateway.board_source`) and, with ``[remote]``, the command handler. Leaving the hub
leaves them in reverse order: remote management first, then the sources (the BLE source
commits what it has received), then the uplink; then the pipeline stores what it still holds
and the outbox and the record cursors close. The outbox keeps everything not yet
acknowledged by the broker for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.signing import PemBatchSigner
from drivers.ble import BleBackend, BleCentral, CentralSettings, DeviceSpec, MeasurementEvent
from drivers.mqtt import MqttLink, TlsFiles
from gateway.aggregate import ReductionRule
from gateway.ble_source import EVENT_QUEUE_SIZE, BleSource
from gateway.board_source import BoardOffsets, BoardSampling, BoardSources
from gateway.clock import ClockSource, SystemClock, require_sync_for
from gateway.config import HubConfig, RecipientConfig
from gateway.consents import consent_path
from gateway.outbox import AsyncOutbox, BatchingPolicy, Outbox, PendingBatch
from gateway.outbox.consent_gate import ConsentGate
from gateway.pipeline import OnStored, Pipeline, PipelineSettings
from gateway.record_cursor_store import SqliteRecordCursorStore
from gateway.supervisor import Component
from gateway.thresholds import Threshold
from gateway.uplink import DEFAULT_STATUS_INTERVAL_S, Uplink, offline_status, status_topic

if TYPE_CHECKING:
    from gateway.remote.handler import CommandHandler

logger = logging.getLogger(__name__)


class Hub(Component):
    """The running hub."""

    def __init__(
        self,
        config: HubConfig,
        backend: BleBackend,
        *,
        on_stored: OnStored | None = None,
        on_published: Callable[[PendingBatch, int], None] | None = None,
        config_path: Path | None = None,
    ) -> None:
        """``on_stored``: called with the readings of each commit once durable;
        ``on_published``: with each batch and its PUBACK reason code; ``config_path``: the
        file that remote ``config`` commands rewrite (docs/remote-management.md)."""
        self.config = config
        ble = config.ble
        #: The hub's wall clock and whether it is trusted yet (docs/pipeline.md, "The hub's
        #: clock"): the outbox holds readings until it is, and no device clock is set from it.
        self.clock_source: ClockSource = SystemClock(
            require_sync=require_sync_for(ble.backend, config.clock.require_sync)
        )
        self.cursors = SqliteRecordCursorStore(config.data_dir / "cursors.sqlite3")
        events: asyncio.Queue[MeasurementEvent] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self.central = BleCentral(
            backend,
            events,
            [DeviceSpec(d.address, d.kind, d.bond) for d in ble.devices],
            cursors=self.cursors,
            settings=CentralSettings(
                max_connections=ble.max_connections,
                scanning_mode=ble.scanning_mode,
                clock_max_offset_s=ble.clock_max_offset_s,
                idle_disconnect_s=ble.idle_disconnect_s,
                hub_clock_trusted=lambda: self.clock_source.sample().trusted,
            ),
        )
        if config.remote is not None:
            # Imported only with [remote]: x509 stays out of a hub that takes no
            # commands (the service's memory budget, tests/test_footprint_imports.py).
            from gateway.remote.renewal import recover as recover_credentials  # noqa: PLC0415

            recover_credentials(config)  # an interrupted certificate renewal, finished first
        key_pem = config.uplink.key_file.read_bytes()
        self.signer = PemBatchSigner(config.hub_id, key_pem)
        self.outbox = open_outbox(config, self.clock_source)
        #: Every other recipient's uplink, by name: its own broker, TLS identity and key
        #: (docs/pipeline.md, "Recipients"); the home recipient's is :attr:`uplink`.
        self.other_uplinks = {
            r.name: self._other_uplink(r, on_published)
            for r in config.all_recipients()
            if r.name != config.home_recipient()
        }
        self.pipeline = Pipeline(self.outbox, pipeline_settings(config), on_stored=on_stored)
        self.uplink = Uplink(
            config.hub_id,
            self.outbox,
            self.signer,
            self._connect,
            on_published=on_published,
            max_inflight=config.uplink.max_inflight,
            status_interval_s=DEFAULT_STATUS_INTERVAL_S,
            devices=self.device_status,
            last_command=self._last_command,
            topic_root=config.home().topics_root(),
            recipient=config.home_recipient(),
        )
        self.ble = BleSource(self.central, self.pipeline, on_committed=self.uplink.status_changed)
        self.boards = BoardSources(
            [b.port for b in config.sensors.boards],
            self.pipeline.commit,
            {
                b.port: BoardSampling.from_seconds(b.intervals_s.items())
                for b in config.sensors.boards
            },
            BoardOffsets(config.data_dir / "board-offsets.json"),
        )
        #: Signed region commands (``[remote]``; None without it): gateway/remote/.
        self.remote: CommandHandler | None = None
        if config.remote is not None:
            from gateway.remote.hubside import build_command_handler  # noqa: PLC0415 - above

            self.remote = build_command_handler(
                config,
                config_path,
                self.pipeline,
                self.outbox,
                on_credentials=self._credentials_renewed,
                release_board=self.boards.released,
                on_config=self._config_applied,
            )
        if self.remote is not None:
            # A command's outcome (a configuration applied or rolled back) goes on the status.
            self.remote.on_result = lambda _result: self.uplink.status_changed()

    def _other_uplink(
        self,
        recipient: RecipientConfig,
        on_published: Callable[[PendingBatch, int], None] | None,
    ) -> Uplink:
        """The uplink of a recipient other than the home one: its batches signed with its
        own key (the hub's identity it enrolled), sent over its own connection. It publishes
        no status document (the home recipient's broker carries the hub's status)."""
        signer = PemBatchSigner(self.config.hub_id, recipient.key_file.read_bytes())
        return Uplink(
            self.config.hub_id,
            self.outbox,
            signer,
            functools.partial(self._connect_to, recipient),
            max_inflight=recipient.max_inflight,
            on_published=on_published,
            topic_root=recipient.topics_root(),
            recipient=recipient.name,
        )

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        stack.callback(self.cursors.close)
        stack.callback(self.outbox.close)
        stack.push_async_callback(self.pipeline.flush)  # once every source has stopped
        await stack.enter_async_context(self.uplink)
        for uplink in self.other_uplinks.values():  # each its own connection and task
            await stack.enter_async_context(uplink)
        if self.config.ble.devices:
            await stack.enter_async_context(self.ble)
        await stack.enter_async_context(self.boards)
        if self.remote is not None:
            await stack.enter_async_context(self.remote)

    def _last_command(self) -> dict[str, Any] | None:
        return None if self.remote is None else self.remote.last_summary()

    def _config_applied(self, new: HubConfig) -> None:
        """A remote configuration update is durable: apply the boards' sampling intervals
        (ports and board types take effect at the next start)."""
        for board in new.sensors.boards:
            sampling = self.boards.sampling.get(board.port)
            if sampling is not None:
                sampling.set(BoardSampling.from_seconds(board.intervals_s.items()).intervals_ms)

    def _connect_to(self, recipient: RecipientConfig) -> AbstractAsyncContextManager[MqttLink]:
        """A connection to another recipient's broker, as the hub (the client id is the
        certificate's CN, which the recipient's broker checks: region/broker_plugin.py). On
        the home recipient's own broker the id takes the recipient's name as a suffix, or the
        two sessions would close each other (MQTT 5.0 section 3.1.4); that broker's identity
        plugin does not accept such a suffix yet (docs/consent.md, "Not built yet")."""
        hub = self.config.hub_id
        home = self.config.uplink
        shared = (recipient.host, recipient.port) == (home.host, home.port)
        return MqttLink(
            recipient.host,
            recipient.port,
            client_id=f"{hub}-{recipient.name}" if shared else hub,
            tls=TlsFiles(
                recipient.ca_file,
                recipient.cert_file,
                recipient.key_file,
                recipient.tls_min_version,
            ),
            max_inflight=max(20, recipient.max_inflight + 2),
        )

    def _connect(self) -> AbstractAsyncContextManager[MqttLink]:
        up = self.config.uplink
        hub = self.config.hub_id
        return MqttLink(
            up.host,
            up.port,
            client_id=hub,
            tls=TlsFiles(up.ca_file, up.cert_file, up.key_file, up.tls_min_version),
            will=(status_topic(hub, self.config.home().topics_root()), offline_status(hub)),
            # paho's own window above the uplink's (which also publishes the status).
            max_inflight=max(20, up.max_inflight + 2),
        )

    def device_status(self) -> list[dict[str, Any]]:
        """Each configured BLE device for the status topic, named by its configuration slot
        and kind (never its address): connected, battery, last value seen."""
        devices = []
        for slot, device in enumerate(self.config.ble.devices):
            address = device.address.upper()
            status = self.central.status.get(address)
            devices.append(
                {
                    "slot": slot,
                    "kind": device.kind,
                    "connected": status is not None and status.connected,
                    "battery_percent": None if status is None else status.battery_percent,
                    "last_seen_ms": self.ble.last_seen_ms.get(address),
                }
            )
        return devices

    def _credentials_renewed(self) -> None:
        """A renewed key and certificate are in place (gateway/remote/renewal.py): seal new
        batches with the new key, and reconnect the uplink with the new certificate
        (unacknowledged batches stay in the outbox and are resent)."""
        self.signer = PemBatchSigner(self.config.hub_id, self.config.uplink.key_file.read_bytes())
        self.uplink.switch_signer(self.signer)


def open_outbox(config: HubConfig, clock_source: ClockSource | None = None) -> AsyncOutbox:
    """The hub's outbox as configured (a damaged file is moved aside and reported).

    Readings wait for a trusted wall clock (``clock_source``, default the system clock as
    ``[clock]`` says; docs/pipeline.md, "The hub's clock")."""
    store, batching = config.store, config.batching
    if clock_source is None:
        require = require_sync_for(config.ble.backend, config.clock.require_sync)
        clock_source = SystemClock(require_sync=require)
    outbox = Outbox(
        config.data_dir / "outbox.sqlite3",
        recover=True,
        batching=BatchingPolicy.from_config(batching),
        quota_bytes=int(store.quota_mib * 2**20),
        min_free_bytes=store.min_free_mib * 2**20,
        dedup_retention_s=store.dedup_retention_days * 86_400,
        clock_source=clock_source,
        exclusive=store.exclusive,
        consent=ConsentGate(consent_path(config.data_dir), config.home_recipient()),
        recipients=[config.home_recipient()]
        + [r.name for r in config.all_recipients() if r.name != config.home_recipient()],
        recipient_quotas={
            r.name: int(r.quota_mib * 2**20)
            for r in config.all_recipients()
            if r.quota_mib is not None
        },
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
        user_slots=tuple(
            (d.address.upper(), d.user_index)
            for d in config.ble.devices
            if d.user_index is not None
        ),
        thresholds=tuple(
            Threshold(t.mdc_code, t.unit, t.below, t.above) for t in pipeline.thresholds
        ),
        reduction=tuple(
            ReductionRule(r.mdc_code, r.deadband, r.heartbeat_s, r.window_s)
            for r in pipeline.reduction
        ),
    )
