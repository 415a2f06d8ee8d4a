"""``hivectl/host/identity.py`` on real processes: both readers (Linux /proc, and the ``ps`` one FreeBSD
uses, run here with procps' ``ps``, which takes the same ``-o lstart=,command=`` and ``-p``/``-ax``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivectl.host import identity


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(params=["proc", "ps"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "ps":
        monkeypatch.setattr(identity, "linux_proc", lambda: False)
    return str(request.param)


def test_a_pid_matches_only_with_its_own_start_time(sleeper: subprocess.Popen[bytes], reader: str) -> None:
    me = identity.identify(sleeper.pid)
    assert me is not None and me.argv[:2] == ("sleep", "300")
    again = identity.identify(sleeper.pid)
    assert again is not None and again.start == me.start, "the token is stable for one process"
    assert identity.matches(sleeper.pid, me.start)
    assert not identity.matches(sleeper.pid, me.start + "0"), "another start time is another process"
    assert not identity.matches(sleeper.pid, None) and not identity.matches(sleeper.pid, "")
    assert not identity.matches(sleeper.pid, me.start, "g1"), "sleep does not name guest g1"
    assert any(p.pid == sleeper.pid and p.start == me.start for p in identity.processes())


def test_a_process_is_known_by_its_command_line_the_moment_its_spawn_returns() -> None:
    """``Popen`` returns in the middle of the child's execve, when /proc/PID/cmdline is still empty (CI's
    adoption and identity failures). Before identity read such a line again, 382 of 500 spawns here came
    back without their argv; every one must now."""
    missed = []
    for attempt in range(200):
        proc = subprocess.Popen(["sleep", "300", str(attempt)])
        try:
            found = identity.identify(proc.pid)
            if found is None or found.argv != ("sleep", "300", str(attempt)):
                missed.append(found)
        finally:
            proc.kill()
            proc.wait()
    assert missed == []


def _kernel_threads() -> list[int]:
    """Pids whose /proc/PID/stat flags carry PF_KTHREAD (none in a pid namespace of its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if stat and int(stat[stat.rfind(b")") + 2:].split()[6]) & identity.PF_KTHREAD:
            found.append(int(entry.name))
    return found


def test_a_kernel_thread_is_read_at_once_with_its_empty_command_line() -> None:
    """The re-read is for user processes only: a scan over /proc passes kernel threads (always empty) without
    waiting, or every ``list`` on a host with hundreds of them would pay 63 ms for each."""
    threads = _kernel_threads()[:20]
    if not threads:
        pytest.skip("this pid namespace shows no kernel thread")
    began = time.monotonic()
    seen = [identity.identify(pid) for pid in threads]
    assert [found.argv for found in seen if found is not None] == [()] * len([f for f in seen if f is not None])
    assert time.monotonic() - began < sum(identity.EXEC_SETTLE) * len(threads) / 2, "kernel threads were waited for"


def test_a_dead_or_zombie_process_has_no_identity(reader: str) -> None:
    proc = subprocess.Popen(["sleep", "0.2"])
    deadline = time.monotonic() + 10
    while identity.identify(proc.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # a zombie (exited, not reaped yet) already reads as gone
    assert identity.identify(proc.pid) is None, "an exited process, reaped or not, has no identity"
    proc.wait()
    assert identity.identify(proc.pid) is None


@pytest.mark.parametrize(("argv", "named"), [
    (["bhyve: g1"], True), (["bhyve: g10"], False),
    (["bhyve", "-c", "1", "-s", "0,hostbridge", "g1"], True),
    (["qemu-system-x86_64", "-name", "g1"], True), (["qemu-system-x86_64", "-name", "guest=g1,debug-threads=on"], True),
    (["qemu-system-x86_64", "-name", "g10"], False), (["qemu-system-x86_64", "-name", "guest=g10"], False),
    (["python3", "-S", "-m", "hivectl.runner.supervisor", "--driver", "bhyve", "g1"], True),
    (["sleep", "300"], False), ([], False),
])
def test_a_command_line_names_its_guest(argv: list[str], named: bool) -> None:
    assert identity.names_guest(argv, "g1") is named


@pytest.mark.parametrize(("argv", "bhyve"), [
    (["bhyve: g1"], True), (["/usr/sbin/bhyve", "-c", "1", "g1"], True),
    (["python3", "-S", "/t/simhost/bin/bhyve", "-c", "1", "g1"], True),  # a ``#!`` stand-in before its title
    (["python3", "/t/bin/bhyve", "g1"], True),
    (["jexec", "hivectl-g1", "/usr/sbin/bhyve", "-c", "1", "g1"], True),  # jexec(8) before it exec'd bhyve
    (["jexec", "-l", "-U", "root", "hivectl-g1", "bhyve", "g1"], True),
    (["python3", "-S", "/t/simhost/bin/jexec", "hivectl-g1", "/t/simhost/bin/bhyve", "g1"], True),
    (["jexec", "hivectl-g1", "sh", "g1"], False), (["python3", "-S", "/t/bin/jexec", "j", "/t/bin/sh", "g1"], False),
    (["jexec", "bhyve"], False), (["jexec", "-u", "bhyve", "j", "sh"], False),
    (["cu", "-l", "/dev/nmdm-g1.1B"], False), (["python3", "-S", "-m", "hivectl.runner.supervisor", "g1"], False),
    ([], False),
])
def test_a_command_line_runs_its_program_in_every_form_before_it_settles(argv: list[str], bhyve: bool) -> None:
    assert identity.runs(argv, "bhyve") is bhyve


def test_a_jailed_hypervisor_is_found_before_its_jexec_has_execd_it(tmp_path: Path, reader: str) -> None:
    """A stand-in jexec (``python3 -S .../jexec JAIL .../bhyve ... NAME``) that has not exec'd its command yet
    is the run's hypervisor process: found by its token and start, as the process it will become."""
    jexec = tmp_path / "jexec"
    jexec.write_text("import time\ntime.sleep(300)\n")
    intent = time.time()
    token = "feedc0de12345678"
    name = f"probe{os.getpid()}"  # no other test's guest: the ps reader is checked without the token
    argv = [sys.executable, "-S", str(jexec), f"hivectl-{name}", str(tmp_path / "bhyve"), "-c", "1", name]
    proc = subprocess.Popen(argv, env={**os.environ, identity.TOKEN_ENV: token})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p.pid == proc.pid for p in identity.processes()):
            time.sleep(0.05)
        # The token is read from /proc/PID/environ; FreeBSD's ``ps -e`` (environment) is not procps' ``-e``
        # (every process), so the ps reader is checked here without it.
        mine = token if reader == "proc" else None
        # procps derives lstart from /proc/stat's btime (whole seconds, behind the true boot time) and then
        # truncates it to the second: up to two seconds early, where FreeBSD's lstart is only truncated.
        intent -= 0 if reader == "proc" else 1.0
        # One look, right after the process appeared: CI once caught it inside its execve, with an empty
        # command line, which identity now reads again (test_a_process_is_known_by_its_command_line_...).
        found = identity.find(name, "bhyve", after=intent, token=mine)
        assert [p.pid for p in found] == [proc.pid], (found, [p for p in identity.processes() if p.pid == proc.pid])
        assert identity.find(name + "0", "bhyve", after=intent, token=mine) == [], "another guest"
        assert identity.find(name, "bhyveload", after=intent, token=mine) == [], "another program"
        if reader == "proc":
            assert identity.find(name, "bhyve", after=intent, token="0" * 16) == [], "another run's token"
    finally:
        proc.kill()
        proc.wait()
