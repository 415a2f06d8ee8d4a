"""Lifecycle polish through the real CLI on the simulated FreeBSD host: console=tmux, foreground starts
stopped by signals, ``console`` through cu, startall/stopall, restart/reset/poweroff, ``configure`` with a
real editor, and the rc.d script.

As in test_lifecycle_bhyve.py, assertions are on what the simulated host shows (its running bhyve, loader
runs, interfaces, /dev/vmm), on files in the guest directory and on real tmux sessions, not on what hivectl
says about itself.
"""

from __future__ import annotations

import importlib.resources
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

REPO = Path(__file__).resolve().parent.parent


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


# -- console=tmux ------------------------------------------------------------------------------------------


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


# -- foreground ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_foreground_start_stops_cleanly_on_a_signal(host: Any, sig: signal.Signals) -> None:
    guest = make_guest(host)
    proc = subprocess.Popen([sys.executable, "-m", "hivectl", "start", "-f", "g1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rec = host.wait_running("g1", proc, timeout=20)
        argv = rec["argv"]
        assert "com1,stdio" in argv, "com1 is the terminal"
        assert "-c" not in host.loader_runs()[-1]["argv"]
        assert (guest / "run.lock").exists() and len(taps(host)) == 1
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert_clean(host, "g1")
    log = (guest / "vm-bhyve.log").read_text()
    assert "stop signal received" in log and "hypervisor exited with status 1 (poweroff)" in log


def test_foreground_second_signal_forces_power_off(host: Any) -> None:
    guest = make_guest(host)
    host.set_guest_acpi("g1", "ignore")
    proc = subprocess.Popen([sys.executable, "-m", "hivectl", "start", "-f", "g1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = host.wait_running("g1", proc, timeout=20)["pid"]
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: "stop signal received" in (guest / "vm-bhyve.log").read_text(), what="first signal")
        time.sleep(0.5)
        assert bhyve_pid(host, "g1") == pid, "the guest ignores the power button"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert_clean(host, "g1")
    assert "forcing power-off" in (guest / "vm-bhyve.log").read_text()


def test_foreground_start_failures_are_reported(host: Any) -> None:
    make_guest(host)
    host.loader_exit("g1", 2)
    result = hivectl("start", "-f", "g1", input_text="")
    assert result.status == 1
    assert result.err.startswith("hivectl: g1: loader bhyveload exited with status 2"), result.err
    assert_clean(host, "g1")
    assert hivectl("start", "g1").status == 0
    result = hivectl("start", "-f", "g1", input_text="")
    assert result.status == 1 and "already Running" in result.err, result.err
    assert hivectl("stop", "--timeout", "10", "g1").status == 0


# -- console on nmdm ------------------------------------------------------------------------------------------


def cu_runs(host: Any) -> list[dict[str, Any]]:
    return list(host.state().get("cu_runs", []))


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


# -- startall / stopall ---------------------------------------------------------------------------------------


def test_startall_order_delay_skips_and_failures(host: Any) -> None:
    for name in ("g1", "g2", "g3", "bad"):
        make_guest(host, name)
    host.rc.write_text('vm_list="g1 nosuch bad g3 g2"\nvm_delay="0"\n')
    assert hivectl("start", "g3").status == 0
    g3 = sim_running(host, "g3")["pid"]
    host.rc.write_text('vm_list="g1 nosuch bad g3 g2"\nvm_delay="1"\n')
    host.loader_exit("bad", 2)
    result = hivectl("startall")
    assert result.status == 1
    assert "nosuch" in result.err and "bad: loader bhyveload exited with status 2" in result.err, result.err
    assert result.out.splitlines() == [f"g1: started (pid {bhyve_pid(host, 'g1')})",
                                       f"g2: started (pid {bhyve_pid(host, 'g2')})"]
    assert bhyve_pid(host, "g3") == g3, "a running guest is left alone"
    runs = [(r["vm"], r["time"]) for r in host.loader_runs()]
    assert [vm for vm, _ in runs] == ["g3", "g1", "bad", "g2"], "vm_list order"
    times = dict(runs)
    # g1's start returns about 1 s after its bhyve came up (the supervisor's start-up check); vm_delay adds 1 s.
    assert times["bad"] - times["g1"] >= 2.0
    assert times["g2"] - times["bad"] >= 1.0, "vm_delay also follows a failed start"
    assert state_of("bad")["state"] == "Stopped"
    result = hivectl("stopall", "--timeout", "10")
    assert result.status == 0, result.err
    for name in ("g1", "g2", "g3"):
        assert_clean(host, name)


def test_stopall_forces_off_a_guest_that_ignores_acpi(host: Any) -> None:
    host.rc.write_text('vm_delay="0"\n')
    for name in ("g1", "g2"):
        make_guest(host, name)
    host.set_guest_acpi("g2", "ignore")
    assert hivectl("start", "g1", "g2").status == 0
    sim_running(host, "g1")
    sim_running(host, "g2")
    started = time.monotonic()
    result = hivectl("stopall", "--timeout", "2")
    elapsed = time.monotonic() - started
    assert result.status == 0, result.err
    assert result.err == "hivectl: g2: did not power off within 2 s; forcing power-off\n"
    assert 2 <= elapsed < 8
    for name in ("g1", "g2"):
        assert_clean(host, name)
    assert "hypervisor exited with status 1 (poweroff)" in (host.vm_dir / "g2" / "vm-bhyve.log").read_text()
    assert hivectl("stopall").status == 0, "nothing running: nothing to do"


# -- restart / reset / poweroff ----------------------------------------------------------------------------


def test_restart_reset_poweroff(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    first = sim_running(host, "g1")["pid"]
    loaders = len(host.loader_runs())

    result = hivectl("restart", "g1")
    assert result.status == 0, result.err
    second = wait_for(lambda: (p := bhyve_pid(host, "g1")) != first and p, what="the new bhyve")
    assert result.out == f"g1: restarted (pid {second})\n"
    assert len(host.loader_runs()) == loaders + 1, "the loader ran again"
    assert len(taps(host)) == 1

    host.set_guest_acpi("g1", "ignore")
    result = hivectl("restart", "--timeout", "1", "g1")
    assert result.status == 0, result.err
    assert "forcing power-off" in result.err
    third = wait_for(lambda: (p := bhyve_pid(host, "g1")) != second and p, what="the new bhyve")
    assert len(host.loader_runs()) == loaders + 2
    host.set_guest_acpi("g1", "poweroff")

    for command in ("reset", "poweroff"):
        refused = hivectl(command, "g1", input_text="")
        assert refused.status == 2 and "needs confirmation" in refused.err, refused.err
        assert bhyve_pid(host, "g1") == third

    result = hivectl("reset", "-f", "g1")
    assert result.status == 0, result.err
    fourth = wait_for(lambda: (p := bhyve_pid(host, "g1")) != third and p, what="the new bhyve")
    assert result.out == f"g1: reset (pid {fourth})\n"
    assert len(host.loader_runs()) == loaders + 3
    assert "hypervisor exited with status 0 (reboot); restarting" in (guest / "vm-bhyve.log").read_text()

    result = hivectl("poweroff", "-f", "g1")
    assert result.status == 0, result.err
    assert_clean(host, "g1")
    assert '"outcome": "poweroff"' in (guest / "hivectl.last").read_text()
    for command in (["restart"], ["reset", "-f"], ["poweroff", "-f"]):
        result = hivectl(*command, "g1", input_text="")
        assert result.status == 1 and "not running" in result.err, command


# -- configure ---------------------------------------------------------------------------------------------


EDITOR = """#!/bin/sh
# A real editor for the test: set memory to $NEW_MEMORY in the file it is given.
sed -i "s/^memory=.*/memory=\\"$NEW_MEMORY\\"/" "$1"
"""


def test_configure_saves_valid_edits_atomically_and_refuses_invalid_ones(vmdir: Path, tmp_path: Path) -> None:
    result = hivectl("create", "-s", "1G", "c1")
    assert result.status == 0, result.err
    conf = vmdir / "c1" / "c1.conf"
    conf.chmod(0o640)
    editor = tmp_path / "editor"
    editor.write_text(EDITOR)
    editor.chmod(0o755)
    env = {"EDITOR": str(editor), "NEW_MEMORY": "2G"}
    before = conf.stat()
    result = hivectl("configure", "c1", env=env, input_text="")
    assert result.status == 0, result.err
    after = conf.stat()
    assert 'memory="2G"' in conf.read_text().splitlines()
    assert after.st_ino != before.st_ino, "replaced by rename, not rewritten in place"
    assert after.st_mode & 0o777 == 0o640, "the mode is kept"
    assert sorted(p.name for p in (vmdir / "c1").iterdir()) == ["c1.conf", "disk0.img"], "no temp files left"

    text, inode = conf.read_bytes(), conf.stat().st_ino
    result = hivectl("configure", "c1", env={**env, "NEW_MEMORY": "4Q"}, input_text="")
    assert result.status == 1
    assert f"{conf}: memory='4Q'" in result.err, result.err
    assert conf.read_bytes() == text and conf.stat().st_ino == inode, "unchanged"
    assert "is unchanged" in result.err


# -- rc.d ------------------------------------------------------------------------------------------------------


def test_rc_d_script_parses_and_ships_as_package_data(tmp_path: Path) -> None:
    script = importlib.resources.files("hivectl").joinpath("rc.d/hivectl")
    assert script.is_file()
    dash = shutil.which("dash") or "/bin/sh"
    checked = subprocess.run([dash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    text = script.read_text()
    assert "stopall --timeout" in text and "startall" in text and "run_rc_command" in text
    # What an installation contains: build the package the way pip would (setuptools' build_py, with the
    # project's own package-data rules) into a scratch tree and find the script there with importlib.
    source = tmp_path / "src"
    source.mkdir()
    for item in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / item, source / item)
    shutil.copytree(REPO / "hivectl", source / "hivectl", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "lib"
    done = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d",
                           str(built)], cwd=source, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    probe = ("import importlib.resources as r, os; f = r.files('hivectl').joinpath('rc.d/hivectl'); "
             "print(f, os.access(str(f), os.X_OK))")
    found = subprocess.run([sys.executable, "-S", "-c", probe], cwd=built, capture_output=True, text=True,
                           check=False, env={"PATH": os.environ.get("PATH", "")})
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(built / "hivectl" / "rc.d" / "hivectl"), "True"]
    assert (built / "hivectl" / "rc.d" / "hivectl").read_text() == text
