"""Shared pieces of the lifecycle tests on the simulated FreeBSD host: the ``host`` fixture (exported by
tests/conftest.py) and small helpers that read the host's state."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.host import identity
from hivectl.rcfile import RcFile
from tests.cli_helpers import hivectl


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def host(simhost: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    rc = tmp_path / "rc.conf"
    rc.write_text("")
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm_dir))
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    assert hivectl("init").status == 0
    result = hivectl("switch", "create", "public")
    assert result.status == 0, result.err
    simhost.vm_dir = vm_dir
    simhost.rc = rc
    return simhost


def make_guest(host: Any, name: str = "g1", template: str = "default", **keys: str) -> Path:
    result = hivectl("create", "-t", template, "-s", "1G", name)
    assert result.status == 0, result.err
    conf = RcFile.load(host.vm_dir / name / f"{name}.conf")
    for key, value in keys.items():
        conf.set(key, value)
    conf.save()
    return host.vm_dir / name


def state_of(name: str) -> dict[str, Any]:
    rows = {r["name"]: r for r in hivectl("list", "--json").json()}
    return rows[name]


def bhyve_pid(host: Any, name: str) -> int | None:
    record = host.running().get(name)
    return int(record["pid"]) if record else None


def taps(host: Any) -> list[str]:
    return sorted(n for n, i in host.interfaces().items() if n.startswith("tap"))


@contextlib.contextmanager
def running_stand_in(guest_dir: Path, name: str, console: bool = False) -> Iterator[identity.ProcessIdentity]:
    """Make guest ``name`` (directory ``guest_dir``) look running to hivectl, with no hypervisor at all.

    A real process stands in for its supervisor and its hypervisor: its command line ends in the guest's
    name (as bhyve's does), and run.lock and hivectl.state record its pid with its start time, so hivectl's
    identity check (hivectl/host/identity.py) trusts it. A lock naming a pid alone, or a pid that is not
    the guest's, is a stale run and no longer makes a guest running.
    """
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", name])
    try:
        me = None
        for _ in range(100):
            me = identity.identify(stand_in.pid)
            if me is not None and me.names(name):
                break
            time.sleep(0.05)
        assert me is not None and me.names(name)
        (guest_dir / "run.lock").write_text(f"{os.uname().nodename}\npid={me.pid}\nstart={me.start}\n")
        (guest_dir / "hivectl.state").write_text(json.dumps({"state": "running", **me.record()}) + "\n")
        if console:
            (guest_dir / "console").write_text(f"com1=/dev/nmdm-{name}.1B\n")
        yield me
    finally:
        stand_in.kill()
        stand_in.wait()
