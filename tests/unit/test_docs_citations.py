"""Citations cannot rot: every citation of a doc section (docs/FILE.md, then the
section in double quotes) in the code,
the tests, the OS's files and the README names a doc that exists and a section
heading in it; and nothing cites a file outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("harness", "tests", "build", "fixtures", "scripts", "README.md", "pyproject.toml")
SUFFIXES = {".py", ".sh", ".md", ".toml", ".yaml", ".awk", ".cfg", ".list", ""}
# a doc path, then its section in double quotes, maybe across a line break or "#"
CITATION = re.compile(r'docs/([\w-]+\.md)(?:\s|#|\*)*"([^"\n]+)"')
OUTSIDE = re.compile(r"spec/|DESIGN\.md|kubesolo-facts\.md|\bIssue [0-9]")


def source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = REPO / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        files += [p for p in candidates if p.is_file() and p.suffix in SUFFIXES]
    return [p for p in files if "__pycache__" not in p.parts]


def headings(doc: Path) -> list[str]:
    return [
        line.lstrip("#").strip().lower()
        for line in doc.read_text().splitlines()
        if line.startswith("#")
    ]


def citations() -> list[tuple[str, str, str]]:
    found = []
    for path in source_files():
        text = path.read_text(errors="replace")
        for match in CITATION.finditer(text):
            found.append((str(path.relative_to(REPO)), match.group(1), match.group(2)))
    return found


def test_there_are_citations_to_check():
    assert len(citations()) > 50


@pytest.mark.parametrize(("where", "doc", "section"), citations())
def test_each_cited_section_exists(where, doc, section):
    path = REPO / "docs" / doc
    assert path.is_file(), f"{where} cites docs/{doc}, which does not exist"
    wanted = section.strip().lower()
    assert any(h == wanted or h.startswith(wanted + " ") for h in headings(path)), (
        f'{where} cites docs/{doc} "{section}", which has no such section'
    )


def test_nothing_cites_files_outside_the_repository():
    this = Path(__file__)
    offenders = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in source_files()
        if p != this
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []
