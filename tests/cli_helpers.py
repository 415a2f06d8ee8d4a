"""Helpers for tests that drive the real ``hivectl`` command line.

``HIVECTL`` is how the tests start it: ``bin/hivectl`` under ``python3 -S`` (README.md), the launcher an
administrator puts on PATH. The suite starts hivectl thousands of times, and skipping ``site`` (every
installed package's .pth files) takes about a third off each start's CPU (docs/reliability.md, "Test suite
time"). The launcher finds this checkout itself (what it does is tested in tests/cli/test_launcher.py);
tests that start ``python -m hivectl`` spell it out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hivectl.journal import AUDIT, EVENTS
from hivectl.journal.log import Journal

REPO = Path(__file__).resolve().parent.parent
HIVECTL: list[str] = [sys.executable, "-S", str(REPO / "bin" / "hivectl")]


@dataclass
class Outcome:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def hivectl(*args: str, env: dict[str, str] | None = None, input_text: str | None = None,
            timeout: float = 60) -> Outcome:
    """Run the real command line (``HIVECTL``) as a separate process."""
    done = subprocess.run([*HIVECTL, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, input=input_text, timeout=timeout, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


# The event and audit logs (hivectl/journal) rightly grow on a failed command: it is recorded, with its error.
# Their names as the journal itself derives them (hivectl/journal/log.Journal: the log, its previous segment,
# the writers' lock), so a renamed log cannot slip into the snapshots.
JOURNAL_FILES = {os.path.basename(name) for journal in (Journal(EVENTS), Journal(AUDIT))
                 for name in (journal.path, journal.old_path, journal.lock_path)}


def is_journal_file(path: Path) -> bool:
    """One of the journal's logs (or their locks) in a vm_dir's ``.config``."""
    return path.name in JOURNAL_FILES and path.parent.name == ".config"


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with (size, mode): a snapshot to prove a failed command changed nothing.

    The journal's logs in ``.config`` are left out: recording the failure is the one change a failed
    command must make."""
    result = {}
    for path in sorted(root.rglob("*")):
        if is_journal_file(path):
            continue
        st = path.lstat()
        result[str(path.relative_to(root))] = (st.st_size if path.is_file() else 0, st.st_mode)
    return result


def init_vm_dir(base: Path, mp: pytest.MonkeyPatch) -> Path:
    """``base/vm`` made, pointed at (with an empty ``base/rc.conf``), initialised and given the switch
    ``public``: the vm_dir of the module-scoped daemon fixtures (tests/daemon, tests/web)."""
    vm_dir = base / "vm"
    vm_dir.mkdir()
    (base / "rc.conf").write_text("")
    mp.setenv("HIVECTL_VM_DIR", str(vm_dir))
    mp.setenv("HIVECTL_RC_CONF", str(base / "rc.conf"))
    assert hivectl("init").status == 0
    assert hivectl("switch", "create", "public").status == 0
    return vm_dir
