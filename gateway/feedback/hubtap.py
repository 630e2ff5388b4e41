"""The hub's side of the feedback component: its callbacks turned into events.

The hub calls :meth:`FeedbackTap.readings_stored` after each commit (its ``on_stored``) and
:meth:`FeedbackTap.batch_answered` on each PUBACK (the uplink's ``on_published``); both
return at once and never raise into the hub (an error is logged and counted). Battery
levels, the connection and the clock are read by the component's own probe
(:func:`hub_probe`). Without ``[feedback]`` the tap does nothing and loads nothing more:
the events and the probe are imported once a reading or a batch meets a running component.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from gateway.config import HubConfig
from gateway.reading import Reading

if TYPE_CHECKING:
    from gateway.feedback.component import Feedback
    from gateway.feedback.probe import HubProbe

logger = logging.getLogger(__name__)


class _Batch(Protocol):
    @property
    def message(self) -> bytes: ...


class FeedbackTap:
    """Feeds the running :class:`Feedback` (none before :meth:`running`, none after)."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.devices = {d.address.upper(): d.kind for d in config.ble.devices}
        self.feedback: Feedback | None = None
        #: Callback errors caught (never raised into the hub).
        self.errors = 0

    def readings_stored(self, readings: Iterable[Reading]) -> None:
        """Readings committed to the outbox (the hub's ``on_stored``)."""
        feedback = self.feedback
        if feedback is None:
            return
        try:
            # Only with [feedback] running (issue #18: a hub without it keeps them out).
            from gateway.feedback.events import stored_events  # noqa: PLC0415

            for event in stored_events(readings, self.devices):
                feedback.notify(event)
        except Exception as exc:  # noqa: BLE001 - feedback never breaks the reading path
            self._caught(exc)

    def batch_answered(self, batch: _Batch, reason_code: int) -> None:
        """The broker answered a batch (the uplink's ``on_published``)."""
        feedback = self.feedback
        if feedback is None:
            return
        try:
            from gateway.feedback.events import BatchAcknowledged  # noqa: PLC0415 - as above

            feedback.notify(BatchAcknowledged(batch.message, reason_code))
        except Exception as exc:  # noqa: BLE001 - as above
            self._caught(exc)

    def _caught(self, exc: Exception) -> None:
        self.errors += 1
        logger.error("feedback: hub callback failed (%s); readings unaffected", type(exc).__name__)

    @contextlib.asynccontextmanager
    async def running(self, probe: HubProbe | None = None) -> AsyncIterator[Feedback | None]:
        """Run the component while the body runs (nothing without ``[feedback]``)."""
        config = self.config.feedback
        if config is None:
            yield None
            return
        # Only with [feedback]: the component, its policy and the batch reader.
        from gateway.feedback.component import Feedback  # noqa: PLC0415
        from gateway.feedback.report import report_path  # noqa: PLC0415

        feedback = Feedback(
            config,
            hub_id=self.config.hub_id,
            devices=self.devices,
            probe=probe,
            report=report_path(self.config.data_dir),
        )
        async with feedback:
            self.feedback = feedback
            try:
                yield feedback
            finally:
                self.feedback = None


class _Status(Protocol):
    @property
    def battery_percent(self) -> int | None: ...


class _Hub(Protocol):
    """What :func:`hub_probe` reads from :class:`gateway.hub.Hub`."""

    @property
    def central(self) -> object: ...
    @property
    def uplink(self) -> object: ...
    @property
    def clock_source(self) -> object: ...


def hub_probe(hub: _Hub) -> HubProbe:
    """The probe over a running hub: the central's battery levels, the uplink's connection,
    the clock's trust. Each read is an attribute lookup; a missing attribute reads as
    unknown (the hub's shape may change without breaking the light)."""
    from gateway.feedback.probe import HubProbe  # noqa: PLC0415 - only with [feedback]

    def batteries() -> Mapping[str, int | None]:
        status: Mapping[str, _Status] = getattr(hub.central, "status", {})
        return {address: s.battery_percent for address, s in status.items()}

    def connected() -> bool | None:
        value = getattr(hub.uplink, "connected", None)
        return value if isinstance(value, bool) else None

    def trusted() -> bool | None:
        sample = getattr(hub.clock_source, "sample", None)
        value = getattr(sample(), "trusted", None) if callable(sample) else None
        return value if isinstance(value, bool) else None

    return HubProbe(batteries=batteries, uplink_connected=connected, clock_trusted=trusted)
