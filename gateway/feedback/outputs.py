"""Opening the configured outputs (drivers/feedback/), each only when it is configured.

The drivers' libraries (gpiozero, Pillow and luma, the espeak-ng program) are imported or
looked for when an output opens, so a hub without ``[feedback]``, or without the display
extra, loads none of them; a missing one is an
:class:`~drivers.feedback.OutputUnavailableError` of that output, counted by the component.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config import FeedbackConfig


class Outputs:
    """The outputs of one ``[feedback]`` configuration (a seam: ``narhub feedback test``
    and the tests open the same ones)."""

    def __init__(self, config: FeedbackConfig) -> None:
        self.config = config
        light = config.light
        self.brightness = 1.0 if light is None else light.brightness_percent / 100

    def open_light(self) -> Any:
        """The RGB LED (blocking: gpiozero sets the pins up)."""
        from drivers.feedback.light import RgbLight  # noqa: PLC0415 - only when configured

        light = self.config.light
        assert light is not None
        return RgbLight(
            (light.red_pin, light.green_pin, light.blue_pin),
            factory_name=light.pin_factory,
            active_high=light.active_high,
            trace_file=light.trace_file,
        )

    def open_button(self, on_press: Callable[[], None]) -> Any:
        """The status button, on the light's pin factory (or gpiozero's default)."""
        from drivers.feedback.light import StatusButton  # noqa: PLC0415

        assert self.config.button_pin is not None
        factory = "auto" if self.config.light is None else self.config.light.pin_factory
        return StatusButton(self.config.button_pin, on_press, factory_name=factory)

    def open_display(self) -> Any:
        """The panel (blocking: luma initialises it)."""
        from drivers.feedback.panel import Panel  # noqa: PLC0415

        assert self.config.display is not None
        return Panel(self.config.display)

    def voice_name(self) -> str:
        """The espeak-ng voice: the configured one, else the language's."""
        voice = self.config.voice
        return (voice.voice if voice is not None and voice.voice else None) or self.config.language

    def open_voice(self) -> Any:
        """The voice (espeak-ng and the player must be installed)."""
        from drivers.feedback.speech import EspeakVoice  # noqa: PLC0415

        voice = self.config.voice
        assert voice is not None
        return EspeakVoice(
            self.voice_name(),
            volume_percent=voice.volume_percent,
            words_per_minute=voice.words_per_minute,
            player=voice.player,
        )
