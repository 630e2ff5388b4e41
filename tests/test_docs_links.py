"""A clone stands on its own: no file in the repository cites a file that is not in it.

Code and docs once cited notes that lived only on a development machine, by name and by an
absolute path, so a reader of a clone followed dead links. These checks keep that from coming
back:

* every relative link in a Markdown file resolves to a file of the repository, and to one of
  its headings when the link names an anchor;
* every repository path a file names (``docs/pipeline.md``, ``gateway/validate.py``) exists,
  and every bare ``*.md`` name is the name of a file in the repository;
* no file names the development machine's notes, its shared folder or an absolute path on it;
* ``docs/plausibility.md`` lists exactly the ranges ``gateway.validate.PLAUSIBLE`` applies, and
  ``docs/protocols/phd.md`` gives every code of ``protocols.gatt.observation.MDC_TABLE`` with
  its reference id and LOINC.

Each check also runs on a small planted tree, so that it is seen to fail.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

from gateway.validate import PLAUSIBLE
from protocols.gatt.observation import MDC_TABLE

ROOT = Path(__file__).resolve().parents[1]

#: Directories that hold no repository content: VCS data, environments, caches, build output.
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        "build",
        "dist",
        "node_modules",
    }
)

# Built from parts, so that this file does not itself name what it forbids.
_NOTE_NAMES = "|".join(("CONTEXT", "STYLE"))
_FORBIDDEN = re.compile(
    rf"\b(?:{_NOTE_NAMES})\.md\b"  # the development machine's context and style notes
    r"|\bhealth" + "-profiles" + r"\b"  # its health-profile notes, with or without ".md"
    r"|\bshared" + "/docs" + r"\b"  # the folder that held them
    r"|(?<![\w.~-])/" + "work" + r"/"  # an absolute path on that machine
)

#: Top-level folders of the repository: a path starting with one is a repository path.
_TOP = ("docs", "protocols", "drivers", "common", "gateway", "technician", "region", "rig")
_TOP_MORE = ("firmware", "tests", "hil_tests", "deploy")
_REPO_PATH = re.compile(
    r"(?<![\w/.$-])((?:"
    + "|".join(_TOP + _TOP_MORE)
    + r")/[\w./-]*\.(?:md|py|toml|json|cddl|sh|service|conf|ini))\b"
)
_MD_NAME = re.compile(r"(?<![\w./$-])([\w.-]+\.md)\b")

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^[ ]{0,3}\[[^\]\n]+\]:[ \t]*<?([^\s>]+)>?", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def repo_files(root: Path) -> list[Path]:
    """Every file of the tree at ``root``, without VCS data, environments or caches."""
    found: list[Path] = []
    for directory, subdirs, names in os.walk(root.resolve()):
        subdirs[:] = sorted(
            d for d in subdirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")
        )
        # A worktree's ".git" is a file naming the main checkout: not content either.
        found.extend(Path(directory) / n for n in sorted(names) if n not in _SKIP_DIRS)
    return found


def _text(path: Path) -> str | None:
    """The file as UTF-8 text, or ``None`` for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _blank(match: re.Match[str]) -> str:
    """The matched text with every character but newlines blanked (line numbers survive)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _without_code(markdown: str) -> str:
    """Markdown with fenced blocks and code spans blanked: links there are only examples."""
    return _CODE_SPAN.sub(_blank, _FENCE.sub(_blank, markdown))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text (duplicates numbered)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub(_blank, markdown)):
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(root: Path, files: list[Path]) -> list[str]:
    """Relative links in Markdown files whose file or heading is not in the tree."""
    root = root.resolve()
    problems: list[str] = []
    for path in files:
        if path.suffix != ".md":
            continue
        text = _text(path)
        if text is None:
            continue
        where = path.relative_to(root).as_posix()
        prose = _without_code(text)
        targets = [*_INLINE_LINK.finditer(prose), *_REFERENCE_LINK.finditer(prose)]
        for match in targets:
            target = match.group(1)
            if _SCHEME.match(target):
                continue  # a web address: not a file of the repository
            file_part, _, fragment = target.partition("#")
            resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
            at = f"{where}:{_line(prose, match.start())}"
            if not resolved.is_relative_to(root) or not resolved.exists():
                problems.append(f"{at}: link to {target!r}: no such file in the repository")
                continue
            if fragment and resolved.suffix == ".md" and resolved.is_file():
                heading_text = _text(resolved) or ""
                if unquote(fragment).lower() not in anchors(heading_text):
                    problems.append(f"{at}: link to {target!r}: no such heading")
    return problems


def missing_paths(root: Path, files: list[Path]) -> list[str]:
    """Repository paths and bare ``*.md`` names cited in any text file that do not exist.

    A path counts as found from the root or from the citing file's folder (a Markdown file
    names its neighbours relative to itself).
    """
    root = root.resolve()
    names = {path.name for path in files}
    problems: list[str] = []
    for path in files:
        text = _text(path)
        if text is None:
            continue
        if path.suffix == ".md":
            text = _without_code(text)  # examples in code blocks name no real file
        where = path.relative_to(root).as_posix()
        for match in _REPO_PATH.finditer(text):
            cited = match.group(1).rstrip(".")
            if not (root / cited).exists() and not (path.parent / cited).exists():
                at = f"{where}:{_line(text, match.start())}"
                problems.append(f"{at}: names {cited!r}, which is not in the repository")
        for match in _MD_NAME.finditer(text):
            if match.group(1) not in names:
                at = f"{where}:{_line(text, match.start())}"
                problems.append(f"{at}: names {match.group(1)!r}, no file of the repository")
    return problems


def outside_citations(root: Path, files: list[Path]) -> list[str]:
    """Mentions of the development machine's notes, their folder or an absolute path on it."""
    root = root.resolve()
    problems: list[str] = []
    for path in files:
        text = _text(path)
        if text is None:
            continue
        where = path.relative_to(root).as_posix()
        problems.extend(
            f"{where}:{_line(text, match.start())}: cites {match.group(0)!r}, which a clone"
            " does not have; point to docs/ or to a specification by name and section"
            for match in _FORBIDDEN.finditer(text)
        )
    return problems


def test_every_markdown_link_resolves() -> None:
    files = repo_files(ROOT)
    assert any(p.name == "phd.md" for p in files), "the walk missed docs/: the check would be empty"
    assert broken_links(ROOT, files) == []


def test_every_cited_repository_path_exists() -> None:
    # This file names made-up paths on purpose: they are planted in a temporary tree below.
    files = [path for path in repo_files(ROOT) if path != Path(__file__).resolve()]
    assert missing_paths(ROOT, files) == []


def test_nothing_cites_the_development_machine() -> None:
    assert outside_citations(ROOT, repo_files(ROOT)) == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "b.md").write_text("# B\n\n## Section one\n\ntext\n")
    (docs / "a.md").write_text(
        "# A\n\n"
        "[fine](b.md#section-one) and [also fine](#a) and [web](https://example.org/x.md)\n"
        "[missing file](gone.md)\n"
        "[missing heading](b.md#section-two)\n"
        "```\n[only an example](nowhere.md)\n```\n"
        "`[only code](nowhere.md)`\n"
    )
    package = tmp_path / "gateway"
    package.mkdir()
    note = "CONTEXT" + ".md"
    folder = "/" + "work" + "/shared" + "/docs/"
    (package / "x.py").write_text(
        f'"""See docs/b.md and docs/lost.md; {note}; {folder}notes."""\n'
        "# health" + "-profiles 5.1, in README.md\n"
    )
    cache = tmp_path / ".venv"
    cache.mkdir()
    (cache / "ignored.py").write_text(f"# {note}\n")
    files = repo_files(tmp_path)

    assert broken_links(tmp_path, files) == [
        "docs/a.md:4: link to 'gone.md': no such file in the repository",
        "docs/a.md:5: link to 'b.md#section-two': no such heading",
    ]
    assert missing_paths(tmp_path, files) == [
        "docs/a.md:4: names 'gone.md', no file of the repository",
        "gateway/x.py:1: names 'docs/lost.md', which is not in the repository",
        f"gateway/x.py:1: names {note!r}, no file of the repository",
        "gateway/x.py:2: names 'README.md', no file of the repository",
    ]
    cited = outside_citations(tmp_path, files)
    lines = [c.split(":")[:2] for c in cited]
    assert lines == [["gateway/x.py", "1"]] * 3 + [["gateway/x.py", "2"]]
    named = [c.split("'")[1] for c in cited]
    assert named == [note, "/" + "work/", "shared" + "/docs", "health" + "-profiles"]


def _documented_ranges(markdown: str) -> set[tuple[int, str, Decimal, Decimal]]:
    """(code, unit, low, high) from the table of docs/plausibility.md."""
    section = markdown.split("## The table", 1)[1].split("\n## ", 1)[0]
    ranges: set[tuple[int, str, Decimal, Decimal]] = set()
    codes: list[int] = []
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[2].startswith("`"):
            continue
        if cells[1]:
            codes = [int(code) for code in cells[1].split(",")]
        unit, low, high = cells[2].strip("`"), Decimal(cells[3]), Decimal(cells[4])
        ranges.update((code, unit, low, high) for code in codes)
    return ranges


def test_the_plausibility_doc_lists_the_ranges_validation_applies() -> None:
    documented = _documented_ranges((ROOT / "docs" / "plausibility.md").read_text("utf-8"))
    applied = {
        (code, unit, low, high)
        for code, units in PLAUSIBLE.items()
        for unit, (low, high) in units.items()
    }
    assert documented == applied


def _documented_codes(markdown: str) -> dict[int, tuple[str, str | None]]:
    """MDC code -> (reference id, first LOINC or None) from the code table of phd.md."""
    section = markdown.split("### 3.2 The codes", 1)[1].split("\n## ", 1)[0]
    codes: dict[int, tuple[str, str | None]] = {}
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].isdigit():
            continue
        loinc = cells[2].split(" ")[0] if cells[2][:1].isdigit() else None
        codes[int(cells[0])] = (cells[1], loinc)
    return codes


def test_the_device_notes_give_every_code_the_mapping_uses() -> None:
    documented = _documented_codes((ROOT / "docs" / "protocols" / "phd.md").read_text("utf-8"))
    assert {code: documented.get(code) for code in MDC_TABLE} == MDC_TABLE
