"""The feedback component with real outputs: gpiozero's mock pins, Pillow frames written as
PNG, espeak-ng into a player that keeps the WAV; failing outputs are counted, never raised."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DisplayConfig, FeedbackConfig, LightConfig, VoiceConfig
from gateway.feedback.component import Feedback
from gateway.feedback.events import BatchAcknowledged, ReadingStored, StatusRequested
from gateway.feedback.patterns import Pattern
from tests.feedback.conftest import BUTTON, PINS, measure

CUFF = "C0:FF:EE:00:00:01"
DEVICES = {CUFF: "blood_pressure"}
NOON = dt.datetime(2026, 3, 2, 12, 0).astimezone()
NIGHT = NOON.replace(hour=23)
#: How late a pattern step may end on a loaded two-core machine.
SLACK_S = 0.25


def _light() -> LightConfig:
    return LightConfig(pin_factory="mock", red_pin=PINS[0], green_pin=PINS[1], blue_pin=PINS[2])


def _config(**overrides: Any) -> FeedbackConfig:
    values: dict[str, Any] = {
        "light": _light(),
        "quiet_from": "22:00",
        "quiet_until": "07:00",
        "device_silent_s": 3600,
        "uplink_outage_s": 3600,
    }
    values.update(overrides)
    return FeedbackConfig(**values)


async def _until(feedback: Feedback, predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    """Wait on the component's change signal until ``predicate`` holds."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            feedback.changed.clear()
            if predicate():
                return
            await feedback.changed.wait()


def _durations(pin: Any) -> list[tuple[float, float]]:
    """(state, seconds held) of a mock pin, from gpiozero's ``states`` (time since the
    previous change, new state)."""
    states = pin.states
    return [(states[i].state, states[i + 1].timestamp) for i in range(1, len(states) - 1)]


def _batch(signer: Any, device: str, t_ms: int) -> bytes:
    from protocols.uplink import BatchHeader, Priority, WireReading, encode_body

    body = encode_body(
        BatchHeader("hub-fb-1", "b" * 16, 1, t_ms, Priority.CLINICAL, 1),
        [WireReading("bp", 0x4A04, "mm[Hg]", t_ms, None, "nan", frozenset(), device)],
    )
    return signer.sign(body)


async def test_stored_then_delivered_play_their_patterns_on_the_pins(
    pins: dict[str, Any], signer: Any
) -> None:
    feedback = Feedback(_config(), hub_id="hub-fb-1", devices=DEVICES, local_now=lambda: NOON)
    async with feedback:
        await _until(
            feedback,
            lambda: feedback.light_steps and feedback.light_steps[-1].pattern is Pattern.CALM,
        )
        t_ms = 1_772_000_000_000
        feedback.notify(ReadingStored(CUFF, t_ms))
        await _until(feedback, lambda: feedback.stats.patterns_played == 1)
        feedback.notify(BatchAcknowledged(_batch(signer, CUFF, t_ms), 0))
        await _until(feedback, lambda: feedback.stats.patterns_played == 2)
        await _until(feedback, lambda: feedback.light_steps[-1].pattern is Pattern.CALM)
    patterns = [s.pattern for s in feedback.light_steps]
    stored, delivered = [Pattern.STORED] * 4, [Pattern.DELIVERED] * 2
    assert patterns == [Pattern.CALM, *stored, Pattern.CALM, *delivered, Pattern.CALM]
    # The blue pin: two 300 ms pulses 200 ms apart, nothing else.
    blue = _durations(pins["blue"])
    assert [state for state, _ in blue] == [1.0, 0.0, 1.0]
    for (_, held), want in zip(blue, (0.3, 0.2, 0.3), strict=True):
        assert want <= held < want + SLACK_S, blue
    # The green pin: dim (calm), off for the blue pulses, dim, bright for two seconds, dim.
    green = [state for state, _ in _durations(pins["green"])]
    assert green == [0.08, 0.0, 0.08, 1.0, 0.0, 0.08], green
    bright = next(held for state, held in _durations(pins["green"]) if state == 1.0)
    assert 2.0 <= bright < 2.0 + SLACK_S
    assert pins["red"].states[-1].state == 0.0
    assert feedback.stats.batches_read == 1
    # Left: the light is off.
    assert (pins["red"].state, pins["green"].state, pins["blue"].state) == (0.0, 0.0, 0.0)


async def test_quiet_hours_keep_the_light_dark_and_the_button_shows_the_status(
    pins: dict[str, Any], signer: Any
) -> None:
    config = _config(button_pin=BUTTON, show_s=1.0)
    feedback = Feedback(config, hub_id="hub-fb-1", devices=DEVICES, local_now=lambda: NIGHT)
    async with feedback:
        await _until(feedback, lambda: len(feedback.light_steps) == 1)
        t_ms = 1_772_000_000_000
        feedback.notify(ReadingStored(CUFF, t_ms))
        feedback.notify(BatchAcknowledged(_batch(signer, CUFF, t_ms), 0))
        await _until(
            feedback, lambda: feedback.stats.received == 2 and feedback.base is Pattern.QUIET
        )
        await asyncio.sleep(0)
        assert [s.pattern for s in feedback.light_steps] == [Pattern.QUIET]
        assert feedback.stats.patterns_played == 0
        await _until(feedback, lambda: "button" in feedback.opened)
        pins["button"].drive_low()  # pressed (pull-up, to ground)
        pins["button"].drive_high()
        await _until(feedback, lambda: feedback.light_steps[-1].pattern is Pattern.SHOW_CALM)
        await _until(feedback, lambda: feedback.light_steps[-1].pattern is Pattern.QUIET)
    assert [s.pattern for s in feedback.light_steps] == [
        Pattern.QUIET,
        Pattern.SHOW_CALM,
        Pattern.QUIET,
    ]
    shown = feedback.light_steps[2].at_s - feedback.light_steps[1].at_s
    assert 1.0 <= shown < 1.0 + SLACK_S
    assert [s for s, _ in _durations(pins["green"])] == [1.0]


async def test_a_failing_display_is_counted_and_the_light_goes_on(
    pins: dict[str, Any], tmp_path: Path, font_file: Path
) -> None:
    display = DisplayConfig(
        driver="png", png_file=tmp_path / "missing-dir" / "frame.png", font_file=font_file
    )
    feedback = Feedback(
        _config(display=display), hub_id="hub-fb-1", devices=DEVICES, local_now=lambda: NOON
    )
    async with feedback:
        await _until(feedback, lambda: feedback.stats.failures.get("display", 0) >= 1)
        feedback.notify(ReadingStored(CUFF, 1_772_000_000_000))
        await _until(feedback, lambda: feedback.stats.patterns_played == 1)
    assert feedback.stats.last_failure["display"].startswith("FileNotFoundError")
    assert [s for s, _ in _durations(pins["blue"])] == [1.0, 0.0, 1.0]


async def test_missing_outputs_leave_notify_instant_and_bounded(tmp_path: Path) -> None:
    config = _config(
        light=LightConfig(pin_factory="lgpio"),  # no GPIO chip on this machine
        voice=VoiceConfig(player=["no-such-player-x"]),
    )
    feedback = Feedback(
        config, hub_id="hub-fb-1", devices=DEVICES, local_now=lambda: NOON, queue_size=8
    )
    async with feedback:
        await _until(
            feedback,
            lambda: {"light", "voice"} <= set(feedback.stats.failures),
        )
        for i in range(100):  # never blocks, never raises: the oldest events are dropped
            feedback.notify(ReadingStored(CUFF, 1_772_000_000_000 + i))
        assert feedback.stats.dropped == 92
    assert "OutputUnavailableError" in feedback.stats.last_failure["voice"]


async def test_the_voice_says_the_delivery_in_swedish(
    tmp_path: Path, espeak: str, signer: Any
) -> None:
    out = tmp_path / "said"
    out.mkdir()
    player = ["sh", "-c", 'cat > "$0/$(date +%s%N).wav"', str(out)]
    feedback = Feedback(
        _config(light=None, voice=VoiceConfig(player=player), button_pin=None),
        hub_id="hub-fb-1",
        devices=DEVICES,
        local_now=lambda: NOON,
    )
    async with feedback:
        t_ms = 1_772_000_000_000
        feedback.notify(ReadingStored(CUFF, t_ms))
        feedback.notify(BatchAcknowledged(_batch(signer, CUFF, t_ms), 0))
        feedback.notify(StatusRequested())
        await _until(feedback, lambda: feedback.stats.sentences_said == 2)
    wavs = sorted(out.iterdir())
    assert len(wavs) == 2
    for wav in wavs:
        sound = measure(wav)
        assert sound.length_s > 1.0
        assert sound.rms_amplitude > 0.01


async def test_no_batch_is_read_when_nothing_waits(signer: Any) -> None:
    feedback = Feedback(
        _config(light=None), hub_id="hub-fb-1", devices=DEVICES, local_now=lambda: NOON
    )
    async with feedback:
        feedback.notify(BatchAcknowledged(b"not even cbor", 0))
        feedback.notify(ReadingStored(CUFF, 5))
        feedback.notify(BatchAcknowledged(b"not even cbor", 0))
        feedback.notify(BatchAcknowledged(_batch(signer, CUFF, 5), 0x10))  # nobody subscribed
        feedback.notify(BatchAcknowledged(_batch(signer, CUFF, 5), 0x87))  # refused
        await _until(feedback, lambda: feedback.stats.unreadable_batches == 1)
        await asyncio.sleep(0)
    assert feedback.stats.batches_read == 1
    assert feedback.screen is not None
    assert feedback.screen.rows[0].status_text == "väntar på nätet"


@pytest.fixture
def signer() -> Any:
    """The hub's batch signer with a fresh key."""
    from common.pki import new_private_key_pem
    from common.signing import PemBatchSigner

    return PemBatchSigner("hub-fb-1", new_private_key_pem())
