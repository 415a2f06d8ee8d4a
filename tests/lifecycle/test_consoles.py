"""console=tmux sessions and ``console`` through cu, via the real CLI on the simulated FreeBSD host.

Moved from tests/test_lifecycle_more.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for


def assert_clean(host: Any, name: str) -> None:
    """Stopped, and nothing of the run left on the host or in the guest directory."""
    assert state_of(name)["state"] == "Stopped"
    assert bhyve_pid(host, name) is None
    assert taps(host) == [], "no tap left behind"
    assert not host.vm_exists(name), "bhyvectl --destroy ran"
    for leftover in ("run.lock", "console", "hivectl.state", "hivectl.stopping"):
        assert not (host.vm_dir / name / leftover).exists(), leftover


def sim_running(host: Any, name: str) -> dict[str, Any]:
    return host.wait_running(name, timeout=20)


@pytest.fixture
def tmux_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private tmux server for the test (its socket under tmp_path), killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; scripts/setup installs it")
    where = tmp_path / "tmux"
    where.mkdir()
    monkeypatch.setenv("TMUX_TMPDIR", str(where))
    monkeypatch.delenv("TMUX", raising=False)
    yield where
    subprocess.run(["tmux", "kill-server"], capture_output=True, check=False)


def tmux_sessions() -> list[str]:
    done = subprocess.run(["tmux", "list-sessions", "-F", "#{session_name}"], capture_output=True, text=True,
                          check=False)
    return done.stdout.split() if done.returncode == 0 else []


def attach_in_pty(argv: list[str], session: str, timeout: float = 20) -> tuple[int, bytes]:
    """Run a console command on a new pseudo-terminal; once a tmux client is attached to ``session``,
    detach it from outside (``detach-client``, no key timing involved); return its exit status and output.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.execvpe(argv[0], argv, {**os.environ, "TERM": "xterm"})
    seen = b""
    detached = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not detached and subprocess.run(["tmux", "list-clients", "-t", f"={session}"], capture_output=True,
                                               text=True, check=False).stdout.strip():
                subprocess.run(["tmux", "detach-client", "-s", f"={session}"], check=True)
                detached = True
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), seen
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError(f"{argv} did not end; it showed: {seen[-400:]!r}")
    finally:
        os.close(fd)


def cu_runs(host: Any) -> list[dict[str, Any]]:
    return list(host.state().get("cu_runs", []))


def test_tmux_console_start_attach_stop(host: Any, tmux_server: Path) -> None:
    assert hivectl("set", "console=tmux").status == 0
    guest = make_guest(host, "web.1")
    result = hivectl("start", "web.1")
    assert result.status == 0, result.err
    rec = sim_running(host, "web.1")
    assert result.out == f"web.1: started (pid {rec['pid']})\n"
    assert tmux_sessions() == ["web~1"], "one session, named with '.' mapped to '~'"
    assert (guest / "console").read_text().splitlines()[0] == "com1=tmux/web~1"
    argv = rec["argv"]
    assert "com1,stdio" in [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-l"]
    loader = host.loader_runs()[-1]["argv"]
    assert loader[0] == "bhyveload" and "-c" not in loader, "the loader uses the session's terminal"
    assert state_of("web.1")["state"] == f"Running ({rec['pid']})"
    # The bhyve stand-in runs on the session's terminal.
    pane_tty = subprocess.run(["tmux", "list-panes", "-s", "-t", "=web~1", "-F", "#{pane_tty}"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert os.readlink(f"/proc/{rec['pid']}/fd/0") == pane_tty

    # console attaches to the session for real (on a terminal), found by its mapped name.
    status, seen = attach_in_pty([sys.executable, "-m", "hivectl", "console", "web.1"], "web~1")
    assert status == 0 and b"[detached" in seen, seen[-400:]
    assert bhyve_pid(host, "web.1") == rec["pid"], "detaching leaves the guest alone"

    result = hivectl("stop", "--timeout", "10", "web.1")
    assert result.status == 0, result.err
    assert_clean(host, "web.1")
    wait_for(lambda: tmux_sessions() == [], timeout=5, what="the session to end with its supervisor")
    assert "hypervisor exited with status 1 (poweroff)" in (guest / "vm-bhyve.log").read_text()


def test_tmux_start_failure_is_reported(host: Any, tmux_server: Path) -> None:
    assert hivectl("set", "console=tmux").status == 0
    make_guest(host)
    host.loader_exit("g1", 2)
    started = time.monotonic()
    result = hivectl("start", "g1")
    assert result.status == 1
    assert "g1: loader bhyveload exited with status 2" in result.err, result.err
    assert time.monotonic() - started < 15, "the failure came through the FIFO, not a timeout"
    assert_clean(host, "g1")
    assert tmux_sessions() == []
    # A session of that name already exists: tmux's complaint is the error; nothing was started.
    subprocess.run(["tmux", "new-session", "-d", "-s", "g1", "sleep", "60"], check=True)
    result = hivectl("start", "g1")
    assert result.status == 1 and "duplicate session: g1" in result.err, result.err
    assert_clean(host, "g1")
    assert len(host.loader_runs()) == 1


def test_tmux_console_of_a_vanished_session(host: Any, tmux_server: Path) -> None:
    """A killed session (SIGHUP to the supervisor) stops the guest cleanly, like a closed terminal."""
    assert hivectl("set", "console=tmux").status == 0
    make_guest(host)
    assert hivectl("start", "g1").status == 0
    sim_running(host, "g1")
    assert subprocess.run(["tmux", "kill-session", "-t", "=g1"], check=False).returncode == 0
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="the guest to stop")
    assert_clean(host, "g1")
    result = hivectl("console", "g1")
    assert result.status == 1 and "not running" in result.err


def test_console_runs_cu_on_the_nmdm_b_side(host: Any) -> None:
    make_guest(host, comports="com1 com2")
    assert hivectl("start", "g1").status == 0
    sim_running(host, "g1")
    result = hivectl("console", "g1", input_text="hello\n")
    assert result.status == 0, result.err
    assert "Connected" in result.out
    run = cu_runs(host)[-1]
    assert run["argv"] == ["cu", "-l", "/dev/nmdm-g1.1B"] and run["input"] == "hello\n"
    result = hivectl("console", "g1", "com2", input_text="")
    assert result.status == 0, result.err
    assert cu_runs(host)[-1]["argv"] == ["cu", "-l", "/dev/nmdm-g1.2B"]
    for port in ("com3", "bogus", "com5"):
        result = hivectl("console", "g1", port, input_text="")
        assert result.status == 2, (port, result.err)
    assert len(cu_runs(host)) == 2, "no cu for a bad port"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    result = hivectl("console", "g1", input_text="")
    assert result.status == 1 and result.err == "hivectl: g1 is not running (Stopped)\n"
    assert len(cu_runs(host)) == 2


def test_cu_standin_checks_its_line(host: Any) -> None:
    missing = host.run(["cu", "-l", "/dev/nmdm-none.1B"], input="")
    assert (missing.returncode, missing.stdout) == (3, "all ports busy\n")
    speed = host.run(["cu", "-l", "/dev/nmdm-none.1B", "-s", "1234"], input="")
    assert (speed.returncode, speed.stderr) == (3, "cu: unsupported speed 1234\n")
    twice = host.run(["cu", "-l", "a", "-l", "b"], input="")
    assert twice.returncode == 3 and "multiple -l" in twice.stderr
    assert host.run(["cu", "-x"], input="").returncode == 8
    assert cu_runs(host) == []
