"""docs/feedback.md lists every sentence, every display text and every light pattern as the
code has them (a changed word in the code without the docs fails here)."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.feedback.patterns import Pattern
from gateway.feedback.sentences import every_screen_text, every_sentence, fixed

DOC = Path(__file__).resolve().parents[2] / "docs" / "feedback.md"


def _rows(section: str) -> dict[str, list[str]]:
    """The table rows of the section under the heading ``section``, by their first cell."""
    text = DOC.read_text(encoding="utf-8").split(f"\n{section}\n", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`([^`]+)`", cells[0])
        if line.startswith("|") and found:
            rows.setdefault(found.group(1), cells[1:])
    return rows


def test_every_sentence_in_both_languages() -> None:
    rows = _rows("### Sentences")
    for (name, sv), (_, en) in zip(every_sentence("sv"), every_sentence("en"), strict=True):
        assert rows.get(name) == [sv, en], name


def test_every_display_text_in_both_languages() -> None:
    text = DOC.read_text(encoding="utf-8")
    for language in ("sv", "en"):
        for _, line in every_screen_text(language):  # type: ignore[arg-type]
            assert line in text, line
        for key in ("sent", "waiting", "yesterday", "no_readings"):
            assert fixed(key, language) in text  # type: ignore[arg-type]


def test_every_pattern_with_its_steps_and_meaning() -> None:
    rows = _rows("### Patterns (print this table for the patient's folder)")
    for pattern in Pattern:
        looks, means = rows[pattern.name.lower()]
        assert means == pattern.meaning
        for step in pattern.steps:
            assert step.colour.name in looks
            if step.hold_ms:
                assert f"{step.hold_ms} ms" in looks


def test_the_frames_it_shows_exist() -> None:
    for name in re.findall(r"\]\((feedback/[^)]+\.png)\)", DOC.read_text(encoding="utf-8")):
        assert (DOC.parent / name).exists(), name
