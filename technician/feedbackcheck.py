"""``narhub doctor``'s feedback lines: what is attached and whether it works.

For each configured output (light, button, display, voice) one line: what this machine has
for it (the library, the program, the font, the voice) and, when the hub runs, what the hub
says of it (gateway/feedback/report.py: open, or failing and why). Nothing is opened here:
the running hub holds the pins and the panel; ``narhub feedback test`` shows them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from typing import Any

from gateway.config import FeedbackConfig, HubConfig
from gateway.feedback.outputs import Outputs
from gateway.feedback.report import read_report, report_path
from technician.check import Check

_DISPLAY_MODULES = {
    "st7789": "luma.lcd",
    "ili9341": "luma.lcd",
    "ssd1306": "luma.oled",
    "sh1106": "luma.oled",
    "ssd1322": "luma.oled",
    "framebuffer": "luma.core",
    "png": "PIL",
}


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _hub_says(report: dict[str, Any] | None, output: str) -> tuple[bool | None, str]:
    """(ok per the running hub or None when it is not running, what it says)."""
    if report is None:
        return None, "hub not running: `narhub feedback test` shows it"
    if output in report.get("opened", []):
        failures = report.get("failures", {}).get(output, 0)
        return True, "working" + (f" (after {failures} failures)" if failures else "")
    last = report.get("last_failure", {}).get(output)
    if last:
        return False, f"failing: {last}"
    return None, "the hub is opening it"


def _line(
    name: str, here_ok: bool, here: str, hint: str | None, report: dict[str, Any] | None
) -> Check:
    hub_ok, says = _hub_says(report, name)
    ok = here_ok and hub_ok is not False
    return Check(f"feedback {name}", ok, f"{here}; {says}", None if ok else hint)


def _voice_here(config: FeedbackConfig) -> tuple[bool, str, str | None]:
    voice = config.voice
    assert voice is not None
    name = Outputs(config).voice_name()
    if shutil.which("espeak-ng") is None:
        return False, "espeak-ng missing", "apt-get install espeak-ng"
    if voice.player and shutil.which(voice.player[0]) is None:
        return False, f"player {voice.player[0]} missing", "apt-get install alsa-utils"
    from drivers.feedback.speech import voice_available  # noqa: PLC0415

    if not asyncio.run(voice_available(name)):
        return False, f"espeak-ng has no voice {name!r}", "apt-get install espeak-ng-data"
    return True, f"espeak-ng voice {name}, volume {voice.volume_percent} %", None


def feedback_checks(config: HubConfig) -> list[Check]:
    """One line per configured feedback output (none without ``[feedback]``)."""
    feedback = config.feedback
    if feedback is None:
        return []
    report = read_report(report_path(config.data_dir))
    checks = []
    has_gpio = _has_module("gpiozero")
    if feedback.light is not None:
        light = feedback.light
        pins = f"RGB on GPIO {light.red_pin}/{light.green_pin}/{light.blue_pin}"
        here = f"{pins}, {light.pin_factory} pins" if has_gpio else "gpiozero missing"
        checks.append(_line("light", has_gpio, here, "pip install gpiozero", report))
    if feedback.button_pin is not None:
        here = f"button on GPIO {feedback.button_pin}" if has_gpio else "gpiozero missing"
        checks.append(_line("button", has_gpio, here, "pip install gpiozero", report))
    if feedback.display is not None:
        display = feedback.display
        module = _DISPLAY_MODULES[display.driver]
        present = _has_module(module) and _has_module("PIL")
        font = display.font_file.exists()
        here = f"{display.driver} {display.width}x{display.height}"
        hint = None
        if not present:
            here, hint = f"{here}, {module} missing", "pip install 'narhub[display]'"
        elif not font:
            here, hint = (
                f"{here}, font {display.font_file} missing",
                "apt-get install fonts-dejavu-core",
            )
        checks.append(_line("display", present and font, here, hint, report))
    if feedback.voice is not None:
        ok, here, hint = _voice_here(feedback)
        checks.append(_line("voice", ok, here, hint, report))
    return checks
