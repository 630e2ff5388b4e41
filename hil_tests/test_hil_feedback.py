"""The patient's status light in a home (docs/feedback.md): the hub runs as a process with its
light on gpiozero's mock pins, whose every colour goes to a trace file (``trace_file``).

Each event of the home gives its pattern on the pins, in order and in time: a reading stored
(two blue pulses), its delivery (two seconds of bright green), a connection outage and a
device not heard from (steady amber after their thresholds), a flat battery (amber). Quiet
hours keep the pins dark. And outputs that fail (a display writing into a missing folder, a
voice without a player) leave the reading path untouched: the region's output still holds
every ledger reading exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hil_rig import Rig, until

from gateway.config import DisplayConfig, FeedbackConfig, LightConfig, VoiceConfig
from rig.home import HubOptions

pytestmark = [pytest.mark.broker, pytest.mark.micropython, pytest.mark.slow]

#: Colours of docs/feedback.md's table, as duty cycles (r, g, b) at full brightness.
CALM = (0.0, 0.08, 0.0)
BLUE = (0.0, 0.0, 1.0)
GREEN = (0.0, 1.0, 0.0)
AMBER = (1.0, 0.35, 0.0)
OFF = (0.0, 0.0, 0.0)
#: The outage threshold: longer than the reconnect after a dropped link (the uplink's backoff
#: starts below a second), shorter than the test's cut.
OUTAGE_S = 10.0
#: The silent-device threshold: after the outage and the reconnection's backoff.
SILENT_S = 90.0
#: How late a colour may change on a loaded two-core machine (another process's timers).
SLACK_S = 0.4
#: The component reads the connection every 2 s; the uplink notices an outage within its
#: keepalive; allow both.
DETECT_S = 8.0


@dataclass(frozen=True)
class Change:
    """One line of the light's trace: the pins' duty cycles from ``t`` (monotonic s)."""

    t: float
    wall_ms: int
    rgb: tuple[float, float, float]


def _trace(path: Path) -> list[Change]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    changes = []
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line being written
        changes.append(Change(d["t_mono"], d["wall_ms"], (d["r"], d["g"], d["b"])))
    return changes


def _first(changes: list[Change], rgb: tuple[float, float, float], after: float = 0) -> Change:
    return next(c for c in changes if c.rgb == rgb and c.t >= after)


def _held(changes: list[Change], change: Change) -> float:
    """How long the colour of ``change`` stayed on."""
    i = changes.index(change)
    return changes[i + 1].t - change.t


def _light(trace: Path) -> LightConfig:
    return LightConfig(pin_factory="mock", trace_file=trace)


def _has(trace: Path, rgb: tuple[float, float, float], after: float = 0) -> Callable[[], bool]:
    return lambda: any(c.rgb == rgb and c.t >= after for c in _trace(trace))


async def test_a_reading_its_delivery_an_outage_and_a_silent_device_on_the_pins(
    rig: Rig, workdir: Path
) -> None:
    rig.require("ble:blood_pressure", "ble:thermometer", "internet-control")
    trace = workdir / "light.jsonl"
    feedback = FeedbackConfig(
        quiet_from="00:00",
        quiet_until="00:00",  # no quiet hours
        device_silent_s=SILENT_S,
        uplink_outage_s=OUTAGE_S,
        light=_light(trace),
    )
    async with rig.home("feedback_day", workdir, hub_options=HubOptions(feedback=feedback)) as home:
        await until(lambda: bool(_trace(trace)), 30, "the light's first colour")
        start = _trace(trace)[0]
        assert start.rgb == CALM  # all is well at the start
        await until(_has(trace, CALM, after=start.t + 0.1), 30, "the delivery, then calm")
        await until(lambda: _trace(trace)[-1].rgb == CALM, 30, "calm after the delivery")
        # The home's connection drops: amber after uplink_outage_s, calm when it is back.
        outage = time.monotonic()
        await home.internet(False)
        await until(_has(trace, AMBER), OUTAGE_S + DETECT_S + 5, "amber for the outage")
        await home.internet(True)
        back = time.monotonic()
        # The uplink reconnects after its backoff (full jitter, up to a minute).
        await until(_has(trace, CALM, after=back), 75, "calm with the connection")
        # The thermometer was never used: amber once device_silent_s passed since the start.
        await until(_has(trace, AMBER, after=back + 0.5), 90, "amber for the silent device")
        result = await home.wait_delivered(timeout_s=30)
        ledger = home.ledger()
    assert result.exact, result.explain()
    changes = _trace(trace)
    # 1. The reading: two 300 ms blue pulses, 200 ms apart, within seconds of the reading.
    taken_ms = min(e.taken_ms or 0 for e in ledger if e.kind == "blood_pressure")
    blue = [c for c in changes if c.rgb == BLUE]
    assert len(blue) == 2, changes
    assert 0 <= blue[0].wall_ms - taken_ms < 10_000
    for pulse in blue:
        assert 0.3 <= _held(changes, pulse) < 0.3 + SLACK_S
    assert 0.2 <= blue[1].t - (blue[0].t + _held(changes, blue[0])) < 0.2 + SLACK_S
    # 2. Its delivery: after the pulses, two seconds of bright green, then calm.
    green = _first(changes, GREEN)
    assert green.t > blue[1].t
    assert 2.0 <= _held(changes, green) < 2.0 + SLACK_S
    # 3. The outage: amber no sooner than uplink_outage_s after the cut, calm once back.
    amber = _first(changes, AMBER)
    assert amber.t > green.t
    assert 4.0 <= amber.t - outage < 4.0 + DETECT_S + 2, amber.t - outage
    calm = _first(changes, CALM, after=amber.t)
    # 4. The silent thermometer: amber again, device_silent_s after the component started
    #    (its light's first colour follows the start by the time the pins take to open).
    silent = _first(changes, AMBER, after=calm.t)
    assert SILENT_S - 0.5 <= silent.t - start.t < SILENT_S + 2 + SLACK_S, silent.t - start.t
    order = [c.rgb for c in changes if c.rgb in (BLUE, GREEN, AMBER)]
    assert order == [BLUE, BLUE, GREEN, AMBER, AMBER], order


async def test_a_flat_battery_and_failing_outputs_leave_the_readings_exact(
    rig: Rig, workdir: Path
) -> None:
    rig.require("ble:scale", "board")
    trace = workdir / "light.jsonl"
    feedback = FeedbackConfig(
        quiet_from="00:00",
        quiet_until="00:00",  # no quiet hours
        device_silent_s=3600,
        uplink_outage_s=3600,
        light=_light(trace),
        # Both fail on every try: a folder that does not exist, a player that is not there.
        display=DisplayConfig(driver="png", png_file=workdir / "no-such-dir" / "frame.png"),
        voice=VoiceConfig(player=["no-such-player-x"]),
    )
    options = HubOptions(feedback=feedback)
    async with rig.home("feedback_battery", workdir, hub_options=options) as home:
        await until(_has(trace, AMBER), 60, "amber for the flat battery")
        await home.wait_rig_done(timeout_s=30)
        result = await home.wait_delivered(timeout_s=30)
        report = json.loads((workdir / "hub" / "data" / "feedback.json").read_text())
    assert result.exact, result.explain()
    assert result.produced["scale"] == 2
    assert result.delivered["scale"] == 2
    changes = _trace(trace)
    # The session reads the battery (amber) and takes the readings (pulses, then green over
    # the status); the status after them is amber again.
    order = [c.rgb for c in changes if c.rgb in (BLUE, GREEN, AMBER)]
    assert [c for c in order if c != AMBER] == [BLUE, BLUE, GREEN], order
    assert order[-1] == AMBER, order
    assert report["opened"] == ["light"]
    assert report["failures"]["display"] >= 1
    assert report["failures"]["voice"] >= 1


async def test_quiet_hours_keep_the_pins_dark(rig: Rig, workdir: Path) -> None:
    rig.require("ble:scale", "board")
    trace = workdir / "light.jsonl"
    now = dt.datetime.now().astimezone()
    feedback = FeedbackConfig(
        quiet_from=(now - dt.timedelta(minutes=1)).strftime("%H:%M"),
        quiet_until=(now + dt.timedelta(minutes=30)).strftime("%H:%M"),
        device_silent_s=3600,
        uplink_outage_s=3600,
        light=_light(trace),
    )
    async with rig.home(
        "feedback_battery", workdir, hub_options=HubOptions(feedback=feedback)
    ) as home:
        await home.wait_rig_done(timeout_s=60)
        result = await home.wait_delivered(timeout_s=30)
        await asyncio.sleep(3)  # a schedule: patterns would have played by now
        changes = _trace(trace)
    assert result.exact, result.explain()
    assert result.delivered["scale"] == 2  # readings stored and delivered, battery flat
    assert changes, "the light never started"
    assert {c.rgb for c in changes} == {OFF}, changes
