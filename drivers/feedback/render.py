"""The display's frames, drawn with Pillow (the one module that imports it).

:func:`render` lays a :class:`gateway.feedback.screen.Screen`-like model out in large type
(a row per device: its label and time, then "skickat" or "väntar på nätet"; the thing that
needs a look in a dark band at the bottom) and returns the image with every text run it
placed. :func:`run_drawn` checks a run without OCR: it draws the run alone, the same way,
and compares those pixels with the frame's.

Type sizes follow the panel's height: on a 240-pixel panel the rows are 34 px type (about
6 mm on a 2.8-inch panel) and the status 26 px; large print guidance asks for at least
16 pt on paper, and a hub is read from further away.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageDraw, ImageFont

from drivers.feedback import OutputUnavailableError

BACKGROUND = (0, 0, 0)
TEXT = (255, 255, 255)
SENT = (90, 220, 90)
WAITING = (255, 190, 60)
BAND = (255, 190, 60)
BAND_TEXT = (0, 0, 0)
MARGIN = 8


class RowLike(Protocol):
    """A device row (gateway.feedback.screen.Row)."""

    @property
    def label(self) -> str: ...
    @property
    def time_text(self) -> str: ...
    @property
    def status_text(self) -> str: ...
    @property
    def sent(self) -> bool: ...


class ScreenLike(Protocol):
    """The screen model (gateway.feedback.screen.Screen)."""

    @property
    def rows(self) -> Sequence[RowLike]: ...
    @property
    def empty_text(self) -> str | None: ...
    @property
    def attention(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PlacedRun:
    """A text run as drawn: its text, top-left corner, type size (px), colours, bounding box
    (left, top, right, bottom) on the frame."""

    text: str
    xy: tuple[int, int]
    size_px: int
    fill: tuple[int, int, int]
    background: tuple[int, int, int]
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Frame:
    """A drawn frame: the Pillow image and the runs on it."""

    image: Image.Image
    runs: tuple[PlacedRun, ...]


@functools.lru_cache(maxsize=8)
def font(path: Path, size_px: int) -> ImageFont.FreeTypeFont:
    """A TrueType font (cached); a missing file is reported with what to install."""
    try:
        return ImageFont.truetype(str(path), size_px)
    except OSError:
        raise OutputUnavailableError(
            "display", f"font {path} not readable", "apt-get install fonts-dejavu-core"
        ) from None


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and face.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


class _Layout:
    def __init__(self, size: tuple[int, int], font_file: Path) -> None:
        self.width, self.height = size
        self.font_file = font_file
        self.image = Image.new("RGB", size, BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)
        self.runs: list[PlacedRun] = []
        unit = self.height / 240
        self.big = max(12, round(34 * unit))
        self.small = max(10, round(26 * unit))

    def text(
        self,
        xy: tuple[int, int],
        text: str,
        size_px: int,
        fill: tuple[int, int, int],
        background: tuple[int, int, int] = BACKGROUND,
    ) -> PlacedRun:
        size_px = self.fitting(text, size_px)
        face = font(self.font_file, size_px)
        self.draw.text(xy, text, font=face, fill=fill)
        left, top, right, bottom = self.draw.textbbox(xy, text, font=face)
        run = PlacedRun(
            text, xy, size_px, fill, background, (int(left), int(top), int(right), int(bottom))
        )
        self.runs.append(run)
        return run

    def fitting(self, text: str, size_px: int) -> int:
        """``size_px``, or smaller (down to 70 %) until the text fits the width."""
        room = self.width - 2 * MARGIN
        smallest = max(8, round(size_px * 0.7))
        while size_px > smallest and font(self.font_file, size_px).getlength(text) > room:
            size_px -= 1
        return size_px

    def band(self, text: str) -> int:
        """The attention band at the bottom; returns its top."""
        face = font(self.font_file, self.small)
        lines = _wrap(text, face, self.width - 2 * MARGIN)
        line_h = round(self.small * 1.2)
        top = self.height - len(lines) * line_h - 2 * MARGIN
        self.draw.rectangle((0, top, self.width, self.height), fill=BAND)
        for i, line in enumerate(lines):
            self.text((MARGIN, top + MARGIN + i * line_h), line, self.small, BAND_TEXT, BAND)
        return top


def render(screen: ScreenLike, size: tuple[int, int], font_file: Path) -> Frame:
    """Draw the screen model on a ``size`` frame: per device its label in large type, under
    it the time and "skickat" (green) or "väntar på nätet" (amber)."""
    layout = _Layout(size, font_file)
    bottom = layout.height
    if screen.attention:
        bottom = layout.band(screen.attention) - MARGIN
    y = MARGIN
    if screen.empty_text:
        layout.text((MARGIN, y), screen.empty_text, layout.big, TEXT)
    row_h = round(layout.big * 1.1) + round(layout.small * 1.15) + MARGIN // 2
    for row in screen.rows:
        if y + row_h > bottom:
            break  # newest first: what does not fit is the oldest
        layout.text((MARGIN, y), row.label, layout.big, TEXT)
        y += round(layout.big * 1.1)
        size_px = layout.fitting(f"{row.time_text}  {row.status_text}", layout.small)
        clock = layout.text((MARGIN, y), row.time_text, size_px, TEXT)
        gap = round(font(layout.font_file, size_px).getlength("  "))
        colour = SENT if row.sent else WAITING
        layout.text((clock.box[2] + gap, y), row.status_text, size_px, colour)
        y += round(layout.small * 1.15) + MARGIN // 2
    return Frame(layout.image, tuple(layout.runs))


def run_drawn(frame: Frame, run: PlacedRun, font_file: Path) -> bool:
    """True when the frame holds exactly this run's pixels in its box: the run is drawn
    alone on its background, the same way, and the two boxes compared pixel for pixel."""
    alone = Image.new("RGB", frame.image.size, run.background)
    ImageDraw.Draw(alone).text(run.xy, run.text, font=font(font_file, run.size_px), fill=run.fill)
    return bool(alone.crop(run.box).tobytes() == frame.image.crop(run.box).tobytes())


def save_png(frame: Frame, path: Path) -> None:
    """Write the frame as a PNG, atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    frame.image.save(tmp, format="PNG")
    tmp.replace(path)
