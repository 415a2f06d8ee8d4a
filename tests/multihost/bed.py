"""The two-host (or N-host) test bed: namespace hosts on this machine, each with its own sshd and vm_dir.

Each host is a network namespace joined to one bridge in the test's own namespace by a veth pair, so the
test reaches every host and every host reaches every other (a migration from A to B runs ``hivectl``
inside A's namespace and its ssh goes to B over the bridge). Each host runs its own ``sshd -D`` (its own
host key, one client key in its authorized_keys, no password or keyboard-interactive login) and has its
own vm_dir, rc.conf, settings and "platform":

* ``sim``: the simulated FreeBSD host of tests/simhost (its own state root, its stand-ins first on PATH);
* ``qemu``: this Linux machine with the QEMU driver (TCG), optionally on a zfs-fuse pool of its own.

``host.command`` is a small wrapper that gives ``hivectl`` that host's environment; it is what
``hivectl remote add --command`` names, and what ``host.hivectl(...)`` runs (inside the host's namespace).

sshd is entered with ``nsenter --net`` only, not ``ip netns exec``: the latter gives each process a mount
namespace of its own, and a dataset zfs-fuse mounts would then be invisible to the other processes
(tests/e2e/conftest.py says the same for its commands).

Cleanup runs even when a test fails: every process left in a host's namespace (sshd and its sessions,
guests) and every stand-in guest is killed, the namespaces, veths and the bridge are deleted, zfs-fuse
pools destroyed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cli_helpers import HIVECTL, REPO, Outcome
from tests.simhost import fixture as simfixture

SSHD = "/usr/sbin/sshd"


def _run(argv: Sequence[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 under 10.0.0.0/8 that no route of this machine covers (parallel beds pick different ones)."""
    routes = _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    taken = [ipaddress.ip_network(word, strict=False) for line in routes.splitlines()
             for word in line.split()[:2] if "/" in word]
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the test bed")


@dataclass
class NsHost:
    """One namespace host of a :class:`Bed`."""

    name: str
    netns: str
    address: str  # on the bed's bridge; sshd listens here on port 22
    base: Path  # everything of this host lives under it
    vm_dir: Path  # the directory (for a ZFS vm_dir: the dataset's mountpoint)
    vm_dir_setting: str  # what HIVECTL_VM_DIR says (``zfs:pool/vm`` on ZFS)
    platform: str  # "sim" or "qemu"
    env: dict[str, str]  # the environment this host's hivectl runs with
    command: Path  # the wrapper that runs hivectl with ``env`` (``remote add --command``); python3 beside it
    sim: simfixture.SimHost | None = None  # the simulated FreeBSD host (platform "sim")
    pool: str | None = None  # the zfs-fuse pool (qemu hosts made with zfs=True)
    sshd: subprocess.Popen[bytes] | None = None
    sshd_config: Path | None = None
    links: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """``ssh://root@ADDRESS``: what ``hivectl remote add`` takes for this host."""
        return f"ssh://root@{self.address}"

    def nsenter(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host's network namespace (and only that namespace)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]

    def hivectl(self, *args: str, input_text: str | None = None, timeout: float = 60) -> Outcome:
        """This host's hivectl, run locally in its namespace (as an administrator logged in on it)."""
        done = subprocess.run(self.nsenter([str(self.command), *args]), capture_output=True, text=True,
                              input=input_text, timeout=timeout, check=False, env=self.env)
        return Outcome(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **kw: Any) -> Outcome:
        result = self.hivectl(*args, **kw)
        assert result.status == 0, f"{self.name}: hivectl {' '.join(args)} failed ({result.status}): {result.err}"
        return result

    def down(self) -> None:
        """Make the host unreachable: sshd and every session it serves are killed (a master connection
        an ssh client keeps open dies with them), nothing listens on port 22 any more."""
        for pid in netns_pids(self.netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.sshd is not None:
            self.sshd.wait(timeout=10)
            self.sshd = None

    def up(self) -> None:
        """Start this host's sshd again (after :meth:`down`) and wait until it accepts connections."""
        assert self.sshd_config is not None
        if self.sshd is None:
            self.sshd = _start_sshd(self)


def netns_pids(netns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", netns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _start_sshd(host: NsHost) -> subprocess.Popen[bytes]:
    assert host.sshd_config is not None
    log = open(host.base / "sshd.log", "ab")  # noqa: SIM115 - the daemon keeps it; closed at exit
    proc = subprocess.Popen(host.nsenter([SSHD, "-D", "-e", "-f", str(host.sshd_config)]),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        probe = _run(host.nsenter(["bash", "-c", f"exec 3<>/dev/tcp/{host.address}/22"]), check=False)
        if probe.returncode == 0:
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"sshd of {host.name} exited: {(host.base / 'sshd.log').read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sshd of {host.name} did not listen within 15 s: {(host.base / 'sshd.log').read_text()}")


@dataclass
class Bed:
    """The hosts, the client key every host accepts, and the known_hosts file that lists every host."""

    base: Path
    bridge: str
    gateway: str  # the bridge's address in the test's namespace
    identity: Path  # the client's private key (authorized on every host)
    known_hosts: Path  # every host's key at its address (StrictHostKeyChecking=yes works)
    hosts: dict[str, NsHost] = field(default_factory=dict)

    def __getitem__(self, name: str) -> NsHost:
        return self.hosts[name]

    def remote_args(self, host: NsHost) -> list[str]:
        """The ``hivectl remote add`` words that reach ``host``: URL, --command, --identity, --known-hosts."""
        return [host.url, "--command", str(host.command), "--identity", str(self.identity),
                "--known-hosts", str(self.known_hosts)]

    def add_remote(self, on: NsHost | None, name: str, to: NsHost,
                   env: dict[str, str] | None = None) -> Outcome:
        """``hivectl remote add NAME ...`` on host ``on`` (None: the test's own hivectl with ``env``)."""
        words = ["remote", "add", name, *self.remote_args(to)]
        if on is not None:
            return on.ok(*words)
        from tests.cli_helpers import hivectl

        result = hivectl(*words, env=env)
        assert result.status == 0, result.err
        return result

    def connect_everyone(self) -> None:
        """Every host knows every other one as a remote by its name (``hivectl -H b ...`` on host a)."""
        for on in self.hosts.values():
            for to in self.hosts.values():
                if on is not to:
                    self.add_remote(on, to.name, to)


def _keygen(path: Path) -> None:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)])


def _write_sshd_config(host: NsHost, host_key: Path, authorized: Path) -> Path:
    config = host.base / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {host.address}",
        "Port 22",
        f"HostKey {host_key}",
        f"PidFile {host.base / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",  # the bed's files live under pytest's tmp tree, whose modes sshd would judge
        "PermitUserEnvironment no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PrintMotd no",
        "LogLevel ERROR",
        "MaxSessions 50",
        "MaxStartups 50:30:100",
        "",
    ]))
    return config


def _wrapper(host: NsHost) -> Path:
    """``bin/hivectl`` of this host: exec the checkout's launcher with exactly this host's environment."""
    path = host.base / "bin" / "hivectl"
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = ("PATH", "PYTHONPATH", "SIMHOST_ROOT", "SIMHOST_PYCACHE", "HIVECTL_HOST_ROOT", "HIVECTL_PLATFORM",
            "HIVECTL_DRIVER", "HIVECTL_VM_DIR", "HIVECTL_RC_CONF", "HIVECTL_QEMU_ACCEL", "LANG", "LC_ALL")
    lines = ["#!/bin/sh", "# This namespace host's hivectl (tests/multihost/bed.py).", "exec env -i \\",
             '  SSH_CONNECTION="${SSH_CONNECTION:-}" \\']
    lines += [f"  {k}={_sh(host.env[k])} \\" for k in keep if k in host.env]
    python = path.with_name("python3")  # the same environment for a Python program (Ansible's modules)
    python.write_text("\n".join([*lines, f"  {_sh(HIVECTL[0])} \"$@\""]) + "\n")
    python.chmod(0o755)
    lines.append(f"  {_sh(HIVECTL[0])} -S {_sh(str(REPO / 'bin' / 'hivectl'))} \"$@\"")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def _sh(value: str) -> str:
    import shlex

    return shlex.quote(value)


def _host_env(base: Path, vm_dir_setting: str, platform: str, sim_root: Path | None) -> dict[str, str]:
    rc = base / "rc.conf"
    rc.write_text('vm_list=""\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVECTL_", "SIMHOST_"))}
    env.update({"HIVECTL_VM_DIR": vm_dir_setting, "HIVECTL_RC_CONF": str(rc)})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    if platform == "sim":
        assert sim_root is not None
        search = [str(simfixture.BIN_DIR)]
        fast = simfixture.python_link(base)
        if fast is not None:
            search.append(str(fast))
        env["PATH"] = os.pathsep.join([*search, os.environ.get("PATH", "/usr/bin:/bin")])
        env.update({"SIMHOST_ROOT": str(sim_root), "HIVECTL_HOST_ROOT": str(sim_root),
                    "HIVECTL_PLATFORM": "freebsd", "HIVECTL_DRIVER": "bhyve"})
        cache = simfixture.pycache_dir(base)
        if cache is not None:
            env["SIMHOST_PYCACHE"] = cache
    else:
        env.update({"HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg"})
    return env


def zfs_ready() -> bool:
    return _run(["zpool", "list", "-H"], check=False).returncode == 0


@contextlib.contextmanager
def zfs_daemon(base: Path) -> Iterator[None]:
    """zfs-fuse running (one daemon serves every host's pool); stopped again if this started it."""
    if zfs_ready():
        yield
        return
    if _run(["pgrep", "-x", "zfs-fuse"], check=False).returncode != 0:
        Path("/var/run/zfs_socket").unlink(missing_ok=True)  # a killed daemon's socket blocks a new one
    with open(base / "zfs-fuse.log", "wb") as log:
        daemon = subprocess.Popen(["zfs-fuse", "--no-daemon"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not zfs_ready():
            assert daemon.poll() is None, f"zfs-fuse exited: {(base / 'zfs-fuse.log').read_text()}"
            assert time.monotonic() < deadline, "zfs-fuse did not come up within 30 s"
            time.sleep(0.2)
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


@contextlib.contextmanager
def make_bed(base: Path, hosts: Sequence[str | tuple[str, str]] = ("a", "b"), *, zfs: bool = False,
             init: bool = True) -> Iterator[Bed]:
    """A bed of namespace hosts under ``base``; ``hosts`` are names (``sim``) or ``(name, platform)``.

    ``zfs=True`` gives every ``qemu`` host a zfs-fuse pool of its own with vm_dir ``zfs:POOL/vm``, and every
    ``sim`` host the vm_dir ``zfs:zroot/vm`` on its simulated pool.
    ``init=True`` runs ``hivectl init`` on every host.
    """
    base.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    net = _free_subnet()
    tag = secrets.token_hex(3)
    bridge = f"hvb{tag}"
    addresses = list(net.hosts())
    bed = Bed(base, bridge, str(addresses[0]), base / "id_ed25519", base / "known_hosts")
    stack = contextlib.ExitStack()
    try:
        _keygen(bed.identity)
        authorized = base / "authorized_keys"
        authorized.write_text(Path(f"{bed.identity}.pub").read_text())
        _run(["ip", "link", "add", bridge, "type", "bridge"])
        stack.callback(_run, ["ip", "link", "delete", bridge], False)
        _run(["ip", "addr", "add", f"{bed.gateway}/{net.prefixlen}", "dev", bridge])
        _run(["ip", "link", "set", bridge, "up"])
        if zfs and any(not isinstance(h, str) and h[1] == "qemu" for h in hosts):
            stack.enter_context(zfs_daemon(base))
        known: list[str] = []
        for index, spec in enumerate(hosts):
            name, platform = (spec, "sim") if isinstance(spec, str) else spec
            host = _make_host(bed, stack, name, platform, f"hv{tag}{index}", str(addresses[index + 1]),
                              net.prefixlen, zfs)
            host_key = host.base / "ssh_host_ed25519_key"
            _keygen(host_key)
            known.append(f"{host.address} {Path(f'{host_key}.pub').read_text().split(' ')[0]} "
                         f"{Path(f'{host_key}.pub').read_text().split(' ')[1]}")
            host.sshd_config = _write_sshd_config(host, host_key, authorized)
            host.up()
            bed.hosts[name] = host
            if init:
                host.ok("init")
        bed.known_hosts.write_text("\n".join(known) + "\n")
        yield bed
    finally:
        stack.close()


def _make_host(bed: Bed, stack: contextlib.ExitStack, name: str, platform: str, netns: str, address: str,
               prefixlen: int, zfs: bool) -> NsHost:
    if platform not in ("sim", "qemu"):
        raise ValueError(f"platform {platform!r}: sim or qemu")
    base = bed.base / name
    base.mkdir()
    _run(["ip", "netns", "add", netns])
    stack.callback(_run, ["ip", "netns", "delete", netns], False)
    # Registered after the delete, so it runs before it (ExitStack unwinds last-in first-out).
    stack.callback(_kill_netns, netns)
    outside, inside = f"{netns}o", f"{netns}i"
    _run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
    stack.callback(_run, ["ip", "link", "delete", outside], False)
    _run(["ip", "link", "set", inside, "netns", netns])
    _run(["ip", "link", "set", outside, "master", bed.bridge, "up"])
    ns = ["ip", "netns", "exec", netns]
    _run([*ns, "ip", "link", "set", "lo", "up"])
    _run([*ns, "ip", "addr", "add", f"{address}/{prefixlen}", "dev", inside])
    _run([*ns, "ip", "link", "set", inside, "up"])
    _run([*ns, "ip", "route", "add", "default", "via", bed.gateway])
    sim = None
    pool = None
    if platform == "sim":
        root = base / "simhost"
        simfixture.create_host(root)
        sim = simfixture.SimHost(root)
        stack.callback(sim.close)
        if zfs:  # the simulated host's own zfs (tests/simhost/zfs.py): a dataset of its pool zroot
            env = _host_env(base, "zfs:zroot/vm", platform, root)
            subprocess.run(["zfs", "create", "zroot/vm"], env=env, check=True, capture_output=True)
            mount = subprocess.run(["zfs", "get", "-H", "-o", "value", "mountpoint", "zroot/vm"], env=env,
                                   check=True, capture_output=True, text=True).stdout.strip()
            vm_dir, setting = Path(mount), "zfs:zroot/vm"
        else:
            vm_dir = base / "vm"
            vm_dir.mkdir()
            setting = str(vm_dir)
    elif zfs:
        pool = f"hvmh{secrets.token_hex(3)}{name}"
        image = base / "pool.img"
        with open(image, "wb") as handle:
            handle.truncate(1 << 30)
        vm_dir = base / "p" / "vm"
        _run(["zpool", "create", "-m", str(base / "p"), pool, str(image)])
        stack.callback(_run, ["zpool", "destroy", "-f", pool], False)
        _run(["zfs", "create", f"{pool}/vm"])
        setting = f"zfs:{pool}/vm"
    else:
        vm_dir = base / "vm"
        vm_dir.mkdir()
        setting = str(vm_dir)
    env = _host_env(base, setting, platform, sim.root if sim is not None else None)
    host = NsHost(name, netns, address, base, vm_dir, setting, platform, env, Path(), sim, pool)
    host.command = _wrapper(host)
    return host


def _kill_netns(netns: str) -> None:
    """Every process in the namespace (sshd, its sessions, supervisors, guests) killed and reaped."""
    for _ in range(20):
        pids = netns_pids(netns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def local_env(base: Path) -> dict[str, str]:
    """The environment of the test's own hivectl (in the test's namespace): an empty vm_dir of its own on
    this Linux machine, so ``hivectl remote add/list`` there touch nothing of the namespace hosts."""
    vm_dir = base / "local-vm"
    vm_dir.mkdir(exist_ok=True)
    rc = base / "local-rc.conf"
    rc.write_text('vm_list=""\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVECTL_", "SIMHOST_"))}
    env.update({"HIVECTL_VM_DIR": str(vm_dir), "HIVECTL_RC_CONF": str(rc), "HIVECTL_PLATFORM": "linux",
                "HIVECTL_DRIVER": "qemu"})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def rows(outcome: Outcome) -> list[dict[str, Any]]:
    assert outcome.status == 0, outcome.err
    data = json.loads(outcome.out)
    assert isinstance(data, list)
    return data


__all__ = ["Bed", "NsHost", "local_env", "make_bed", "netns_pids", "rows"]
