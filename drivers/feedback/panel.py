"""The small display, through luma (the one module that imports it): SPI LCDs (luma.lcd:
ST7789, ILI9341), OLEDs (luma.oled: SSD1306, SH1106 on I2C, SSD1322 on SPI), an HDMI or DSI
screen through the Linux framebuffer (luma.core ``linux_framebuffer``), or ``png``: each frame
written to a file (development, the virtual rig, benchmarks).

luma was chosen because one maintained, pure-Python library drives all of these with one
call (``device.display(image)`` of a Pillow image: luma.core docs, "API Documentation",
``luma.core.device``), its panels are the common ones sold for the Raspberry Pi, and a Pillow
frame can be tested without a panel. Frames are drawn by :mod:`drivers.feedback.render`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from drivers.feedback import OutputUnavailableError

#: driver name -> (module, class, bus)
_LUMA = {
    "st7789": ("luma.lcd.device", "st7789", "spi"),
    "ili9341": ("luma.lcd.device", "ili9341", "spi"),
    "ssd1322": ("luma.oled.device", "ssd1322", "spi"),
    "ssd1306": ("luma.oled.device", "ssd1306", "i2c"),
    "sh1106": ("luma.oled.device", "sh1106", "i2c"),
}


class PanelSettings(Protocol):
    """What the panel reads from ``[feedback.display]`` (gateway.config.DisplayConfig)."""

    @property
    def driver(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def rotate(self) -> int: ...
    @property
    def spi_port(self) -> int: ...
    @property
    def spi_device(self) -> int: ...
    @property
    def i2c_port(self) -> int: ...
    @property
    def i2c_address(self) -> int: ...
    @property
    def gpio_dc(self) -> int: ...
    @property
    def gpio_rst(self) -> int: ...
    @property
    def font_file(self) -> Path: ...
    @property
    def png_file(self) -> Path | None: ...


def _render() -> Any:
    try:
        return importlib.import_module("drivers.feedback.render")
    except ImportError as exc:
        raise OutputUnavailableError(
            "display", f"{exc.name} is not installed", "pip install 'narhub[display]'"
        ) from None


def _luma_device(settings: PanelSettings) -> Any:
    try:
        if settings.driver == "framebuffer":
            from luma.core.device import linux_framebuffer  # noqa: PLC0415 - display only

            return linux_framebuffer("/dev/fb0")
        module_name, class_name, bus = _LUMA[settings.driver]
        from luma.core.interface import serial  # noqa: PLC0415

        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise OutputUnavailableError(
            "display", f"{exc.name} is not installed", "pip install 'narhub[display]'"
        ) from None
    try:
        if bus == "spi":
            interface = serial.spi(
                port=settings.spi_port,
                device=settings.spi_device,
                gpio_DC=settings.gpio_dc,
                gpio_RST=settings.gpio_rst,
            )
        else:
            interface = serial.i2c(port=settings.i2c_port, address=settings.i2c_address)
        return getattr(module, class_name)(
            interface, width=settings.width, height=settings.height, rotate=settings.rotate
        )
    except Exception as exc:  # noqa: BLE001 - luma raises its own and OS errors for no panel
        raise OutputUnavailableError(
            "display",
            f"{settings.driver}: {type(exc).__name__}: {exc}",
            "check the wiring, and that SPI or I2C is enabled (raspi-config)",
        ) from None


class Panel:
    """Shows screen models; ``last_frame`` is the frame last drawn (None: off)."""

    def __init__(self, settings: PanelSettings) -> None:
        self._render = _render()
        self._settings = settings
        self._device: Any = None
        if settings.driver != "png":
            self._device = _luma_device(settings)
            width, height = self._device.size
            self.size: tuple[int, int] = (int(width), int(height))
        else:
            self.size = (settings.width, settings.height)
        self._render.font(settings.font_file, 12)  # a missing font is found now, not later
        self.last_frame: Any = None

    def show(self, screen: Any) -> None:
        """Draw the model and send it to the panel (blocking: run it in a thread)."""
        frame = self._render.render(screen, self.size, self._settings.font_file)
        if self._device is None:
            assert self._settings.png_file is not None
            self._render.save_png(frame, self._settings.png_file)
        else:
            self._device.display(frame.image.convert(self._device.mode))
            self._device.show()
        self.last_frame = frame

    def off(self) -> None:
        """Dark: the panel switched off (or a black frame written)."""
        if self._device is None:
            assert self._settings.png_file is not None
            blank = self._render.render(_Blank(), self.size, self._settings.font_file)
            self._render.save_png(blank, self._settings.png_file)
        else:
            self._device.hide()
        self.last_frame = None

    def close(self) -> None:
        """Release the panel (luma switches it off)."""
        if self._device is not None:
            self._device.cleanup()


class _Blank:
    rows: tuple[()] = ()
    empty_text: str | None = None
    attention: str | None = None
