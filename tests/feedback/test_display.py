"""The display: screen models drawn with Pillow, the text checked in the frame without OCR
(each run drawn alone the same way and compared pixel for pixel), and docs/feedback/'s PNGs
held against a fresh drawing."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from drivers.feedback.render import PlacedRun, render, run_drawn
from gateway.feedback.screen import LastReading, screen_model
from technician.feedbacktest import sample_screens, write_frames

DOCS = Path(__file__).resolve().parents[2] / "docs" / "feedback"
#: The moment docs/feedback/'s frames show (their times are made up around it).
DOCS_NOW = dt.datetime(2026, 3, 3, 9, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
SIZE = (320, 240)


def test_every_run_of_every_main_screen_is_in_its_frame(font_file: Path) -> None:
    for language in ("sv", "en"):
        for name, screen in sample_screens(language, DOCS_NOW).items():  # type: ignore[arg-type]
            frame = render(screen, SIZE, font_file)
            texts = [run.text for run in frame.runs]
            labels = [r.label for r in screen.rows]
            drawn = [t for t in texts if t in labels]
            # Newest first; what does not fit above the band is the oldest, never all.
            assert drawn == labels[: len(drawn)], (name, texts)
            assert len(drawn) >= min(1, len(labels)), (name, texts)
            for row in screen.rows[: len(drawn)]:
                assert row.time_text in texts, (name, texts)
                assert row.status_text in texts, (name, texts)
            if screen.attention:
                assert " ".join(t for t in texts if t in screen.attention) == screen.attention
            for run in frame.runs:
                assert run_drawn(frame, run, font_file), (name, run.text)
                left, top, right, bottom = run.box
                assert 0 <= left < right <= SIZE[0], (name, run)
                assert 0 <= top < bottom <= SIZE[1], (name, run)


def test_the_check_sees_a_wrong_word(font_file: Path) -> None:
    now = DOCS_NOW
    reading = LastReading("blood_pressure", int(now.timestamp() * 1000), sent=False)
    frame = render(screen_model([reading], None, language="sv", now=now), SIZE, font_file)
    waiting = next(r for r in frame.runs if r.text == "väntar på nätet")
    assert run_drawn(frame, waiting, font_file)
    assert not run_drawn(frame, replace(waiting, text="skickat"), font_file)
    assert not run_drawn(frame, replace(waiting, xy=(waiting.xy[0] + 2, waiting.xy[1])), font_file)


def test_swedish_letters_are_drawn_not_boxes(font_file: Path) -> None:
    """å, ä and ö each differ from a, a and o: the font has them (the bundled Pillow
    font draws a box for all three)."""
    now = DOCS_NOW
    for text in ("väntar på nätet", "Syremättnad", "Mätningarna sparas"):
        plain = text.replace("ä", "a").replace("å", "a").replace("ö", "o")
        frame = render(_one_line(text), SIZE, font_file)
        assert not run_drawn(frame, replace(frame.runs[0], text=plain), font_file), text
    assert now


def _one_line(text: str) -> object:
    class One:
        rows: tuple[()] = ()
        empty_text = text
        attention = None

    return One()


def test_large_type(font_file: Path) -> None:
    frame = render(sample_screens("sv", DOCS_NOW)["all-well"], SIZE, font_file)
    label = next(r for r in frame.runs if r.text == "Blodtryck")
    assert label.size_px == 34
    assert label.box[3] - label.box[1] >= 24  # cap height in pixels on a 240-pixel panel


@pytest.mark.parametrize("language", ["sv", "en"])
def test_docs_frames_are_what_the_renderer_draws(
    language: str, font_file: Path, tmp_path: Path
) -> None:
    """docs/feedback/*.png are current: redrawn here, they differ in under 1 % of their pixels
    (FreeType versions rasterise an edge pixel differently; a changed word differs in far more)."""
    written = write_frames(tmp_path, font_file, DOCS_NOW)
    for fresh in (p for p in written if p.name.endswith(f".{language}.png")):
        stored = DOCS / fresh.name
        assert stored.exists(), f"{stored} missing: narhub feedback test --frames docs/feedback"
        a, b = Image.open(stored).convert("RGB"), Image.open(fresh).convert("RGB")
        assert a.size == b.size
        diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 40 else 0)
        changed = diff.histogram()[255] / (a.size[0] * a.size[1])
        assert changed < 0.01, (fresh.name, changed)


def test_a_placed_run_names_its_box() -> None:
    run = PlacedRun("x", (1, 2), 10, (1, 1, 1), (0, 0, 0), (1, 2, 8, 12))
    assert run.box[2] > run.box[0]
