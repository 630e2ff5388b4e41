"""Outputs for the patient's feedback (docs/feedback.md): a status light and button
(:mod:`.light`, gpiozero), a small display (:mod:`.render` draws with Pillow, :mod:`.panel`
drives the panel with luma) and a voice (:mod:`.speech`, espeak-ng). Each library is
imported in its one module, and only when that output is configured."""

from __future__ import annotations

from drivers.errors import DriverError


class OutputUnavailableError(DriverError, RuntimeError):
    """A feedback output cannot run here: ``output`` names it, ``reason`` says why and
    ``hint`` what to install or check."""

    def __init__(self, output: str, reason: str, hint: str) -> None:
        self.output = output
        self.reason = reason
        self.hint = hint
        super().__init__(f"{output}: {reason} ({hint})")
