"""The supervisor writes a generated uuid/MAC into the guest's config under the config's edit lock
(``hivectl/safety/filelock.py``, as every other config edit; issue 10, "concurrent edits"), on the
simulated FreeBSD host through the real CLI.

The test holds the lock itself, waits until the supervisor is blocked on it (its open descriptor of the
lock file), and checks that nothing was written or booted meanwhile; then either lets it go, or first
sets ``uuid`` itself, which must refuse the start (every later step was rendered with the planned uuid).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hivectl.rcfile import RcFile
from hivectl.safety.filelock import lock_path, locked
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, wait_for


def blocked_on(pid: int, lock: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def supervisor_of(guest: Path) -> int:
    text = (guest / "run.lock").read_text() if (guest / "run.lock").exists() else ""
    return int(text.split("pid=")[1].split()[0]) if "pid=" in text else 0


@pytest.mark.parametrize("meanwhile", ["nothing", "uuid set"])
def test_the_generated_identity_is_written_under_the_config_lock(host: Any, meanwhile: str) -> None:
    guest = make_guest(host)
    conf = guest / "g1.conf"
    rc = RcFile.load(conf)
    rc.unset("uuid")
    rc.unset("network0_mac")
    rc.save()
    lock = lock_path(conf)
    with locked(conf):
        start = subprocess.Popen([sys.executable, "-m", "hivectl", "start", "g1"], env=dict(os.environ),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (pid := supervisor_of(guest)) and blocked_on(pid, lock), timeout=60,
                 what="the supervisor waiting for the config lock")
        assert "uuid" not in RcFile.load(conf), "nothing written while another holds the lock"
        assert bhyve_pid(host, "g1") is None, "nothing booted before the identity is written"
        if meanwhile == "uuid set":
            rc = RcFile.load(conf)
            rc.set("uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
            rc.save()
    out, err = start.communicate(timeout=120)
    after = RcFile.load(conf)
    if meanwhile == "nothing":
        assert start.returncode == 0, err
        uuid = after.get("uuid")
        assert uuid and after.get("network0_mac")
        argv = host.running()["g1"]["argv"]
        assert argv[argv.index("-U") + 1] == uuid, "bhyve runs with the uuid that was written"
        assert hivectl("stop", "--timeout", "10", "g1").status == 0
    else:
        assert start.returncode == 1 and "changed while the start was planned" in err, (out, err)
        assert after.get("uuid") == "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "the other edit is kept"
        assert not after.get("network0_mac"), "no half of the planned identity written"
    assert state_of("g1")["state"] == "Stopped"
