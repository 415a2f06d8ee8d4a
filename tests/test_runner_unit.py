"""The run lock and the restart policy, without any hypervisor."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hivectl.drivers.base import Outcome
from hivectl.errors import Conflict
from hivectl.runner import lock
from hivectl.runner.supervisor import Policy, decide
from hivectl.runtime import guest_state


@pytest.mark.parametrize(("outcome", "on_restart", "on_fault", "stopping", "flag", "again"), [
    (Outcome.REBOOT, "restart", "shutdown", False, False, True),
    (Outcome.REBOOT, "stop", "shutdown", False, False, False),
    (Outcome.REBOOT, "restart", "shutdown", True, False, False),
    (Outcome.POWEROFF, "restart", "shutdown", False, False, False),
    (Outcome.POWEROFF, "restart", "shutdown", False, True, True),
    (Outcome.HALT, "restart", "shutdown", False, False, False),
    (Outcome.FAULT, "restart", "shutdown", False, False, False),
    (Outcome.FAULT, "restart", "restart", False, False, True),
    (Outcome.KILLED, "restart", "restart", True, False, False),
    (Outcome.ERROR, "restart", "restart", False, False, True),
])
def test_policy(outcome: Outcome, on_restart: str, on_fault: str, stopping: bool, flag: bool, again: bool) -> None:
    assert decide(outcome, Policy(on_restart, on_fault), stopping, flag) is again


def test_lock_is_exclusive_and_names_its_owner(tmp_path: Path) -> None:
    lock.acquire(tmp_path, "g")
    text = (tmp_path / "run.lock").read_text().splitlines()
    assert text[0] == socket.gethostname() and text[1] == f"pid={os.getpid()}"
    with pytest.raises(Conflict):
        lock.acquire(tmp_path, "g")
    lock.release(tmp_path)
    assert not (tmp_path / "run.lock").exists()


def test_stale_locks_are_detected_and_cleared(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "run.lock").write_text(f"{socket.gethostname()}\npid={int(dead.stdout)}\n")
    state = guest_state(tmp_path, "g")
    assert state.state == "Stopped" and state.stale and state.label() == "Stopped"
    lock.acquire(tmp_path, "g")
    assert f"pid={os.getpid()}" in (tmp_path / "run.lock").read_text()


def test_empty_lock_from_power_loss_is_stale(tmp_path: Path) -> None:
    (tmp_path / "run.lock").write_text("")
    assert guest_state(tmp_path, "g").stale
    lock.acquire(tmp_path, "g")


def test_foreign_host_lock_is_respected(tmp_path: Path) -> None:
    (tmp_path / "run.lock").write_text("otherhost.example\n")
    with pytest.raises(Conflict, match=r"otherhost\.example"):
        lock.acquire(tmp_path, "g")


RACE = """
import sys, time
from pathlib import Path
from hivectl.runner import lock
from hivectl.errors import Conflict
d = Path(sys.argv[1])
while not (d / "go").exists():
    time.sleep(0.001)
try:
    lock.acquire(d, "g")
    print("won", flush=True)
    deadline = time.monotonic() + 60
    while not (d / "done").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
except Conflict:
    print("lost", flush=True)
"""


def test_twenty_racing_acquirers_one_winner(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(20)]
    (tmp_path / "go").write_text("")
    # The winner holds the lock (stays alive) until every racer has answered: a racer that only got to
    # run after the winner had exited would rightly clear its stale lock and win too.
    assert all(p.stdout is not None for p in procs)
    results = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
    (tmp_path / "done").write_text("")
    for p in procs:
        p.communicate(timeout=60)
    assert results.count("won") == 1 and results.count("lost") == 19


def test_a_lock_whose_pid_now_belongs_to_another_process_reads_stopped(tmp_path: Path) -> None:
    """The lock names a live process (this test's pytest) with another start time: the run is over, so
    the guest is Stopped (stale, for ``start``/``stop`` to clear), not ``Locked``; a lock vm-bhyve wrote
    (host name only, it cannot be told from a live run) keeps vm-bhyve's ``Locked (HOST)``."""
    (tmp_path / "run.lock").write_text(f"{socket.gethostname()}\npid={os.getpid()}\nstart=1\n")
    state = guest_state(tmp_path, "g")
    assert (state.state, state.stale, state.label()) == ("Stopped", True, "Stopped")
    (tmp_path / "g.save").write_text("")
    assert guest_state(tmp_path, "g").label() == "Suspended"
    (tmp_path / "run.lock").write_text(f"{socket.gethostname()}\n")
    assert guest_state(tmp_path, "g").label() == f"Locked ({socket.gethostname()})"
