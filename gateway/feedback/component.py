"""The feedback component: the hub's events in, the light, the display and the voice out.

:class:`Feedback` is a component (:class:`gateway.supervisor.Component`): an async context
manager owning one TaskGroup with these tasks:

* ``feedback-events`` takes events from a bounded queue and runs the policy
  (gateway/feedback/policy.py) at each event and at each threshold's time;
* ``feedback-light``, ``feedback-display``, ``feedback-voice``, ``feedback-button`` and
  ``feedback-watch`` each run one output (or the hub probe) under a supervisor.

Never on the path of a reading: :meth:`Feedback.notify` only appends to a queue and returns
(when full, the oldest event is dropped and counted: a status that is late is worth less than
the next one). An output that fails (unplugged, missing library, a driver error) is logged by
its error type, counted in :attr:`Feedback.stats`, and started again with jittered backoff by
the hub's one supervisor (:func:`gateway.supervisor.supervise`); no error of an output reaches
the hub. Cancellation ends everything: the light is switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.backoff import Backoff
from drivers._aio import reraise_if_cancelling
from gateway.config import FeedbackConfig
from gateway.feedback.batches import UnreadableBatchError, newest_by_device
from gateway.feedback.events import (
    BatchAcknowledged,
    FeedbackEvent,
    StatusRequested,
    delivered,
)
from gateway.feedback.outputs import Outputs
from gateway.feedback.patterns import Pattern
from gateway.feedback.player import LightPlayer, LightStep
from gateway.feedback.policy import Effects, FeedbackPolicy, Settings, minutes
from gateway.feedback.probe import HubProbe, watch
from gateway.feedback.report import write_report
from gateway.feedback.screen import Screen
from gateway.supervisor import Component, RestartPolicy, Retry, supervise

logger = logging.getLogger(__name__)

#: Events waiting for the component, at most (drop-oldest beyond).
EVENT_QUEUE_SIZE = 256
#: Sentences waiting for the voice, at most (drop-oldest beyond; the light's: player.py).
OUTPUT_QUEUE_SIZE = 4
#: Backoff of a failing output: from 1 s up to 10 minutes.
OUTPUT_BACKOFF_CAP_S = 600.0


@dataclass
class FeedbackStats:
    """Counters (``narhub status``, the tests, the benchmark)."""

    received: int = 0
    dropped: int = 0
    patterns_played: int = 0
    sentences_said: int = 0
    sentences_dropped: int = 0
    frames_shown: int = 0
    batches_read: int = 0
    unreadable_batches: int = 0
    #: Failures per output (``light``, ``display``, ``voice``, ``button``, ``watch``).
    failures: dict[str, int] = field(default_factory=dict)
    #: The last failure per output: its error type and message (no personal data).
    last_failure: dict[str, str] = field(default_factory=dict)


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def settings_from(config: FeedbackConfig, devices: Mapping[str, str]) -> Settings:
    """The policy's settings from ``[feedback]`` and the paired devices (address -> kind)."""
    return Settings(
        devices={a.upper(): k for a, k in devices.items()},
        language=config.language,
        quiet_from_min=minutes(config.quiet_from),
        quiet_until_min=minutes(config.quiet_until),
        device_silent_s=config.device_silent_s,
        uplink_outage_s=config.uplink_outage_s,
        clock_untrusted_s=config.clock_untrusted_s,
        battery_low_percent=config.battery_low_percent,
        show_s=config.show_s,
        say_stored=config.voice is not None and config.voice.say_stored,
    )


class Feedback(Component):
    """The light, display and voice for the patient, fed by :meth:`notify`."""

    def __init__(
        self,
        config: FeedbackConfig,
        *,
        hub_id: str,
        devices: Mapping[str, str],
        probe: HubProbe | None = None,
        outputs: Outputs | None = None,
        local_now: Callable[[], dt.datetime] = _local_now,
        queue_size: int = EVENT_QUEUE_SIZE,
        report: Path | None = None,
    ) -> None:
        """``devices``: the paired devices, address -> kind. ``local_now``: the local wall
        clock (quiet hours, times on the screen); a seam for tests of quiet hours.
        ``report``: where to say which outputs work, for ``narhub doctor``
        (gateway/feedback/report.py)."""
        self._report = report
        self.config = config
        self.hub_id = hub_id
        self.settings = settings_from(config, devices)
        self.outputs = outputs or Outputs(config)
        self._probe = probe
        self._local_now = local_now
        self.stats = FeedbackStats()
        self._events: deque[FeedbackEvent] = deque()
        self._queue_size = queue_size
        self._event_ready = asyncio.Event()
        self.policy: FeedbackPolicy | None = None
        self._screen: Screen | None = None
        self._screen_wake = asyncio.Event()
        self._sentences: deque[str] = deque()
        self._voice_wake = asyncio.Event()
        #: Set at every light step, frame, sentence, output opened or failed (tests wait on it).
        self.changed = asyncio.Event()
        self.light = LightPlayer(self.outputs.brightness, self.changed, self._played)
        #: The outputs open now (``light``, ``display``, ``voice``, ``button``).
        self.opened: set[str] = set()

    # -- input ------------------------------------------------------------------------------

    def notify(self, event: FeedbackEvent) -> None:
        """Take an event without waiting (from the event loop's thread). When the queue is
        full the oldest event is dropped and counted."""
        self.stats.received += 1
        if len(self._events) >= self._queue_size:
            self._events.popleft()
            self.stats.dropped += 1
        self._events.append(event)
        self._event_ready.set()

    # -- lifecycle --------------------------------------------------------------------------

    async def _enter(self, stack: contextlib.AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        self.policy = FeedbackPolicy(self.settings, loop.time())
        self._refresh(loop.time())
        await self._open_tasks(stack)
        self._start("feedback-events", self._run_events())
        if self.config.light is not None:
            self._start("feedback-light", self._supervised("light", self._run_light))
        if self.config.display is not None:
            self._start("feedback-display", self._supervised("display", self._run_display))
        if self.config.voice is not None:
            self._start("feedback-voice", self._supervised("voice", self._run_voice))
        if self.config.button_pin is not None:
            self._start("feedback-button", self._supervised("button", self._run_button))
        if self._probe is not None:
            probe = self._probe
            self._start(
                "feedback-watch", self._supervised("watch", lambda: watch(probe, self.notify))
            )

    async def _supervised(self, output: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one output, restarted after any error with backoff (1 s to 10 minutes): an
        output's fault is counted and reported, never raised into the hub."""
        policy = RestartPolicy(
            ((Exception, Retry(Backoff(initial_s=1.0, cap_s=OUTPUT_BACKOFF_CAP_S))),)
        )

        def failed(exc: Exception) -> None:
            self.stats.failures[output] = self.stats.failures.get(output, 0) + 1
            self.stats.last_failure[output] = f"{type(exc).__name__}: {exc}"
            self.changed.set()
            self._write_report()

        await supervise(f"feedback-{output}", body, policy, on_failure=failed)

    # -- the policy -------------------------------------------------------------------------

    async def _run_events(self) -> None:
        loop = asyncio.get_running_loop()
        policy = self.policy
        assert policy is not None
        while True:
            if not self._events:
                self._event_ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._event_ready.wait(), policy.next_change_s(loop.time())
                    )
                reraise_if_cancelling()  # Python 3.11's wait_for can swallow a racing cancel
            now_s = loop.time()
            while self._events:
                self._apply(self._handle(self._events.popleft(), now_s))
            self._refresh(now_s)
            self.changed.set()

    def _handle(self, event: FeedbackEvent, now_s: float) -> Effects:
        policy = self.policy
        assert policy is not None
        local = self._local_now()
        if not isinstance(event, BatchAcknowledged):
            return policy.handle(event, now_s, local)
        if not delivered(event) or not policy.pending_devices():
            return Effects()
        self.stats.batches_read += 1
        try:
            newest = newest_by_device(event.message, self.hub_id, self.settings.devices)
        except UnreadableBatchError as exc:
            self.stats.unreadable_batches += 1
            logger.warning("feedback: %s", exc.reason)
            return Effects()
        return policy.delivered(newest, now_s, local)

    def _apply(self, effects: Effects) -> None:
        if self.config.light is not None:
            for pattern in effects.patterns:
                self.light.queue(pattern)
        if self.config.voice is not None:
            for sentence in effects.sentences:
                if len(self._sentences) >= OUTPUT_QUEUE_SIZE:
                    self._sentences.popleft()
                    self.stats.sentences_dropped += 1
                self._sentences.append(sentence)
            if effects.sentences:
                self._voice_wake.set()

    def _refresh(self, now_s: float) -> None:
        policy = self.policy
        assert policy is not None
        local = self._local_now()
        self.light.show(policy.base(now_s, local))
        screen = policy.screen(now_s, local)
        if screen != self._screen:
            self._screen = screen
            self._screen_wake.set()

    @property
    def base(self) -> Pattern:
        """The light's status now."""
        return self.light.base

    @property
    def light_steps(self) -> deque[LightStep]:
        """The colours the light was given, newest last."""
        return self.light.steps

    @property
    def screen(self) -> Screen | None:
        """What the display shows now (None: off)."""
        return self._screen

    # -- outputs ----------------------------------------------------------------------------

    async def _run_light(self) -> None:
        light = await asyncio.to_thread(self.outputs.open_light)
        self._opened("light")
        try:
            await self.light.play_on(light)
        finally:
            with contextlib.suppress(Exception):
                light.set((0.0, 0.0, 0.0))
            light.close()
            self.opened.discard("light")

    async def _run_display(self) -> None:
        panel = await asyncio.to_thread(self.outputs.open_display)
        self._opened("display")
        shown: object = object()
        try:
            while True:
                screen = self._screen
                if screen != shown:
                    if screen is None:
                        await asyncio.to_thread(panel.off)
                    else:
                        await asyncio.to_thread(panel.show, screen)
                    shown = screen
                    self.stats.frames_shown += 1
                    self.changed.set()
                self._screen_wake.clear()
                if self._screen == shown:
                    await self._screen_wake.wait()
        finally:
            self.opened.discard("display")
            await asyncio.to_thread(panel.close)

    async def _run_voice(self) -> None:
        voice = self.outputs.open_voice()
        self._opened("voice")
        while True:
            while not self._sentences:
                self._voice_wake.clear()
                await self._voice_wake.wait()
            sentence = self._sentences.popleft()  # a sentence that fails is not said again
            await voice.say(sentence)
            self.stats.sentences_said += 1
            self.changed.set()

    async def _run_button(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.config.button_pin is not None

        def pressed() -> None:  # gpiozero's thread
            loop.call_soon_threadsafe(self.notify, StatusRequested())

        button = await asyncio.to_thread(self.outputs.open_button, pressed)
        self._opened("button")
        try:
            await asyncio.Event().wait()  # the button calls back; nothing to do until cancelled
        finally:
            self.opened.discard("button")
            button.close()

    def _played(self) -> None:
        self.stats.patterns_played += 1

    def _opened(self, output: str) -> None:
        self.opened.add(output)
        self.changed.set()
        self._write_report()

    def _write_report(self) -> None:
        if self._report is not None:
            write_report(
                self._report,
                opened=self.opened,
                failures=self.stats.failures,
                last=self.stats.last_failure,
            )
