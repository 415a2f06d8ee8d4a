"""How the suite itself runs (docs/reliability.md, "Test suite time"): guards for the choices that keep it fast
and safe on two xdist workers, so that a new file cannot quietly undo them.

- Every stand-in of the simulated host starts with ``python3 -S``: the suite runs them thousands of times,
  and ``site`` (every installed package's .pth files) is about a seventh of each start's CPU.
- Every test file that starts QEMU on the host (through tests/qemu/running.py, the e2e environment or the
  tiny guest's own driver) lies in tests/conftest.py's ``QEMU_PATHS``, so it runs in the one xdist group
  that keeps QEMU guests one after another. A file that marks itself ``vm`` boots guests by definition:
  tests/multihost/test_migrate_zfs_qemu.py did, outside the group, and CI ran its two QEMU guests beside
  another worker's (the zfs-fuse daemon under them died of it twice).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import QEMU_PATHS, runs_qemu

TESTS = Path(__file__).resolve().parent
STAND_IN_DIRS = [TESTS / "simhost" / "bin", TESTS / "net" / "bin"]
SHEBANG = "#!/usr/bin/env -S python3 -S"
# Imports that start QEMU guests: the tests' QEMU runner, the e2e environment, the tiny guest's driver.
STARTS_QEMU = re.compile(r"^\s*(from tests\.qemu\.running import|from tests\.e2e(\.conftest)? import|"
                         r"from tinyguest(\.qemu)? import|import tinyguest\b|pytestmark = pytest\.mark\.vm\b|"
                         r"from tests\.multihost\.test_migrate_qemu import)", re.M)


def test_every_stand_in_starts_without_site() -> None:
    stand_ins = [path for directory in STAND_IN_DIRS for path in sorted(directory.iterdir()) if path.is_file()]
    assert len(stand_ins) > 10
    wrong = [str(path.relative_to(TESTS)) for path in stand_ins
             if path.read_text().splitlines()[0] != SHEBANG]
    assert not wrong, f"stand-ins not started with {SHEBANG!r}: {wrong}"


def qemu_files_outside_the_group() -> list[str]:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        starts = path.name.startswith(("test_", "conftest")) and STARTS_QEMU.search(path.read_text())
        if starts and not runs_qemu(path):
            found.append(str(path.relative_to(TESTS)))
    return found


def test_every_test_that_starts_qemu_is_in_the_qemu_group() -> None:
    assert not qemu_files_outside_the_group(), f"add these to QEMU_PATHS in tests/conftest.py: " \
                                               f"{qemu_files_outside_the_group()}"


def test_the_group_guard_sees_a_file_that_starts_qemu() -> None:
    """The guard above can fail: the files it finds today are all in the group, and there are some."""
    starting = [path for path in TESTS.rglob("test_*.py") if STARTS_QEMU.search(path.read_text())]
    assert {"e2e", "tinyguest", "qemu/test_real_boots.py"} <= set(QEMU_PATHS)
    assert any(p.name == "test_real_boots.py" for p in starting) and any("e2e" in p.parts for p in starting)
    assert not runs_qemu(TESTS / "lifecycle" / "test_foreground.py")
