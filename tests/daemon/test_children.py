"""hivectld leaves no zombies: the supervisors it starts are not left unreaped once they exit.

A real ``bin/hivectld`` on the simulated FreeBSD host starts and stops guests through the API; the
daemon's children are then read from /proc (every process whose parent is the daemon, with its state),
never from the daemon's word.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hivectl.runtime import read_lock
from tests.daemon.conftest import Daemon
from tests.lifecycle_helpers import bhyve_pid


def children(parent: int) -> dict[int, str]:
    """Every process whose parent is ``parent``: pid → its state letter (``Z`` for a zombie)."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # it ended between listdir and the read
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if int(fields[1]) == parent:
            found[int(entry)] = fields[0]
    return found


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie has ended: it only waits to be reaped)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


def sync(reply: Any) -> Any:
    assert reply.status_code in (200, 202), reply.text
    return reply.json()


def run_op(daemon: Daemon, method: str, path: str, **kw: Any) -> dict[str, Any]:
    body = sync(daemon.client.request(method, path, **kw))
    op = daemon.wait_op(body["operation"], timeout=90)
    assert op["status"] == "Success", op
    return op


def test_supervisors_started_through_the_api_are_reaped(daemon: Daemon) -> None:
    names = ["z1", "z2"]
    for name in names:
        run_op(daemon, "POST", "/1.0/guests", json={"name": name, "size": "1G"})
    supervisors = []
    for round_ in range(2):  # twice: a daemon that reaps only at its next spawn would pass one round
        for name in names:
            run_op(daemon, "POST", f"/1.0/guests/{name}/start")
            assert bhyve_pid(daemon.simhost, name) is not None
            lock = read_lock(daemon.vm_dir / name)
            assert lock is not None and lock.pid, (round_, name)
            supervisors.append(lock.pid)
        for name in names:
            run_op(daemon, "POST", f"/1.0/guests/{name}/stop")
            assert bhyve_pid(daemon.simhost, name) is None
    # Every supervisor ends soon after its guest stopped (its tear-down after the hypervisor's exit).
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in supervisors):
        assert time.monotonic() < deadline, [pid for pid in supervisors if alive(pid)]
        time.sleep(0.1)
    # The daemon does nothing now; whatever it left unreaped stays a zombie for good. Give a reaper
    # time to run, then there must be none.
    deadline = time.monotonic() + 20
    while zombies := {pid: s for pid, s in children(daemon.process.pid).items() if s == "Z"}:
        assert time.monotonic() < deadline, (
            f"zombie children of hivectld {daemon.process.pid}: {sorted(zombies)} "
            f"(its supervisors were {supervisors})")
        time.sleep(0.2)
    assert daemon.process.poll() is None
