"""The config locks exclude the daemon's worker threads from each other, as they exclude processes.

hivectld runs operations on threads of one process; ``hivectl/safety/filelock.py`` was re-entrant per
process, so a second thread "re-entered" a lock the first one held and two edits of one guest's config
ran at once. Re-entry is now per thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hivectl.errors import Conflict
from hivectl.safety import filelock


def test_a_lock_held_by_one_thread_excludes_another(tmp_path: Path) -> None:
    conf = tmp_path / "g.conf"
    conf.write_text("")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with filelock.locked(conf):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(Conflict, match="being edited by another hivectl"), filelock.locked(conf, timeout=0.2):
            pass
    finally:
        release.set()
        thread.join()
    with filelock.locked(conf, timeout=0.2):  # free again once the holder is done
        pass


def test_one_thread_still_reenters_its_own_lock(tmp_path: Path) -> None:
    conf = tmp_path / "g.conf"
    conf.write_text("")
    with filelock.locked(conf, timeout=0.2), filelock.locked(conf, timeout=0.2):
        pass
