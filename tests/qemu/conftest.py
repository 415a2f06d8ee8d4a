"""Fixtures for the QEMU driver tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.qemu.guests import Scratch


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Scratch]:
    """An empty vm_dir under a short /tmp path, TCG forced (the golden files say accel=tcg)."""
    monkeypatch.setenv("HIVECTL_QEMU_ACCEL", "tcg")
    root = Path(tempfile.mkdtemp(prefix="hq-", dir="/tmp"))
    try:
        yield Scratch(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
