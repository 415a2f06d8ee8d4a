"""The supervisor's lean waiting phase (``hivectl/host/waiter.py``) on the simulated FreeBSD host.

Once a guest runs, its supervisor execs itself into the waiter (same pid: the lock stays true, bhyve stays
its child) and back into the full supervisor when bhyve exits or a stop signal arrives. Each test first
checks that the supervisor really is the waiter (its ``/proc/PID/cmdline``), then acts on the guest the
way an administrator would, and asserts on what the simulated host and the guest's files show.
docs/architecture.md, "Supervision memory".
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hivectl.host import process
from tests.cli_helpers import hivectl
from tests.lifecycle.test_consoles import tmux_server, tmux_sessions  # noqa: F401 (a fixture)
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for

WAITER = Path(process.WAITER)


def supervisor_of(guest: Path) -> int:
    return int((guest / "run.lock").read_text().split("pid=")[1].split()[0])


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def waiting(guest: Path, trap: str = "2") -> int:
    """Wait until the guest's supervisor is the lean waiter (trapping ``trap``); its pid."""
    pid = supervisor_of(guest)

    def lean() -> bool:
        argv = cmdline(pid)
        return len(argv) > 4 and argv[1:4] == ["-I", "-S", str(WAITER)] and argv[-1] == guest.name
    wait_for(lean, what=f"supervisor {pid} to become the lean waiter")
    argv = cmdline(pid)
    assert argv[argv.index("--trap") + 1] == trap
    assert not (guest / "hivectl.waiting").is_symlink() and (guest / "hivectl.waiting").is_file()
    return pid


def new_bhyve(host: Any, name: str, old: int | None) -> int:
    return int(wait_for(lambda: (p := bhyve_pid(host, name)) and p != old and p, what="the next bhyve"))


def exits_logged(guest: Path) -> list[str]:
    return [line.split(": ", 1)[1] for line in (guest / "vm-bhyve.log").read_text().splitlines()
            if "hypervisor exited with status" in line]


def assert_clean(host: Any, guest: Path) -> None:
    assert state_of(guest.name)["state"] == "Stopped"
    assert bhyve_pid(host, guest.name) is None and not host.vm_exists(guest.name)
    assert taps(host) == [], "no tap left behind"
    for leftover in ("run.lock", "console", "hivectl.state", "hivectl.stopping", "hivectl.waiting"):
        assert not (guest / leftover).exists(), leftover


def test_waiter_module_imports_only_builtin_posix_signal_sys() -> None:
    """The source: a hivectl import (or any other) added to the waiter fails here."""
    tree = ast.parse(WAITER.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    assert names == {"posix", "_signal", "sys"}


def test_waiter_process_loads_no_module_beyond_a_bare_interpreter(tmp_path: Path) -> None:
    """The running waiter, as the supervisor starts it (``process.waiter_argv``) plus ``-X importtime``:
    every module it imports is one a bare ``python3 -I -S -c pass`` imports too; and it
    hands the child's exit status to the command after ``--`` with the guest name kept last."""
    def imported(stderr: str) -> set[str]:
        return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    bare = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", "pass"], capture_output=True,
                          text=True, check=True)
    out = tmp_path / "back.json"
    back = [sys.executable, "-c", f"import json, sys; open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))",
            "g1"]
    argv = process.waiter_argv(0, [signal.SIGINT], back)
    argv[1:1] = ["-X", "importtime"]
    # The child to wait for must be the waiter's own child: spawn it, then exec into the waiter.
    launcher = ("import os, subprocess, sys; child = subprocess.Popen(['sh', '-c', 'exit 3']); "
                "argv = sys.argv[1:]; argv[argv.index('--child') + 1] = str(child.pid); os.execv(argv[0], argv)")
    done = subprocess.run([sys.executable, "-c", launcher, *argv], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == ["--waited", "exit:3", "g1"]
    extra = imported(done.stderr) - imported(bare.stderr)
    assert extra == set(), f"the waiter imported {sorted(extra)}"
    assert not any(name.startswith("hivectl") for name in imported(done.stderr))


def test_every_bhyve_exit_status_reaches_the_policy_through_the_waiter(host: Any) -> None:
    """0 reboot, 3 triple fault and 4 error boot again (on_fault=restart), 2 halt and 1 power-off stop;
    every time the same supervisor pid was the waiter while bhyve ran, and the reboot-loop counter kept
    across its execs (the third instant boot in a row waits)."""
    guest = make_guest(host, on_fault="restart", fault_limit="10", fault_backoff="0")
    assert hivectl("start", "g1").status == 0
    supervisor = waiting(guest)
    pid = bhyve_pid(host, "g1")
    for status in (0, 3, 4):
        assert waiting(guest) == supervisor
        host.exit_guest("g1", status)
        pid = new_bhyve(host, "g1", pid)
    assert "reboot loop: 3 boots in a row" in (guest / "vm-bhyve.log").read_text()
    assert waiting(guest) == supervisor
    host.exit_guest("g1", 2)
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="halt to stop the guest")
    assert exits_logged(guest) == ["hypervisor exited with status 0 (reboot); restarting",
                                   "hypervisor exited with status 3 (fault); restarting",
                                   "hypervisor exited with status 4 (error); restarting",
                                   "hypervisor exited with status 2 (halt)"]
    assert json.loads((guest / "hivectl.last").read_text())["status"] == 2
    assert_clean(host, guest)
    assert hivectl("start", "g1").status == 0
    waiting(guest)
    host.exit_guest("g1", 1)
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="power-off to stop the guest")
    last = json.loads((guest / "hivectl.last").read_text())
    assert (last["status"], last["outcome"]) == (1, "poweroff")
    assert_clean(host, guest)


def test_restart_reset_poweroff_and_stop_of_a_waiting_supervisor(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor = waiting(guest)
    first = bhyve_pid(host, "g1")
    result = hivectl("restart", "--timeout", "10", "g1")
    assert result.status == 0, result.err
    second = new_bhyve(host, "g1", first)
    assert waiting(guest) == supervisor, "the same supervisor booted it again and waits again"
    result = hivectl("reset", "-f", "g1")
    assert result.status == 0, result.err
    third = new_bhyve(host, "g1", second)
    assert waiting(guest) == supervisor
    result = hivectl("poweroff", "-f", "g1")
    assert result.status == 0, result.err
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="poweroff")
    assert third not in host.running().values()
    assert_clean(host, guest)
    assert hivectl("start", "g1").status == 0
    waiting(guest)
    result = hivectl("stop", "--timeout", "10", "g1")
    assert result.status == 0, result.err
    assert exits_logged(guest)[-1] == "hypervisor exited with status 1 (poweroff)"
    assert_clean(host, guest)


def test_a_waiter_killed_with_sigkill_leaves_the_guest_to_be_adopted(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor = waiting(guest)
    pid = bhyve_pid(host, "g1")
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not cmdline(supervisor), what="the waiter gone")
    assert bhyve_pid(host, "g1") == pid, "bhyve outlives the waiter"
    assert state_of("g1")["state"] == f"Running ({pid})"
    result = hivectl("start", "g1")
    assert result.status == 0 and "adopted" in result.out, result.err
    result = hivectl("stop", "--timeout", "10", "g1")
    assert result.status == 0, result.err
    assert_clean(host, guest)


def test_sigterm_to_a_waiting_tmux_supervisor_stops_the_guest(host: Any, tmux_server: Path) -> None:  # noqa: F811
    """console=tmux: the supervisor runs in the foreground, so its waiter traps SIGINT, SIGTERM and SIGHUP
    and hands them back; the full supervisor presses the power button and cleans up."""
    assert hivectl("set", "console=tmux").status == 0
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor = waiting(guest, trap=f"{signal.SIGINT:d},{signal.SIGTERM:d},{signal.SIGHUP:d}")
    os.kill(supervisor, signal.SIGTERM)
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="the guest to stop")
    log = (guest / "vm-bhyve.log").read_text()
    assert "stop signal received" in log and exits_logged(guest)[-1] == "hypervisor exited with status 1 (poweroff)"
    assert_clean(host, guest)
    wait_for(lambda: tmux_sessions() == [], timeout=5, what="the session to end with its supervisor")


def test_child_of_an_exec_reports_the_exact_status() -> None:
    """``process.Child``: wait/poll on a pid this process spawned, as the resumed supervisor does."""
    proc = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 4"])
    child = process.Child(proc.pid)
    try:
        child.wait(0.05)
        raise AssertionError("wait returned while the child ran")
    except process.TimeoutExpired:
        pass
    assert child.wait(10) == 4 and child.poll() == 4
    proc.returncode = 4  # reaped through Child: keep Popen from waiting for it again
    killed = subprocess.Popen(["sleep", "30"])
    other = process.Child(killed.pid)
    other.kill()
    assert other.wait(10) == -signal.SIGKILL
    killed.returncode = -9
