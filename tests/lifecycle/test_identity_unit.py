"""``hivectl/host/identity.py`` on real processes: both readers (Linux /proc, and the ``ps`` one FreeBSD
uses, run here with procps' ``ps``, which takes the same ``-o lstart=,command=`` and ``-p``/``-ax``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

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
