"""The feedback policy, sans I/O: events and times in, patterns, sentences and screens out."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from gateway.feedback.events import (
    BatteryLevel,
    ClockTrust,
    DeviceSeen,
    ReadingStored,
    StatusRequested,
    UplinkConnection,
)
from gateway.feedback.patterns import Pattern
from gateway.feedback.policy import (
    CONTINUOUS_GAP_S,
    SPOT_REPEAT_S,
    FeedbackPolicy,
    Settings,
    in_quiet_hours,
)
from gateway.feedback.sentences import KINDS, Attention, every_sentence

CUFF = "C0:FF:EE:00:00:01"
SCALE = "C0:FF:EE:00:00:02"
OXI = "C0:FF:EE:00:00:03"
ZONE = dt.timezone(dt.timedelta(hours=1))
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=ZONE)
NIGHT = dt.datetime(2026, 3, 2, 23, 30, tzinfo=ZONE)
T0_MS = int(NOON.timestamp() * 1000)


def _policy(**overrides: object) -> FeedbackPolicy:
    settings = Settings(
        devices={CUFF: "blood_pressure", SCALE: "scale", OXI: "pulse_oximeter"},
        **overrides,  # type: ignore[arg-type]
    )
    return FeedbackPolicy(settings, started_s=0.0)


def test_a_stored_reading_pulses_then_its_delivery_shows_and_says_it_reached() -> None:
    policy = _policy()
    stored = policy.handle(ReadingStored(CUFF, T0_MS), 1.0, NOON)
    assert stored.patterns == (Pattern.STORED,)
    assert stored.sentences == ()  # say_stored is off by default
    screen = policy.screen(1.0, NOON)
    assert screen is not None
    assert [(r.label, r.time_text, r.status_text) for r in screen.rows] == [
        ("Blodtryck", "12:00", "väntar på nätet")
    ]
    sent = policy.delivered({CUFF: T0_MS}, 3.0, NOON)
    assert sent.patterns == (Pattern.DELIVERED,)
    assert sent.sentences == ("Ditt blodtryck har kommit fram till vårdcentralen.",)
    screen = policy.screen(3.0, NOON)
    assert screen is not None
    assert screen.rows[0].status_text == "skickat"
    assert screen.rows[0].sent
    # The same batch acknowledged again (or an older one) says nothing more.
    assert policy.delivered({CUFF: T0_MS}, 4.0, NOON).patterns == ()


def test_a_batch_with_an_older_reading_does_not_mark_the_newest_sent() -> None:
    policy = _policy()
    policy.handle(ReadingStored(CUFF, T0_MS + 5000), 1.0, NOON)
    assert policy.delivered({CUFF: T0_MS}, 2.0, NOON).patterns == ()
    screen = policy.screen(2.0, NOON)
    assert screen is not None
    assert screen.rows[0].status_text == "väntar på nätet"
    assert policy.pending_devices()


def test_an_unpaired_device_changes_nothing() -> None:
    policy = _policy()
    assert policy.handle(ReadingStored("AA:BB:CC:DD:EE:FF", T0_MS), 1.0, NOON).patterns == ()
    assert policy.screen(1.0, NOON) is not None
    assert not policy.pending_devices()


def test_spot_readings_pulse_at_most_once_a_minute_per_device() -> None:
    policy = _policy()
    first = policy.handle(ReadingStored(CUFF, T0_MS), 10.0, NOON)
    again = policy.handle(ReadingStored(CUFF, T0_MS + 1000), 10.0 + SPOT_REPEAT_S - 1, NOON)
    later = policy.handle(ReadingStored(CUFF, T0_MS + 2000), 10.0 + SPOT_REPEAT_S, NOON)
    assert (first.patterns, again.patterns, later.patterns) == (
        (Pattern.STORED,),
        (),
        (Pattern.STORED,),
    )


def test_a_continuous_stream_pulses_only_when_it_starts_after_a_gap() -> None:
    policy = _policy()
    pulses = [
        policy.handle(ReadingStored(OXI, T0_MS + i * 1000, continuous=True), 100.0 + i, NOON)
        for i in range(600)
    ]
    assert sum(len(e.patterns) for e in pulses) == 1
    resumed = policy.handle(
        ReadingStored(OXI, T0_MS + 10**7, continuous=True), 700.0 + CONTINUOUS_GAP_S, NOON
    )
    assert resumed.patterns == (Pattern.STORED,)


def test_quiet_hours_hold_back_patterns_sentences_and_the_screen() -> None:
    policy = _policy(say_stored=True)
    stored = policy.handle(ReadingStored(CUFF, T0_MS), 1.0, NIGHT)
    assert stored.patterns == ()
    assert stored.sentences == ()
    assert policy.delivered({CUFF: T0_MS}, 2.0, NIGHT).patterns == ()
    assert policy.base(2.0, NIGHT) is Pattern.QUIET
    assert policy.screen(2.0, NIGHT) is None
    # What happened at night is on the screen in the morning.
    morning = NIGHT.replace(day=3, hour=8)
    screen = policy.screen(3.0, morning)
    assert screen is not None
    assert screen.rows[0].sent
    assert screen.rows[0].time_text == "igår 12:00"


def test_the_button_shows_the_status_in_quiet_hours_for_show_s() -> None:
    policy = _policy(show_s=10.0)
    said = policy.handle(StatusRequested(), 100.0, NIGHT)
    assert said.sentences == ("Allt fungerar.",)
    assert policy.base(100.0, NIGHT) is Pattern.SHOW_CALM
    assert policy.screen(105.0, NIGHT) is not None
    assert policy.base(110.0, NIGHT) is Pattern.QUIET


@pytest.mark.parametrize(
    ("start", "end", "clock", "quiet"),
    [
        (22 * 60, 7 * 60, "22:00", True),
        (22 * 60, 7 * 60, "06:59", True),
        (22 * 60, 7 * 60, "07:00", False),
        (22 * 60, 7 * 60, "21:59", False),
        (13 * 60, 15 * 60, "14:00", True),
        (13 * 60, 15 * 60, "15:00", False),
        (None, None, "03:00", False),
        (8 * 60, 8 * 60, "08:00", False),
    ],
)
def test_quiet_hours_cross_midnight(
    start: int | None, end: int | None, clock: str, quiet: bool
) -> None:
    hour, minute = (int(p) for p in clock.split(":"))
    assert in_quiet_hours(NOON.replace(hour=hour, minute=minute), start, end) is quiet


def test_attention_thresholds_and_order() -> None:
    policy = _policy(device_silent_s=2000.0, uplink_outage_s=300.0, clock_untrusted_s=600.0)
    for device in (CUFF, SCALE, OXI):
        policy.handle(DeviceSeen(device), 0.0, NOON)
    policy.handle(UplinkConnection(connected=True), 0.0, NOON)
    policy.handle(ClockTrust(trusted=True), 0.0, NOON)
    assert policy.attention(10.0) is None
    assert policy.base(10.0, NOON) is Pattern.CALM
    policy.handle(UplinkConnection(connected=False), 100.0, NOON)
    assert policy.attention(399.0) is None
    assert policy.attention(400.0) == (Attention.NO_CONNECTION, None)
    assert policy.base(400.0, NOON) is Pattern.ATTENTION
    policy.handle(UplinkConnection(connected=True), 450.0, NOON)
    assert policy.attention(450.0) is None
    policy.handle(ClockTrust(trusted=False), 500.0, NOON)
    assert policy.attention(1099.0) is None
    assert policy.attention(1100.0) == (Attention.CLOCK_UNTRUSTED, None)
    # A device not heard from comes before the clock, a low battery before both.
    policy.handle(ReadingStored(CUFF, T0_MS), 900.0, NOON)
    policy.handle(ReadingStored(SCALE, T0_MS), 900.0, NOON)
    assert policy.attention(2000.0) == (Attention.DEVICE_SILENT, "pulse_oximeter")
    assert policy.status_sentence(2000.0) == (
        "Pulsoximetern har inte hörts av på länge. Gör en mätning."
    )
    policy.handle(BatteryLevel(SCALE, 16), 2000.0, NOON)
    assert policy.attention(2000.0) == (Attention.DEVICE_SILENT, "pulse_oximeter")
    policy.handle(BatteryLevel(SCALE, 15), 2000.0, NOON)
    assert policy.attention(2000.0) == (Attention.BATTERY_LOW, "scale")
    assert policy.status_sentence(2000.0) == "Byt batteri i vågen."
    screen = policy.screen(2000.0, NOON)
    assert screen is not None
    assert screen.attention == "Byt batteri i vågen."


def test_never_connected_since_the_start_needs_a_look_after_the_outage_time() -> None:
    policy = _policy(uplink_outage_s=60.0, device_silent_s=10**6)
    assert policy.attention(59.0) is None
    assert policy.attention(60.0) == (Attention.NO_CONNECTION, None)
    assert policy.next_change_s(0.0) == 60.0


def test_next_change_is_the_nearest_threshold() -> None:
    policy = _policy(device_silent_s=30.0, uplink_outage_s=1000.0)
    assert policy.next_change_s(10.0) == pytest.approx(20.0)
    policy.handle(StatusRequested(), 10.0, NOON)
    assert policy.next_change_s(15.0) == pytest.approx(5.0)


def test_english_by_configuration() -> None:
    policy = _policy(language="en")
    policy.handle(ReadingStored(SCALE, T0_MS), 1.0, NOON)
    sent = policy.delivered({SCALE: T0_MS}, 2.0, NOON)
    assert sent.sentences == ("Your weight reached the care centre.",)
    screen = policy.screen(2.0, NOON)
    assert screen is not None
    assert (screen.rows[0].label, screen.rows[0].status_text) == ("Weight", "sent")


@pytest.mark.parametrize("language", ["sv", "en"])
def test_no_sentence_carries_a_number_or_a_judgement(language: str) -> None:
    sentences = every_sentence(language)  # type: ignore[arg-type]
    assert len(sentences) == 4 + 3 * len(KINDS)
    judgements = re.compile(
        r"\d|hög|låg|normal|farlig|bra värde|high|low|normal|danger|good value", re.IGNORECASE
    )
    for name, sentence in sentences:
        assert not judgements.search(sentence), (name, sentence)


def test_only_a_paired_devices_measurements_count_as_stored() -> None:
    from gateway.feedback.events import stored_events
    from gateway.reading import Reading
    from protocols.uplink import Priority
    from protocols.uplink.device_facts import FLAG_DEVICE_INFO, MDC_ID_MODEL_NUMBER

    def reading(device: str, t_ms: int, **kw: object) -> Reading:
        return Reading("s", device, 0x4A04, "mm[Hg]", None, "nan", t_ms, 0, **kw)  # type: ignore[arg-type]

    devices = {CUFF: "blood_pressure"}
    info = reading(CUFF.lower(), 9, flags=frozenset({FLAG_DEVICE_INFO}))._replace(
        mdc_code=MDC_ID_MODEL_NUMBER
    )
    events = stored_events(
        [
            reading(CUFF.lower(), 5),
            reading(CUFF, 7, continuous=True),
            reading(CUFF, 6),
            info,  # Device Information: not a measurement
            reading(CUFF, 8, priority=Priority.TELEMETRY),
            reading("board-1", 20, priority=Priority.ENVIRONMENTAL),
            reading("AA:BB:CC:DD:EE:FF", 30),
        ],
        devices,
    )
    assert events == [ReadingStored(CUFF, 7, continuous=True)]
