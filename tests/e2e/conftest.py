"""End-to-end fixtures: real QEMU guests driven through the real ``hivectl`` CLI.

Every hivectl command runs inside a network namespace the test creates (``ip netns exec``), so the
switch's bridge, the guests' taps and the supervisors live there and vanish with it. Assertions are made
on what the guest itself prints on its serial console (captured by QEMU into ``NAME/console.log``), on
ping replies, and on the host's process and interface tables, never on hivectl's own claims alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import HIVECTL
from tinyguest.templates import hivectl_template

READY = re.compile(r"HIVECTL-GUEST-READY ip=(\S+) mac=(\S+) disks=(\S+) boot=(\S+)")
SUBNET = "10.77.0"


@dataclass
class Run:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Env:
    netns: str
    vm_dir: Path
    env: dict[str, str]
    artifacts: Any

    def hivectl(self, *args: str, input_text: str | None = None, timeout: float = 120) -> Run:
        # nsenter enters only the network namespace: ``ip netns exec`` would also give each command a mount
        # namespace of its own, and then a dataset zfs-fuse mounts during the command stays invisible to it.
        done = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", "--", *HIVECTL, *args],
                              env=self.env, capture_output=True, text=True, input=input_text, timeout=timeout,
                              check=False)
        return Run(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **kw: Any) -> Run:
        result = self.hivectl(*args, **kw)
        assert result.status == 0, f"hivectl {' '.join(args)} failed: {result.err}"
        return result

    def netns_run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def console_log(self, name: str) -> str:
        try:
            return (self.vm_dir / name / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, name: str, pattern: re.Pattern[str] | str, after: int = 0,
                     timeout: float = 90) -> re.Match[str]:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.console_log(name), after)
            if match:
                return match
            time.sleep(0.2)
        raise AssertionError(f"{name}: {regex.pattern!r} not on the console within {timeout} s; "
                             f"console tail: {self.console_log(name)[-800:]!r}")

    def state(self, name: str) -> dict[str, Any]:
        rows = {r["name"]: r for r in self.ok("list", "--json").json()}
        return rows[name]

    def wait_state(self, name: str, predicate: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.state(name)["state"]
            if predicate(state):
                return state
            time.sleep(0.3)
        raise AssertionError(f"{name}: state still {state!r} after {timeout} s")

    def links(self) -> list[str]:
        out = self.netns_run("ip", "-o", "link", "show").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def qemu_processes(vm_dir: Path) -> list[int]:
    """QEMU processes whose command line mentions this vm_dir (the host's own process table)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and b"qemu-system" in cmdline[0] and any(str(vm_dir).encode() in a for a in cmdline):
            pids.append(int(entry))
    return pids


@pytest.fixture(scope="session")
def artifacts() -> Any:
    import tinyguest

    return tinyguest.build()


@contextlib.contextmanager
def environment(base: Path, artifacts: Any, vm_dir: Path, vm_dir_setting: str) -> Iterator[Env]:
    """A netns, an initialised vm_dir with the tiny templates and a switch 'lan' at 10.77.0.1/24."""
    netns = f"hve2e-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    rc = base / "rc.conf"
    rc.write_text("")
    env = {**os.environ, "HIVECTL_VM_DIR": vm_dir_setting, "HIVECTL_RC_CONF": str(rc),
           "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg"}
    env.pop("HIVECTL_HOST_ROOT", None)
    e = Env(netns, vm_dir, env, artifacts)
    try:
        e.netns_run("ip", "link", "set", "lo", "up")
        e.ok("init")
        (vm_dir / ".templates" / "tiny.conf").write_text(hivectl_template())
        (vm_dir / ".templates" / "tiny-direct.conf").write_text(hivectl_template(artifacts, disk_size="64M"))
        e.ok("switch", "create", "-a", f"{SUBNET}.1/24", "lan")
        yield e
    finally:
        pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
        for pid in [*qemu_processes(vm_dir), *(int(p) for p in pids.split() if p.isdigit())]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        subprocess.run(["ip", "netns", "delete", netns], check=False)


@pytest.fixture
def e2e(tmp_path_factory: pytest.TempPathFactory, artifacts: Any) -> Iterator[Env]:
    # Short paths: QEMU's unix sockets live in the guest directory and must stay under 108 bytes.
    base = Path(tmp_path_factory.mktemp("e2e", numbered=True))
    vm_dir = base / "vm"
    vm_dir.mkdir()
    with environment(base, artifacts, vm_dir, str(vm_dir)) as e:
        yield e


def zfs_ready() -> bool:
    return subprocess.run(["zpool", "list", "-H"], capture_output=True, check=False).returncode == 0


@pytest.fixture
def e2e_zfs(tmp_path_factory: pytest.TempPathFactory, artifacts: Any) -> Iterator[Env]:
    """Like ``e2e``, with vm_dir on a real ZFS dataset (zfs-fuse: datasets, snapshots, clones; no zvols).

    The pool lives in a sparse file of the test's own; the zfs-fuse daemon is started when it is not
    running and stopped again if this fixture started it.
    """
    base = Path(tmp_path_factory.mktemp("zfs", numbered=True))
    daemon = None
    if not zfs_ready():
        running = subprocess.run(["pgrep", "-x", "zfs-fuse"], capture_output=True, check=False).returncode == 0
        if not running:  # a daemon that was killed leaves its socket behind, and a new one cannot bind it
            Path("/var/run/zfs_socket").unlink(missing_ok=True)
        log = open(base / "zfs-fuse.log", "wb")  # noqa: SIM115 - closed with the daemon
        daemon = subprocess.Popen(["zfs-fuse", "--no-daemon"], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not zfs_ready():
            assert daemon.poll() is None, f"zfs-fuse exited: {(base / 'zfs-fuse.log').read_text(errors='replace')}"
            assert time.monotonic() < deadline, "zfs-fuse did not come up within 30 s"
            time.sleep(0.2)
    pool = f"hve2e{secrets.token_hex(3)}"
    image = base / "pool.img"
    with open(image, "wb") as handle:
        handle.truncate(1 << 30)
    mountpoint = base / "p"
    try:
        subprocess.run(["zpool", "create", "-m", str(mountpoint), pool, str(image)], check=True, capture_output=True)
        subprocess.run(["zfs", "create", f"{pool}/vm"], check=True)
        with environment(base, artifacts, mountpoint / "vm", f"zfs:{pool}/vm") as e:
            e.pool = pool  # type: ignore[attr-defined]
            yield e
    finally:
        subprocess.run(["zpool", "destroy", "-f", pool], capture_output=True, check=False)
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
