"""``narhub feedback test``: every light pattern, every main screen and every sentence once,
so the technician can show them to the patient (docs/feedback.md).

It opens the configured outputs itself: run it with the hub stopped (``systemctl stop
narhub``), or the hub holds the pins. Each output's result is reported on its own; a missing
or failing one does not stop the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drivers.errors import DriverError
from gateway.config import FeedbackConfig
from gateway.feedback.outputs import Outputs
from gateway.feedback.patterns import Pattern
from gateway.feedback.screen import LastReading, Screen, screen_model
from gateway.feedback.sentences import (
    Attention,
    Language,
    attention_short,
    every_sentence,
    fixed,
)

#: How long a steady pattern and a screen are shown.
HOLD_S = 2.0


@dataclass
class OutputResult:
    """What one output did: ``ok``, what it showed or said, and the error if it failed."""

    configured: bool
    ok: bool = False
    shown: list[str] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape: every field, in order."""
        return asdict(self)


def sample_screens(language: Language, now: dt.datetime) -> dict[str, Screen]:
    """The display's main states, with made-up times (docs/feedback.md shows them)."""

    def at(hour: int, minute: int, days_ago: int = 0) -> int:
        moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return int((moment - dt.timedelta(days=days_ago)).timestamp() * 1000)

    bp_sent = LastReading("blood_pressure", at(8, 14), sent=True)
    scale_sent = LastReading("scale", at(7, 55), sent=True)
    bp_waiting = LastReading("blood_pressure", at(8, 14), sent=False)
    oxi = LastReading("pulse_oximeter", at(6, 30, days_ago=1), sent=True)

    def screen(last: list[LastReading], need: str | None) -> Screen:
        return screen_model(last, need, language=language, now=now)

    return {
        "all-well": screen([bp_sent, scale_sent, oxi], None),
        "waiting": screen([bp_waiting, scale_sent], None),
        "no-connection": screen(
            [bp_waiting, scale_sent], attention_short(Attention.NO_CONNECTION, None, language)
        ),
        "battery-low": screen(
            [bp_sent, scale_sent], attention_short(Attention.BATTERY_LOW, "scale", language)
        ),
        "device-silent": screen(
            [bp_sent], attention_short(Attention.DEVICE_SILENT, "scale", language)
        ),
        "no-readings": screen([], None),
    }


def _failed(result: OutputResult, exc: Exception) -> None:
    result.ok = False
    result.error = f"{type(exc).__name__}: {exc}"
    result.hint = getattr(exc, "hint", None)


async def _light(outputs: Outputs, result: OutputResult, hold_s: float) -> None:
    light = await asyncio.to_thread(outputs.open_light)
    try:
        for pattern in Pattern:
            for step in pattern.steps:
                light.set(step.colour.scaled(outputs.brightness))
                await asyncio.sleep(step.hold_ms / 1000 if step.hold_ms else hold_s)
            result.shown.append(pattern.name.lower())
        result.ok = True
    finally:
        light.set((0.0, 0.0, 0.0))
        light.close()


async def _display(
    outputs: Outputs, result: OutputResult, screens: dict[str, Screen], hold_s: float
) -> None:
    panel = await asyncio.to_thread(outputs.open_display)
    try:
        for name, screen in screens.items():
            await asyncio.to_thread(panel.show, screen)
            result.shown.append(name)
            await asyncio.sleep(hold_s)
        result.ok = True
    finally:
        await asyncio.to_thread(panel.close)


async def _voice(outputs: Outputs, result: OutputResult, language: Language) -> None:
    voice = outputs.open_voice()
    for name, sentence in every_sentence(language):
        await voice.say(sentence)
        result.shown.append(name)
    result.ok = True


async def _guarded(result: OutputResult, run: Callable[[], Any]) -> None:
    try:
        await run()
    except (DriverError, OSError, ValueError, RuntimeError) as exc:
        _failed(result, exc)


async def run_test(
    config: FeedbackConfig | None,
    *,
    hold_s: float = HOLD_S,
    now: dt.datetime | None = None,
    only: set[str] | None = None,
) -> dict[str, OutputResult]:
    """Play every pattern, show every main screen, say every sentence (``only``: of these
    outputs), each output after the other."""
    results = {
        name: OutputResult(configured=config is not None and getattr(config, name) is not None)
        for name in ("light", "display", "voice")
    }
    if config is None:
        return results
    outputs = Outputs(config)
    moment = now or dt.datetime.now().astimezone()
    wanted = only or set(results)
    if config.light is not None and "light" in wanted:
        await _guarded(results["light"], lambda: _light(outputs, results["light"], hold_s))
    if config.display is not None and "display" in wanted:
        screens = sample_screens(config.language, moment)
        await _guarded(
            results["display"], lambda: _display(outputs, results["display"], screens, hold_s)
        )
    if config.voice is not None and "voice" in wanted:
        await _guarded(results["voice"], lambda: _voice(outputs, results["voice"], config.language))
    return results


def write_frames(directory: Path, font_file: Path, now: dt.datetime) -> list[Path]:
    """The main screens as PNGs (320x240, both languages): ``{state}.{language}.png``."""
    from drivers.feedback.render import render, save_png  # noqa: PLC0415 - display extra

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    languages: tuple[Language, ...] = ("sv", "en")
    for language in languages:
        for name, screen in sample_screens(language, now).items():
            path = directory / f"{name}.{language}.png"
            save_png(render(screen, (320, 240), font_file), path)
            written.append(path)
    return written


__all__ = ["OutputResult", "fixed", "run_test", "sample_screens", "write_frames"]
