"""Restoring a ZFS guest's backup while the original runs: the copy is stopped and independent.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import running_stand_in, state_of


def test_zfs_restore_of_a_running_guest_is_stopped_and_not_tied_to_the_original(zfsvm: Any, tmp_path: Path) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "db").status == 0
    guest = zfsvm.root / "db"
    # The guest runs while it is backed up (allowed on ZFS: the backup is of a snapshot), so the snapshot
    # holds its run-time files: a lock naming a live supervisor and a state naming a live hypervisor.
    with running_stand_in(guest, "db", console=True):
        assert state_of("db")["state"].startswith("Running")
        _backup_and_restore(zfsvm, tmp_path)


def _backup_and_restore(zfsvm: Any, tmp_path: Path) -> None:
    made = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert made.status == 0, made.err
    done = hivectl("restore", made.out.strip(), "db2")
    assert done.status == 0, done.err
    assert state_of("db2")["state"] == "Stopped", "the copy is not the running original"
    for leftover in ("run.lock", "hivectl.state", "console"):
        assert not (zfsvm.root / "db2" / leftover).exists(), leftover
    assert (zfsvm.root / "db2" / "db2.conf").is_file()
