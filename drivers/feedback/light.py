"""The status light and the status button on GPIO, through gpiozero (the one module that
imports it).

gpiozero runs on every Raspberry Pi model: its pin factories (lgpio, RPi.GPIO, pigpio, a
native one) are chosen by name (gpiozero docs, "API - Pins", "Changing the pin factory").
``mock`` is gpiozero's own :class:`gpiozero.pins.mock.MockFactory` with PWM-capable mock pins
(gpiozero docs, "API - Pins", "Mock pins"): no hardware, for the virtual rig and the tests.
With ``trace_file`` (mock only) every colour the mock pins take is appended as a JSON line:
``{"t_mono": s, "wall_ms": ms, "r": duty, "g": duty, "b": duty}``, read from the pins.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.feedback import OutputUnavailableError

#: Factories by configuration name: gpiozero's module and class (gpiozero docs, "API - Pins").
_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}

#: Factories made so far, by name: the light and the button share one (and its pins).
_made: dict[str, Any] = {}


def _gpiozero() -> Any:
    try:
        import gpiozero  # noqa: PLC0415 - only when a light or button is configured
    except ImportError as exc:
        raise OutputUnavailableError(
            "light", f"gpiozero not importable ({exc.name})", "pip install gpiozero"
        ) from None
    return gpiozero


def pin_factory(name: str) -> Any:
    """gpiozero's pin factory by configuration name (None: gpiozero's default choice), one
    per process and name, so that the light and the button share it (and, mocked, its pins)."""
    _gpiozero()
    if name == "auto":
        return None
    if name in _made:
        return _made[name]
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: PLC0415

        _made[name] = MockFactory(pin_class=MockPWMPin)
        return _made[name]
    module, cls = _FACTORIES[name]
    try:
        _made[name] = getattr(importlib.import_module(module), cls)()
        return _made[name]
    except Exception as exc:  # noqa: BLE001 - any failure to open the GPIO chip is the finding
        raise OutputUnavailableError(
            "light",
            f"pin factory {name!r} unavailable ({type(exc).__name__}: {exc})",
            "install its library (python3-lgpio on Raspberry Pi OS) or choose pin_factory",
        ) from None


def _pin_error(output: str, exc: Exception) -> OutputUnavailableError:
    return OutputUnavailableError(
        output,
        f"{type(exc).__name__}: {exc}",
        "check the pin numbers (BCM) and that no other program uses them",
    )


class RgbLight:
    """An RGB LED on three PWM pins (gpiozero ``RGBLED``)."""

    def __init__(
        self,
        pins: tuple[int, int, int],
        *,
        factory_name: str = "auto",
        active_high: bool = True,
        trace_file: Path | None = None,
    ) -> None:
        gpiozero = _gpiozero()
        factory = pin_factory(factory_name)
        if trace_file is not None and factory_name != "mock":
            raise OutputUnavailableError("light", "trace_file needs the mock pins", "see config")
        try:
            self._led = gpiozero.RGBLED(
                *pins, active_high=active_high, pwm=True, pin_factory=factory
            )
        except Exception as exc:  # noqa: BLE001 - gpiozero raises many types for a bad pin
            raise _pin_error("light", exc) from None
        self._trace = trace_file
        self.pins = pins

    def set(self, rgb: tuple[float, float, float]) -> None:
        """Set the three duty cycles (0..1)."""
        self._led.value = rgb
        if self._trace is not None:
            self._write_trace()

    def _write_trace(self) -> None:
        assert self._trace is not None
        # The mock pins themselves (MockFactory.pin gives the pin object the LED drives).
        red, green, blue = (round(float(mock_pin(n).state), 3) for n in self.pins)
        line = {
            "t_mono": round(time.monotonic(), 4),
            "wall_ms": time.time_ns() // 1_000_000,
            "r": red,
            "g": green,
            "b": blue,
        }
        with self._trace.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    def close(self) -> None:
        """Switch off and release the pins."""
        self._led.close()


class StatusButton:
    """A push button to ground on one pin (internal pull-up), calling ``on_press`` from
    gpiozero's thread (the caller hands it to its event loop)."""

    def __init__(
        self, pin: int, on_press: Callable[[], None], *, factory_name: str = "auto"
    ) -> None:
        gpiozero = _gpiozero()
        factory = pin_factory(factory_name)
        try:
            self._button = gpiozero.Button(pin, pull_up=True, bounce_time=0.05, pin_factory=factory)
        except Exception as exc:  # noqa: BLE001 - as above
            raise _pin_error("button", exc) from None
        self._button.when_pressed = on_press
        self.pin = pin

    def close(self) -> None:
        """Release the pin."""
        self._button.close()


def mock_pin(number: int) -> Any:
    """The mock pin with this BCM number (tests and the rig press the button with it)."""
    factory = pin_factory("mock")
    return factory.pin(f"GPIO{number}")
