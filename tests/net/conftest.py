"""Fixtures for the switch tests: a simulated FreeBSD host with a vm_dir, and real Linux network namespaces."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import HIVECTL, Outcome
from tests.net.standins import kill_daemons
from tests.simhost.fixture import SimHost

NET_BIN = Path(__file__).resolve().parent / "bin"


def cli(*args: str) -> Outcome:
    """Run ``hivectl ARGS`` in this process (the real ``main``) and capture what it prints."""
    from hivectl.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return Outcome(status, out.getvalue(), err.getvalue())


@dataclass
class FreeBSD:
    """A simulated FreeBSD host with an initialised vm_dir."""

    sim: SimHost
    vm_dir: Path

    @property
    def system_conf(self) -> Path:
        return self.vm_dir / ".config" / "system.conf"

    def ifs(self) -> dict[str, dict[str, Any]]:
        return self.sim.interfaces()

    def members(self, bridge: str) -> list[str]:
        return sorted(m["name"] for m in self.ifs()[bridge]["members"])

    def add_nic(self, name: str, address: str | None = None) -> None:
        """Another physical NIC (like em0), optionally with an IPv4 address."""
        with self.sim.edit() as data:
            index = data["next_ifindex"]
            data["next_ifindex"] = index + 1
            data["interfaces"][name] = {
                "name": name, "kind": "ether", "index": index, "cloner": None, "unit": 0,
                "flags": ["UP", "BROADCAST", "RUNNING", "SIMPLEX", "MULTICAST"], "mtu": 1500, "max_mtu": 9216,
                "description": "", "groups": [], "ether": f"00:0c:29:5a:10:{index:02x}",
                "inet": [{"addr": address, "prefixlen": 24}] if address else [], "inet6": [],
            }

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.sim.run(list(argv))


@pytest.fixture
def freebsd(simhost: SimHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FreeBSD]:
    """The simulated host plus the switch stand-ins (route, ngctl, dnsmasq) and an initialised vm_dir."""
    monkeypatch.setenv("PATH", f"{NET_BIN}{os.pathsep}{os.environ['PATH']}")
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    rc = tmp_path / "rc.conf"
    rc.write_text('vm_list=""\n')
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm_dir))
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    result = cli("init")
    assert result.status == 0, result.err
    try:
        yield FreeBSD(simhost, vm_dir)
    finally:
        kill_daemons(simhost.root)


# -- Linux network namespaces ------------------------------------------------------------------------------
def ns_run(ns: str, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command inside namespace ``ns``."""
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} in {ns}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def ns_hivectl(ns: str, *args: str, timeout: float = 60) -> Outcome:
    """The real command line, run as a process inside namespace ``ns``."""
    done = subprocess.run(["ip", "netns", "exec", ns, *HIVECTL, *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


@dataclass
class Namespaces:
    """Network namespaces made for one test (all removed at teardown, whatever happened)."""

    prefix: str
    made: list[str]
    vm_dir: Path

    def new(self, tag: str) -> str:
        name = f"{self.prefix}-{tag}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.made.append(name)
        ns_run(name, "ip", "link", "set", "lo", "up")
        return name


def _cleanup_namespaces(made: list[str], vm_dir: Path) -> None:
    # Daemons started inside first (dnsmasq outlives its namespace otherwise), then the namespaces.
    for pidfile in vm_dir.glob(".config/dnsmasq-*.pid"):
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
    for name in made:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                                  check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def netns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Namespaces]:
    """A vm_dir for the Linux platform and a factory of namespaces ``hvt-<random>-<tag>``."""
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    vm_dir.chmod(0o755)
    tmp_path.chmod(0o755)
    rc = tmp_path / "rc.conf"
    rc.write_text('vm_list=""\n')
    for key, value in (("HIVECTL_VM_DIR", str(vm_dir)), ("HIVECTL_RC_CONF", str(rc)), ("HIVECTL_PLATFORM", "linux")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HIVECTL_HOST_ROOT", raising=False)
    assert cli("init").status == 0
    spaces = Namespaces(f"hvt-{uuid.uuid4().hex[:8]}", [], vm_dir)
    try:
        yield spaces
    finally:
        _cleanup_namespaces(spaces.made, vm_dir)


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair with one end in each namespace."""
    ns_run(ns_a, "ip", "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)


Waiter = Callable[[], bool]


def wait_for(check: Waiter, timeout: float = 10.0, step: float = 0.05) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()
