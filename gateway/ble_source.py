"""Paired BLE devices into the pipeline: the central's events, committed, then acknowledged.

:class:`drivers.ble.BleCentral` puts one :class:`drivers.ble.MeasurementEvent` per decoded
value on a bounded queue (``EVENT_QUEUE_SIZE``: when it is full the central disconnects
devices, which keep their records). :class:`BleSource` runs the central, restarted as a whole
with backoff when it fails (it retries each device itself), and one task that takes what is
queued and commits it through :meth:`gateway.pipeline.Pipeline.commit_events`, which
acknowledges each event once its readings are durable (the central then advances its RACP
record cursors). Leaving the source stops the central first, then commits what is still
queued, so a shutdown loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from common.backoff import Backoff
from drivers.ble import BleCentral, MeasurementEvent
from gateway.pipeline import Pipeline
from gateway.supervisor import Component, RestartPolicy, Retry, supervise

logger = logging.getLogger(__name__)

#: Events the central may queue before the pipeline takes them.
EVENT_QUEUE_SIZE = 10_000


class BleSource(Component):
    """The BLE central and the commit of its events (tasks ``ble`` and ``ble-commit``)."""

    def __init__(
        self,
        central: BleCentral,
        pipeline: Pipeline,
        *,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        """``on_committed``: called after each commit (the hub republishes its status)."""
        self.central = central
        self.events = central.events
        self._pipeline = pipeline
        self._on_committed = on_committed
        #: Hub wall clock (epoch ms) of each device's last value, by address (status topic).
        self.last_seen_ms: dict[str, int] = {}
        # The central isolates each device's faults itself (drivers/ble/central.py): an error
        # that escapes it is unexpected, and BLE restarts rather than stopping the hub.
        self._restarts = RestartPolicy(
            ((Exception, Retry(Backoff(initial_s=1.0, cap_s=120.0), level=logging.ERROR)),)
        )

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        stack.push_async_callback(self._commit_queued)  # once the tasks below have ended
        await self._open_tasks(stack)
        self._start("ble", supervise("ble", self.central.run, self._restarts))
        self._start("ble-commit", self._commit_loop())

    async def _commit_loop(self) -> None:
        while True:
            events = [await self.events.get()]
            while not self.events.empty():
                events.append(self.events.get_nowait())
            await self._commit(events)

    async def _commit(self, events: list[MeasurementEvent]) -> None:
        await self._pipeline.commit_events(events)
        for event in events:
            self.last_seen_ms[event.device.upper()] = event.hub_wall_ms
        if self._on_committed is not None:
            self._on_committed()

    async def _commit_queued(self) -> None:
        """Commit the events received but not yet taken (the central has stopped)."""
        events: list[MeasurementEvent] = []
        while not self.events.empty():
            events.append(self.events.get_nowait())
        if events:
            await self._pipeline.commit_events(events)
