"""Feedback tests: the tools and fonts they need, and gpiozero's mock pins."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.feedback.light import mock_pin

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
#: Light pins (BCM) used by the tests: red, green, blue, and the button.
PINS = (17, 27, 22)
BUTTON = 26


def require(what: str, present: bool, debian: str) -> None:
    """Skip without ``what`` on a developer's machine; under CI (``CI=true``), where
    ``make test`` installs it, fail naming the package."""
    if present:
        return
    message = f"{what} is missing: apt-get install {debian} (make feedback-deps)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def font_file() -> Path:
    """DejaVu Sans Bold (Swedish letters)."""
    require("DejaVu Sans Bold", FONT.exists(), "fonts-dejavu-core")
    return FONT


@pytest.fixture
def espeak() -> str:
    """espeak-ng and sox."""
    require("espeak-ng", shutil.which("espeak-ng") is not None, "espeak-ng")
    require("sox", shutil.which("sox") is not None, "sox")
    return "espeak-ng"


@dataclass(frozen=True)
class Sound:
    """What sox measured (``sox FILE -n stat``)."""

    length_s: float
    rms_amplitude: float


def measure(wav: Path) -> Sound:
    """Length and RMS amplitude of a WAV, by sox's ``stat`` effect (sox(1), "stat")."""
    done = subprocess.run(
        ["sox", str(wav), "-n", "stat"], capture_output=True, text=True, check=True
    )
    fields = {}
    for line in done.stderr.splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return Sound(float(fields["Length (seconds)"]), float(fields["RMS     amplitude"]))


@pytest.fixture
def pins() -> dict[str, object]:
    """gpiozero's mock pins of the light and the button, their histories cleared."""
    found = {name: mock_pin(n) for name, n in zip(("red", "green", "blue"), PINS, strict=True)}
    found["button"] = mock_pin(BUTTON)
    for pin in found.values():
        pin.clear_states()  # type: ignore[attr-defined]
    return found
