"""Golden files: the bhyve driver's whole output for every template and hand-written case.

Each case's plan (prepare actions, loader, bhyve argv, device.map, grub.cfg, console lines, the -k file)
is compared with ``golden/<case>.txt``. ``HIVECTL_UPDATE_GOLDEN=1`` rewrites the files instead; every
rewritten file must then be read by hand against bhyve(8) and vm-bhyve's ``lib/vm-run`` before it is committed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tests.bhyve.cases import all_cases
from tests.bhyve.harness import GOLDEN_DIR, GOLDEN_ENV, Case, plan_case, render

CASES = all_cases()
UPDATE = os.environ.get("HIVECTL_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Case, tmp_path: Path) -> None:
    env = dataclasses.replace(GOLDEN_ENV, host_root=tmp_path)
    text = render(case, plan_case(case, env))
    path = GOLDEN_DIR / f"{case.name}.txt"
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run with HIVECTL_UPDATE_GOLDEN=1, then review it by hand"
    assert text == path.read_text(), f"{case.name} differs from {path} (HIVECTL_UPDATE_GOLDEN=1 rewrites it)"


def test_no_stray_golden_files() -> None:
    """A golden file whose case was removed would never be checked again."""
    expected = {f"{c.name}.txt" for c in CASES}
    assert {p.name for p in GOLDEN_DIR.glob("*.txt")} <= expected


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
