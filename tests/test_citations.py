"""Docstrings, comments and docs cite public sources, never notes that live outside the repository.

A reader of hivectl has the FreeBSD manual pages and source tree, vm-bhyve's files and this repository;
a citation of a private note by file name and section points at a file they do not have (issue 9.6).
Every text file under the folders below is scanned for the names of those private notes and for the
section sign they were cited with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("hivectl", "tests", "docs", "benchmarks", "scripts", "tinyguest")
TOP_FILES = ("README.md", "pyproject.toml")
SUFFIXES = {".py", ".md", ".txt", ".conf", ".toml", ".cfg", ".sh", ""}

# Built from pieces so that this file does not match itself.
FORBIDDEN = tuple("".join(parts) for parts in (
    ("bhyve-", "spec"), ("vm-bhyve", ".md"), ("cookbook", ".md"), ("linux-qemu", "-notes"), ("peers", ".md"),
    ("/work/", "shared"), ("\u00a7",),
))


def offending_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line naming a private note or citing a section with the section sign."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if any(word in line for word in FORBIDDEN)]


def scanned_files() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES]
    for folder in FOLDERS:
        files.extend(p for p in sorted((ROOT / folder).rglob("*"))
                     if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
                     and ".cache" not in p.parts)
    return [p for p in files if p.exists()]


def test_the_scan_finds_a_private_citation() -> None:
    planted = '"""The order of checks (' + FORBIDDEN[0] + ".md " + FORBIDDEN[-1] + '1.9)."""\nx = 1\n'
    assert offending_lines(planted) == [(1, planted.splitlines()[0])]
    assert offending_lines('"""Ports, as bhyve(8) and usr.sbin/bhyve/pci_emul.c say."""') == []


def test_the_scan_covers_the_code_and_the_docs() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert {"hivectl/store.py", "docs/architecture.md", "tests/simhost/bhyve.py", "README.md"} <= names


@pytest.mark.parametrize("folder", [*FOLDERS, "top"])
def test_no_citation_of_files_outside_the_repository(folder: str) -> None:
    files = [p for p in scanned_files()
             if (p.parent == ROOT if folder == "top" else p.relative_to(ROOT).parts[0] == folder)]
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found.extend(f"{path.relative_to(ROOT)}:{n}: {line}" for n, line in offending_lines(text))
    assert found == []
