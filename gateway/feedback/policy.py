"""The feedback component's state, sans I/O: events and the time in, what to show out.

:class:`FeedbackPolicy` takes the hub's events (gateway/feedback/events.py) with the time
passed in (a monotonic second count for durations, an aware local datetime for quiet hours
and clock times on the screen) and answers three questions: which one-shot patterns and
sentences an event causes (:class:`Effects`), what the light's steady status is now
(:meth:`FeedbackPolicy.base`), and what the screen shows now (:meth:`FeedbackPolicy.screen`).
No clock, no asyncio: the component (gateway/feedback/component.py) runs it, the tests step
it through days in microseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.feedback.events import (
    BatteryLevel,
    ClockTrust,
    DeviceSeen,
    FeedbackEvent,
    ReadingStored,
    StatusRequested,
    UplinkConnection,
)
from gateway.feedback.patterns import Pattern
from gateway.feedback.screen import LastReading, Screen, screen_model
from gateway.feedback.sentences import (
    Attention,
    Language,
    attention,
    attention_short,
    delivered,
    fixed,
)

#: A spot reading pulses the light at most once per device in this time (a cuff sends its
#: systolic, diastolic, mean and pulse, a meter its stored records, in several commits).
SPOT_REPEAT_S = 60.0
#: A continuous stream (night oximetry) pulses only when it starts after this long a gap.
CONTINUOUS_GAP_S = 300.0


@dataclass(frozen=True, slots=True)
class Settings:
    """The ``[feedback]`` settings the policy needs (gateway/config.py, FeedbackConfig)."""

    #: Paired devices: upper-case address -> kind, in configuration order.
    devices: Mapping[str, str]
    language: Language = "sv"
    #: Minutes after midnight, local time; None: no quiet hours.
    quiet_from_min: int | None = 22 * 60
    quiet_until_min: int | None = 7 * 60
    device_silent_s: float = 36 * 3600
    uplink_outage_s: float = 3 * 3600
    clock_untrusted_s: float = 3600
    battery_low_percent: int = 15
    show_s: float = 10.0
    say_stored: bool = False


@dataclass(frozen=True, slots=True)
class Effects:
    """What an event causes once: patterns over the status light, sentences to say."""

    patterns: tuple[Pattern, ...] = ()
    sentences: tuple[str, ...] = ()


NOTHING = Effects()


@dataclass
class _Device:
    kind: str
    seen_s: float
    taken_ms: int | None = None
    sent: bool = False
    stored_s: float | None = None
    pulsed_s: float | None = None
    announce_delivery: bool = False
    battery_percent: int | None = None


def minutes(clock: str | None) -> int | None:
    """'22:30' -> 1350 (minutes after midnight); None stays None."""
    if clock is None:
        return None
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def in_quiet_hours(local: dt.datetime, start_min: int | None, end_min: int | None) -> bool:
    """True between ``start`` and ``end`` (local), across midnight when start > end."""
    if start_min is None or end_min is None or start_min == end_min:
        return False
    now = local.hour * 60 + local.minute
    if start_min < end_min:
        return start_min <= now < end_min
    return now >= start_min or now < end_min


@dataclass
class FeedbackPolicy:
    """The state: each paired device's last reading, batteries, connection, clock."""

    settings: Settings
    started_s: float
    _devices: dict[str, _Device] = field(init=False)
    _uplink: bool | None = field(default=None, init=False)
    _uplink_since_s: float = field(init=False)
    _clock: bool | None = field(default=None, init=False)
    _clock_since_s: float = field(init=False)
    _show_until_s: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._devices = {
            address: _Device(kind, self.started_s)
            for address, kind in self.settings.devices.items()
        }
        self._uplink_since_s = self.started_s
        self._clock_since_s = self.started_s

    # -- events -----------------------------------------------------------------------------

    def handle(self, event: FeedbackEvent, now_s: float, local: dt.datetime) -> Effects:
        """Take one event (not :class:`BatchAcknowledged`: the component reads the batch and
        calls :meth:`delivered`); returns what it causes once."""
        quiet = self.quiet(now_s, local)
        if isinstance(event, ReadingStored):
            return self._stored(event, now_s, quiet)
        if isinstance(event, BatteryLevel):
            device = self._devices.get(event.device.upper())
            if device is not None:
                device.battery_percent = event.percent
        elif isinstance(event, UplinkConnection):
            if event.connected != self._uplink:
                self._uplink, self._uplink_since_s = event.connected, now_s
        elif isinstance(event, ClockTrust):
            if event.trusted != self._clock:
                self._clock, self._clock_since_s = event.trusted, now_s
        elif isinstance(event, DeviceSeen):
            device = self._devices.get(event.device.upper())
            if device is not None:
                device.seen_s = now_s
        elif isinstance(event, StatusRequested):
            self._show_until_s = now_s + self.settings.show_s
            return Effects(sentences=(self.status_sentence(now_s),))
        return NOTHING

    def _stored(self, event: ReadingStored, now_s: float, quiet: bool) -> Effects:
        device = self._devices.get(event.device.upper())
        if device is None:
            return NOTHING
        previous_s = device.stored_s
        device.seen_s = device.stored_s = now_s
        if device.taken_ms is None or event.taken_ms >= device.taken_ms:
            device.taken_ms, device.sent = event.taken_ms, False
        if event.continuous:
            fresh = previous_s is None or now_s - previous_s >= CONTINUOUS_GAP_S
        else:
            fresh = device.pulsed_s is None or now_s - device.pulsed_s >= SPOT_REPEAT_S
        if not fresh:
            return NOTHING
        device.pulsed_s = now_s
        device.announce_delivery = True
        if quiet:
            return NOTHING
        say = (fixed("stored", self.settings.language),) if self.settings.say_stored else ()
        return Effects((Pattern.STORED,), say)

    def delivered(
        self, newest_by_device: Mapping[str, int], now_s: float, local: dt.datetime
    ) -> Effects:
        """A recipient took a batch holding readings of these devices (upper-case address ->
        the newest reading's time in it). A device's last reading counts as sent when the
        batch holds it or a newer one."""
        patterns: list[Pattern] = []
        sentences: list[str] = []
        quiet = self.quiet(now_s, local)
        for address, newest_ms in newest_by_device.items():
            device = self._devices.get(address)
            if device is None or device.taken_ms is None or device.sent:
                continue
            if newest_ms < device.taken_ms:
                continue
            device.sent = True
            if device.announce_delivery:
                device.announce_delivery = False
                if not quiet:
                    patterns.append(Pattern.DELIVERED)
                    sentences.append(delivered(device.kind, self.settings.language))
        return Effects(tuple(patterns[:1]), tuple(sentences))

    # -- what holds now ---------------------------------------------------------------------

    def showing(self, now_s: float) -> bool:
        """True while the status is shown on demand (the button)."""
        return self._show_until_s is not None and now_s < self._show_until_s

    def quiet(self, now_s: float, local: dt.datetime) -> bool:
        """Quiet hours and not shown on demand: nothing lit, nothing said."""
        s = self.settings
        return in_quiet_hours(local, s.quiet_from_min, s.quiet_until_min) and not self.showing(
            now_s
        )

    def attention(self, now_s: float) -> tuple[Attention, str | None] | None:
        """The one thing that needs a look (most actionable first) and the device kind it
        concerns, or None when all is well."""
        s = self.settings
        for device in self._devices.values():
            if device.battery_percent is not None and device.battery_percent <= (
                s.battery_low_percent
            ):
                return Attention.BATTERY_LOW, device.kind
        for device in self._devices.values():
            if now_s - device.seen_s >= s.device_silent_s:
                return Attention.DEVICE_SILENT, device.kind
        if self._uplink is not None and not self._uplink:
            if now_s - self._uplink_since_s >= s.uplink_outage_s:
                return Attention.NO_CONNECTION, None
        elif self._uplink is None and now_s - self.started_s >= s.uplink_outage_s:
            return Attention.NO_CONNECTION, None  # never connected since the start
        if self._clock is False and now_s - self._clock_since_s >= s.clock_untrusted_s:
            return Attention.CLOCK_UNTRUSTED, None
        return None

    def base(self, now_s: float, local: dt.datetime) -> Pattern:
        """The light's status now: quiet, calm or attention (brighter on demand)."""
        if self.quiet(now_s, local):
            return Pattern.QUIET
        needs_look = self.attention(now_s) is not None
        if self.showing(now_s):
            return Pattern.SHOW_ATTENTION if needs_look else Pattern.SHOW_CALM
        return Pattern.ATTENTION if needs_look else Pattern.CALM

    def attention_sentence(self, now_s: float) -> str | None:
        """The sentence for :meth:`attention`, or None."""
        found = self.attention(now_s)
        return None if found is None else attention(found[0], found[1], self.settings.language)

    def status_sentence(self, now_s: float) -> str:
        """What the button says: the thing that needs a look, or that all is well."""
        return self.attention_sentence(now_s) or fixed("all_well", self.settings.language)

    def screen(self, now_s: float, local: dt.datetime) -> Screen | None:
        """The screen now; None in quiet hours (the display is off)."""
        if self.quiet(now_s, local):
            return None
        last = [
            LastReading(d.kind, d.taken_ms, d.sent)
            for d in self._devices.values()
            if d.taken_ms is not None
        ]
        found = self.attention(now_s)
        need = None if found is None else attention_short(*found, self.settings.language)
        return screen_model(last, need, language=self.settings.language, now=local)

    def pending_devices(self) -> bool:
        """True while some device's last reading is not known to be sent (the component
        reads acknowledged batches only then)."""
        return any(d.taken_ms is not None and not d.sent for d in self._devices.values())

    def next_change_s(self, now_s: float) -> float:
        """Seconds until a threshold may pass or the on-demand display ends (at most 60:
        quiet hours are checked every minute)."""
        s = self.settings
        candidates = [60.0]
        candidates += [d.seen_s + s.device_silent_s - now_s for d in self._devices.values()]
        if not self._uplink:
            candidates.append(self._uplink_since_s + s.uplink_outage_s - now_s)
        if self._clock is False:
            candidates.append(self._clock_since_s + s.clock_untrusted_s - now_s)
        if self._show_until_s is not None:
            candidates.append(self._show_until_s - now_s)
        future = [c for c in candidates if c > 0]
        return min(future) if future else 60.0
