"""Restoring a ZFS guest's backup while the original runs: the copy is stopped and independent.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hivectl.host import identity
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import state_of


def test_zfs_restore_of_a_running_guest_is_stopped_and_not_tied_to_the_original(zfsvm: Any, tmp_path: Path) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "db").status == 0
    guest = zfsvm.root / "db"
    # The guest runs while it is backed up (allowed on ZFS: the backup is of a snapshot), so the snapshot
    # holds its run-time files: a lock naming a live supervisor and a state naming a live hypervisor.
    # A real process stands in for both: its command line ends in the guest's name (as bhyve's does), and
    # both files record its start time, so hivectl's identity check (hivectl/host/identity.py) trusts it.
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "db"])
    try:
        me = None
        for _ in range(100):
            me = identity.identify(stand_in.pid)
            if me is not None and me.names("db"):
                break
            time.sleep(0.05)
        assert me is not None
        (guest / "run.lock").write_text(f"{os.uname().nodename}\npid={me.pid}\nstart={me.start}\n")
        (guest / "hivectl.state").write_text(json.dumps({"state": "running", **me.record()}) + "\n")
        (guest / "console").write_text("com1=/dev/nmdm-db.1B\n")
        assert state_of("db")["state"].startswith("Running")
        _backup_and_restore(zfsvm, tmp_path)
    finally:
        stand_in.kill()
        stand_in.wait()


def _backup_and_restore(zfsvm: Any, tmp_path: Path) -> None:
    made = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert made.status == 0, made.err
    done = hivectl("restore", made.out.strip(), "db2")
    assert done.status == 0, done.err
    assert state_of("db2")["state"] == "Stopped", "the copy is not the running original"
    for leftover in ("run.lock", "hivectl.state", "console"):
        assert not (zfsvm.root / "db2" / leftover).exists(), leftover
    assert (zfsvm.root / "db2" / "db2.conf").is_file()
