"""Documentation references in the repository resolve, and none points outside it.

Issue 9: code and docs cited sections of reference notes that are not in the repository (by file
name or as bare section numbers), so a maintainer could not follow them. References now name a
``docs/…`` (or ``bench/README.md``) heading, ``docs/behaviour.md#errors`` style, or Microsoft's
public pages. This test scans src/, tests/, bench/ and docs/ and checks that every
``<file>.md#anchor`` reference (and every ``](#anchor)`` link inside a Markdown file) names a file
and a heading that exist, and that no file cites the missing notes or a bare section sign.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "tests", "bench", "docs")
SUFFIXES = {".py", ".md", ".lua", ".c", ".sh", ".toml", ".txt", ".cfg"}
SKIPPED_DIRS = {".venv", "__pycache__", "results", ".work", "work", ".build", ".pytest_cache", ".mypy_cache"}

#: ``docs/behaviour.md#errors``, ``behaviour.md#errors``, ``../bench/README.md#the-cases``; not the
#: tail of a URL (``https://host/x.md#y`` starts after ``/`` or a word character, which is refused).
REF = re.compile(r"(?<![\w/.:-])((?:\.\./|\./)?(?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")
#: A link to a heading of the same Markdown file: ``[text](#anchor)``.
SAME_FILE = re.compile(r"\]\(#([\w-]+)\)")
#: Notes that live outside the repository (the source of the old section numbers).
MISSING_NOTES = re.compile("|".join(("graph-behaviour", "sdk-wire", "perf-notes", "shared/reference")))
#: A section sign, except an RFC's (``RFC 6749 §2.3.1`` names a public document).
BARE_SECTION = re.compile(r"(?<!RFC \d{4} )(?<!RFC \d{3} )§")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def files() -> Iterator[Path]:
    me = Path(__file__).resolve()
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file() or path.resolve() == me:
                continue
            if SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
                continue
            yield path


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    """Every heading anchor of a Markdown file (outside code fences), duplicates numbered like GitHub."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m is None:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def resolve(ref: str, cited_in: Path) -> Path | None:
    for candidate in (ROOT / ref, cited_in.parent / ref):
        if candidate.is_file():
            return candidate.resolve()
    return None


def test_slug_matches_github() -> None:
    assert slug("Why remove and add stay below 0.40× of the ceiling") == "why-remove-and-add-stay-below-040-of-the-ceiling"
    assert slug("`delta()` with parentheses") == "delta-with-parentheses"
    assert slug("Groups and users") == "groups-and-users"


def test_patterns_find_what_they_should() -> None:
    found = [m.groups() for m in REF.finditer("see docs/behaviour.md#error-body, behaviour.md#wire and "
                                               "https://github.com/o/r/blob/main/x.md#y")]
    assert found == [("docs/behaviour.md", "error-body"), ("behaviour.md", "wire")]
    assert BARE_SECTION.search("RFC 6749 §2.3.1") is None
    assert BARE_SECTION.search("(spec §0.4)") is not None
    assert BARE_SECTION.search("(§3.9)") is not None
    assert MISSING_NOTES.search("graph-behaviour.md §5.3") is not None


def test_every_doc_reference_resolves() -> None:
    cache: dict[Path, set[str]] = {}
    broken: list[str] = []
    count = 0
    for path in files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        for m in REF.finditer(text):
            count += 1
            ref, anchor = m.groups()
            line = text.count("\n", 0, m.start()) + 1
            target = resolve(ref, path)
            if target is None:
                broken.append(f"{rel}:{line}: {ref} does not exist")
                continue
            if anchor not in cache.setdefault(target, anchors(target)):
                broken.append(f"{rel}:{line}: {ref} has no heading #{anchor}")
        if path.suffix == ".md":
            for m in SAME_FILE.finditer(text):
                count += 1
                if m.group(1) not in cache.setdefault(path.resolve(), anchors(path)):
                    broken.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: no heading #{m.group(1)}")
    assert not broken, "\n".join(broken)
    assert count >= 50, f"only {count} references found: the scan is not looking where it should"


@pytest.mark.parametrize("pattern", [MISSING_NOTES, BARE_SECTION], ids=["missing-notes", "bare-section"])
def test_no_reference_outside_the_repository(pattern: re.Pattern[str]) -> None:
    hits = []
    for path in files():
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not hits, f"{len(hits)} citations of notes that are not in the repository:\n" + "\n".join(hits)
