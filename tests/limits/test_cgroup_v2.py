"""The cgroup v2 writer of hivectl/runner/limits.py, on a host tree laid out as the kernel lays out cgroup2.

This test host binds cpu, memory and blkio to cgroup v1 hierarchies, so tests/limits/test_qemu_real.py and
tests/e2e/test_qemu_limits.py only ever reach the v1 writer. Here the real ``cgroup_apply``,
``cgroup_report`` (what ``info`` shows) and ``cgroup_release`` run against a host root under tmp_path: its
``proc/self/mounts``, a ``sys/dev/block`` for the disk's MAJ:MIN, and cgroup hierarchies kept by ``Kernel``
below. ``Kernel`` stands where cgroupfs does, at the system calls hivectl makes (mkdir, rmdir, open, write,
close of paths inside a hierarchy), and does what Documentation/admin-guide/cgroup-v2.rst says the kernel
does: mkdir makes a group's interface files (the core files, plus those of each controller the parent's
``cgroup.subtree_control`` enables), ``+ctrl`` is refused unless ``cgroup.controllers`` lists it and, in a
non-root group, unless the group has no processes ("no internal processes"), a pid is refused in a non-root
group that enables controllers for its children, cpu.max / io.max / memory.max are parsed as the kernel
parses them (an unknown key, a partition, a unit where none is taken, a quota under 1 ms: refused), and
rmdir is refused while a group has processes or children. A file the kernel does not make cannot be
opened for writing (cgroupfs creates none), so a product writing a wrong file fails here.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hivectl.host import cgroups
from hivectl.host.local import LocalHost
from hivectl.hostconf import HostSettings
from hivectl.ops import listing
from hivectl.runner import limits
from hivectl.store import GuestRef, Store

PID = 4242  # the guest's QEMU, a process of the simulated kernel
OTHER = 777  # some other process of the host, in the root cgroup
PAGE = 4096
GIB = 1 << 30
CONF = ('loader="bhyveload"\ncpu=1\nmemory=256M\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
        'limit_pcpu="50"\nlimit_memory="2G"\nlimit_rbps="10M"\nlimit_wbps="1G"\nlimit_riops="1000"\n'
        'limit_wiops="500"\n')

V2_CORE = {"cgroup.procs": "", "cgroup.controllers": None, "cgroup.subtree_control": "", "cgroup.stat": "",
           "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"}
V2_NONROOT = {"cgroup.type": "domain\n", "cgroup.events": "populated 0\nfrozen 0\n"}
V2_FILES = {"cpu": {"cpu.max": "max 100000\n", "cpu.weight": "100\n"},
            "io": {"io.max": "", "io.stat": "", "io.weight": "default 100\n"},
            "memory": {"memory.max": "max\n", "memory.current": "0\n", "memory.high": "max\n"}}
V1_FILES = {"memory": {"memory.limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "0\n"},
            "cpu": {"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n", "cpu.stat": "nr_throttled 0\n"}}
READ_ONLY = {"cgroup.controllers", "cgroup.stat", "cgroup.events", "cpu.stat", "io.stat", "memory.current",
             "memory.usage_in_bytes"}
IO_KEYS = ("rbps", "wbps", "riops", "wiops")


def refuse(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


def memparse(text: str, path: Path) -> int:
    """The kernel's memparse(): a number with an optional K, M, G, T, P, E suffix, to whole pages."""
    match = re.fullmatch(r"([0-9]+)([KMGTPEkmgtpe]?)", text)
    if not match:
        raise refuse(errno.EINVAL, path)
    number = int(match.group(1)) << (10 * ("KMGTPE".index(match.group(2).upper()) + 1) if match.group(2) else 0)
    return number // PAGE * PAGE


class Hierarchy:
    """One mounted hierarchy: cgroup2 (controllers offered at its root) or a v1 one (its bound controllers)."""

    def __init__(self, mount: Path, v2: bool, controllers: set[str], namespace_root: bool = False) -> None:
        self.mount, self.v2, self.controllers = mount, v2, controllers
        self.namespace_root = namespace_root  # the mount's top is a non-root cgroup (a container's)
        self.procs: dict[Path, set[int]] = {}
        self.subtree: dict[Path, set[str]] = {}
        self.offered: dict[Path, set[str]] = {}

    def is_root(self, group: Path) -> bool:
        """The real root cgroup, the one exempt from the no-internal-process rule."""
        return group == self.mount and not self.namespace_root

    def make(self, group: Path, offered: set[str]) -> None:
        self.procs[group], self.subtree[group], self.offered[group] = set(), set(), set(offered)
        files: dict[str, str | None] = {}
        if self.v2:
            files.update(V2_CORE)
            if not self.is_root(group):
                files.update(V2_NONROOT)
                for name in sorted(offered):
                    files.update(V2_FILES[name])
        else:
            files.update({"cgroup.procs": "", "tasks": ""})
            for name in self.controllers:
                files.update(V1_FILES[name])
        for name, text in files.items():
            (group / name).write_text(" ".join(sorted(offered)) + "\n" if text is None else text)
        self.sync(group)

    def sync(self, group: Path) -> None:
        pids = "".join(f"{pid}\n" for pid in sorted(self.procs[group]))
        (group / "cgroup.procs").write_text(pids)
        if self.v2:
            (group / "cgroup.subtree_control").write_text(" ".join(sorted(self.subtree[group])) + "\n")
            (group / "cgroup.controllers").write_text(" ".join(sorted(self.offered[group])) + "\n")
        else:
            (group / "tasks").write_text(pids)

    def children(self, group: Path) -> list[Path]:
        return [child for child in self.procs if child.parent == group]


class Kernel:
    """cgroupfs at the system-call boundary (the module docstring says what it enforces)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, disks: set[str], partitions: set[str]) -> None:
        self.hierarchies: list[Hierarchy] = []
        self.disks, self.partitions = disks, partitions
        self.open_files: dict[int, Path] = {}
        self.writes: list[tuple[Path, str]] = []
        self.real: dict[str, Callable[..., Any]] = {n: getattr(os, n) for n in ("mkdir", "rmdir", "open", "write",
                                                                               "close")}
        for name in self.real:
            monkeypatch.setattr(os, name, getattr(self, name))

    def mount(self, mount: Path, v2: bool, controllers: set[str], pids: set[int],
              namespace_root: bool = False) -> Hierarchy:
        hierarchy = Hierarchy(mount, v2, controllers, namespace_root)
        mount.mkdir(parents=True, exist_ok=True)  # (not a hierarchy yet: the real mkdir)
        hierarchy.make(mount, controllers if v2 else set())
        hierarchy.procs[mount] = set(pids)
        hierarchy.sync(mount)
        self.hierarchies.append(hierarchy)
        return hierarchy

    def find(self, path: Path) -> tuple[Hierarchy, Path] | None:
        path = Path(os.path.abspath(path))
        for hierarchy in self.hierarchies:
            if path == hierarchy.mount or hierarchy.mount in path.parents:
                return hierarchy, path
        return None

    def spawn(self, pid: int) -> None:
        """A new process, in the top group of every hierarchy."""
        for hierarchy in self.hierarchies:
            hierarchy.procs[hierarchy.mount].add(pid)
            hierarchy.sync(hierarchy.mount)

    def exit(self, pid: int) -> None:
        for hierarchy in self.hierarchies:
            for group, pids in hierarchy.procs.items():
                if pid in pids:
                    pids.discard(pid)
                    hierarchy.sync(group)

    # -- the system calls ---------------------------------------------------------------------------------
    def mkdir(self, path: Any, mode: int = 0o777, *args: Any, **kwargs: Any) -> None:
        found = self.find(Path(path))
        if found is None:
            return self.real["mkdir"](path, mode, *args, **kwargs)  # type: ignore[no-any-return]
        hierarchy, group = found
        if group.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(group))
        if group.parent not in hierarchy.procs:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(group))
        self.real["mkdir"](group, mode)
        hierarchy.make(group, hierarchy.subtree[group.parent] if hierarchy.v2 else set())
        return None

    def rmdir(self, path: Any, *args: Any, **kwargs: Any) -> None:
        found = self.find(Path(path))
        if found is None:
            return self.real["rmdir"](path, *args, **kwargs)  # type: ignore[no-any-return]
        hierarchy, group = found
        if group not in hierarchy.procs or group == hierarchy.mount:
            raise refuse(errno.ENOENT if group not in hierarchy.procs else errno.EBUSY, group)
        if hierarchy.procs[group] or hierarchy.children(group):
            raise refuse(errno.EBUSY, group)
        for file in group.iterdir():
            file.unlink()
        self.real["rmdir"](group)
        for table in (hierarchy.procs, hierarchy.subtree, hierarchy.offered):
            del table[group]
        return None

    def open(self, path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        found = self.find(Path(path)) if isinstance(path, (str, Path)) else None
        if found is None or not flags & (os.O_WRONLY | os.O_RDWR):
            return self.real["open"](path, flags, mode, *args, **kwargs)  # type: ignore[no-any-return]
        _, file = found
        if not file.exists():  # cgroupfs makes no files: only the kernel's own are there
            raise refuse(errno.EACCES if flags & os.O_CREAT else errno.ENOENT, file)
        if file.name in READ_ONLY:
            raise refuse(errno.EACCES, file)
        fd: int = self.real["open"](os.devnull, os.O_WRONLY)
        self.open_files[fd] = file
        return fd

    def write(self, fd: int, data: bytes) -> int:
        if fd not in self.open_files:
            return self.real["write"](fd, data)  # type: ignore[no-any-return]
        file = self.open_files[fd]
        found = self.find(file)
        assert found is not None
        self.control(found[0], file.parent, file, data.decode())
        self.writes.append((file, data.decode()))
        return len(data)

    def close(self, fd: int) -> None:
        self.open_files.pop(fd, None)
        self.real["close"](fd)

    # -- the control files --------------------------------------------------------------------------------
    def control(self, hierarchy: Hierarchy, group: Path, file: Path, text: str) -> None:
        name = file.name
        if name in ("cgroup.procs", "tasks"):
            return self.move(hierarchy, group, file, text)
        if name == "cgroup.subtree_control":
            return self.subtree_control(hierarchy, group, file, text)
        if name == "cpu.max":
            match = re.fullmatch(r"(max|[0-9]+)(?: ([0-9]+))?\n?", text)
            if not match:
                raise refuse(errno.EINVAL, file)
            period = int(match.group(2) or file.read_text().split()[1])
            quota = match.group(1)
            if not 1000 <= period <= 1000000 or (quota != "max" and int(quota) < 1000):
                raise refuse(errno.EINVAL, file)  # tg_set_cfs_bandwidth: 1 ms to 1 s
            file.write_text(f"{quota} {period}\n")
            return None
        if name in ("memory.max", "memory.limit_in_bytes"):
            value = text.strip()
            file.write_text(value + "\n" if value in ("max", "-1") else f"{memparse(value, file)}\n")
            return None
        if name == "io.max":
            return self.io_max(file, text)
        raise refuse(errno.EINVAL, file)  # nothing else is written by hivectl; refuse rather than accept

    def move(self, hierarchy: Hierarchy, group: Path, file: Path, text: str) -> None:
        if not re.fullmatch(r"[0-9]+\n?", text):
            raise refuse(errno.EINVAL, file)
        pid = int(text)
        if not any(pid in pids for pids in hierarchy.procs.values()):
            raise refuse(errno.ESRCH, file)
        if hierarchy.v2 and not hierarchy.is_root(group) and hierarchy.subtree[group]:
            raise refuse(errno.EBUSY, file)  # no internal processes: it distributes to its children
        for other, pids in hierarchy.procs.items():
            if pid in pids:
                pids.discard(pid)
                hierarchy.sync(other)
        hierarchy.procs[group].add(pid)
        hierarchy.sync(group)

    def subtree_control(self, hierarchy: Hierarchy, group: Path, file: Path, text: str) -> None:
        words = text.split()
        if not words or any(not re.fullmatch(r"[+-][a-z_]+", w) for w in words):
            raise refuse(errno.EINVAL, file)
        for word in words:
            name = word[1:]
            if word[0] == "+" and name not in hierarchy.offered[group]:
                raise refuse(errno.ENOENT, file)  # not in this group's cgroup.controllers
            if word[0] == "+" and name not in hierarchy.subtree[group] and not hierarchy.is_root(group) \
                    and hierarchy.procs[group]:
                raise refuse(errno.EBUSY, file)  # no internal processes (cgroup-v2.rst)
            if word[0] == "-" and any(name in hierarchy.subtree[c] for c in hierarchy.children(group)):
                raise refuse(errno.EBUSY, file)
        for word in words:
            name = word[1:]
            for child in hierarchy.children(group):
                if word[0] == "+" and name not in hierarchy.subtree[group]:
                    hierarchy.offered[child].add(name)
                    for each, content in V2_FILES[name].items():
                        (child / each).write_text(content)
                elif word[0] == "-" and name in hierarchy.subtree[group]:
                    hierarchy.offered[child].discard(name)
                    for each in V2_FILES[name]:
                        (child / each).unlink()
                hierarchy.sync(child)
            (hierarchy.subtree[group].add if word[0] == "+" else hierarchy.subtree[group].discard)(name)
        hierarchy.sync(group)

    def io_max(self, file: Path, text: str) -> None:
        """blk-throttle's tg_set_limit: ``MAJ:MIN`` of a whole disk, then ``key=value`` with a number (not 0)
        or ``max``; the keys not named keep what they had."""
        words = text.split()
        if not words or not re.fullmatch(r"[0-9]+:[0-9]+", words[0]):
            raise refuse(errno.EINVAL, file)
        device = words[0]
        if device not in self.disks or device in self.partitions:
            raise refuse(errno.ENODEV, file)
        current = {line.split()[0]: dict(w.split("=") for w in line.split()[1:])
                   for line in file.read_text().splitlines() if line.strip()}
        values = current.get(device, dict.fromkeys(IO_KEYS, "max"))
        for word in words[1:]:
            key, _, value = word.partition("=")
            if key not in IO_KEYS or not (value == "max" or re.fullmatch(r"[0-9]+", value)):
                raise refuse(errno.EINVAL, file)
            if value != "max" and int(value) == 0:
                raise refuse(errno.ERANGE, file)
            values[key] = value
        current[device] = values
        file.write_text("".join(f"{dev} " + " ".join(f"{k}={v[k]}" for k in IO_KEYS) + "\n"
                                for dev, v in current.items() if set(v.values()) != {"max"}))


# -- the host ----------------------------------------------------------------------------------------------
def disk_numbers(path: Path) -> tuple[str, str]:
    """The MAJ:MIN of the file system holding ``path`` (laid out as a partition) and of its whole disk."""
    dev = os.stat(path).st_dev
    partition = f"{os.major(dev)}:{os.minor(dev)}"
    return partition, ("252:16" if partition == "252:0" else "252:0")


def lay_out_block(root: Path, partition: str, disk: str) -> None:
    """sysfs as the kernel shows a partition: /sys/dev/block/MAJ:MIN links to .../block/vda/vda1 (which has a
    ``partition`` file), whose parent directory is the whole disk with its own ``dev``."""
    whole = root / "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda"
    (whole / "vda1").mkdir(parents=True)
    (whole / "dev").write_text(disk + "\n")
    (whole / "vda1/dev").write_text(partition + "\n")
    (whole / "vda1/partition").write_text("1\n")
    links = root / "sys/dev/block"
    links.mkdir(parents=True)
    (links / partition).symlink_to("../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1")
    (links / disk).symlink_to("../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda")


class Host:
    """A Linux host root under tmp_path with one guest, ``web``, whose disk is a file in its directory."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mounts: str) -> None:
        self.root = tmp_path / "host"
        (self.root / "proc/self").mkdir(parents=True)
        (self.root / "proc/self/mounts").write_text(mounts)
        vm_dir = tmp_path / "vm"
        (vm_dir / "web").mkdir(parents=True)
        (vm_dir / "web/web.conf").write_text(CONF)
        (vm_dir / "web/disk0.img").write_bytes(b"\0" * 512)
        self.partition, self.disk = disk_numbers(vm_dir / "web/disk0.img")
        lay_out_block(self.root, self.partition, self.disk)
        self.host = LocalHost("linux", self.root)
        self.store = Store(HostSettings(vm_dir=str(vm_dir)), self.host)
        self.ref: GuestRef = self.store.get("web")
        self.kernel = Kernel(monkeypatch, {self.partition, self.disk}, {self.partition})
        self.log: list[str] = []

    def apply(self) -> None:
        limits.apply(self.host, self.ref, self.ref.config(), PID, self.log.append)


V2_MOUNTS = ("sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
             "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n")
MIXED_MOUNTS = ("tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0\n"
                "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"
                "cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0\n")


def io_line(disk: str) -> str:
    return f"{disk} rbps={10 << 20} wbps={1 << 30} riops=1000 wiops=500"


def test_a_v2_host_gets_cpu_max_io_max_memory_max_with_each_ancestor_enabling_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = Host(tmp_path, monkeypatch, V2_MOUNTS)
    top = setup.root / "sys/fs/cgroup"
    kernel = setup.kernel
    kernel.mount(top, True, {"cpu", "io", "memory", "pids"}, {1, OTHER, PID})
    setup.apply()
    assert not [line for line in setup.log if "not applied" in line], setup.log
    group = top / "hivectl/web"
    assert (top / "cgroup.subtree_control").read_text().split() == ["cpu", "io", "memory"]
    assert (top / "hivectl/cgroup.subtree_control").read_text().split() == ["cpu", "io", "memory"]
    assert (group / "cgroup.controllers").read_text().split() == ["cpu", "io", "memory"]
    assert (group / "cgroup.subtree_control").read_text().split() == [], "the guest's group enables nothing"
    assert (group / "cpu.max").read_text() == "50000 100000\n", "50 % of one CPU over the 100 ms period"
    assert (group / "memory.max").read_text() == f"{2 * GIB}\n"
    assert (group / "io.max").read_text() == io_line(setup.disk) + "\n", "the whole disk, not the partition"
    assert (group / "cgroup.procs").read_text() == f"{PID}\n"
    assert (top / "cgroup.procs").read_text().split() == ["1", str(OTHER)]
    assert (top / "hivectl/cgroup.procs").read_text() == "", "no process in a group that has children"
    written = {file.name for file, _ in kernel.writes}
    assert written <= {"cgroup.subtree_control", "cgroup.procs", "cpu.max", "io.max", "memory.max"}, written
    assert f"limit applied: {group / 'cpu.max'} = 50000 100000" in setup.log

    shown = listing._limits(setup.store, setup.ref, setup.ref.config(), PID)  # what ``info`` shows
    assert shown is not None
    assert shown["configured"] == {"limit_pcpu": 50, "limit_rbps": 10 << 20, "limit_wbps": 1 << 30,
                                   "limit_riops": 1000, "limit_wiops": 500, "limit_memory": 2 * GIB}
    assert shown["in_force"] == {"cpu.max": "50000 100000", "cpu.stat": "usage_usec 0 user_usec 0 system_usec 0",
                                 "io.max": io_line(setup.disk), "memory.max": str(2 * GIB),
                                 "memory.current": "0"}

    limits.release_groups(setup.host, setup.ref)
    assert group.is_dir(), "rmdir of a group with a live process is refused (EBUSY)"
    kernel.exit(PID)
    limits.release_groups(setup.host, setup.ref)
    assert not group.exists() and (top / "hivectl").is_dir()

    kernel.spawn(PID)  # the next boot's QEMU: hivectl is reused, the guest's group made again
    setup.apply()
    assert (group / "cpu.max").read_text() == "50000 100000\n" and (group / "cgroup.procs").read_text() == f"{PID}\n"


def test_a_mixed_host_takes_cpu_and_io_from_v2_and_memory_from_its_v1_hierarchy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = Host(tmp_path, monkeypatch, MIXED_MOUNTS)
    fs = setup.root / "sys/fs/cgroup"
    fs.mkdir(parents=True)
    setup.kernel.mount(fs / "unified", True, {"cpu", "io"}, {1, PID})
    setup.kernel.mount(fs / "memory", False, {"memory"}, {1, PID})
    found, missing = cgroups.groups(setup.root, "web", {"cpu", "io", "memory"})
    assert missing == []
    assert {(g.controller, g.path, g.v2) for g in found} == {
        ("cpu", fs / "unified/hivectl/web", True), ("io", fs / "unified/hivectl/web", True),
        ("memory", fs / "memory/hivectl/web", False)}
    setup.apply()
    assert not [line for line in setup.log if "not applied" in line], setup.log
    v2, v1 = fs / "unified/hivectl/web", fs / "memory/hivectl/web"
    assert (fs / "unified/hivectl/cgroup.subtree_control").read_text().split() == ["cpu", "io"]
    assert (v2 / "cpu.max").read_text() == "50000 100000\n"
    assert (v2 / "io.max").read_text() == io_line(setup.disk) + "\n"
    assert not (v2 / "memory.max").exists()
    assert (v1 / "memory.limit_in_bytes").read_text() == f"{2 * GIB}\n"
    assert (v2 / "cgroup.procs").read_text() == f"{PID}\n" and (v1 / "cgroup.procs").read_text() == f"{PID}\n"
    report = limits.report(setup.host, setup.ref, PID)
    assert report["memory.limit_in_bytes"] == str(2 * GIB) and report["cpu.max"] == "50000 100000"
    assert "memory.max" not in report
    setup.kernel.exit(PID)
    limits.release_groups(setup.host, setup.ref)
    assert not v2.exists() and not v1.exists()


@pytest.mark.parametrize("wrong", ["cpu.max", "io.max", "memory.max", "procs"])
def test_the_simulated_kernel_refuses_what_the_real_one_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    """Each rule the tests above lean on, shown to refuse: a unit in cpu.max or io.max, a partition in
    io.max, a quota under 1 ms, a pid in a group that distributes to children, a controller its parent
    does not give, a file cgroupfs does not have."""
    setup = Host(tmp_path, monkeypatch, V2_MOUNTS)
    top = setup.root / "sys/fs/cgroup"
    setup.kernel.mount(top, True, {"cpu", "io", "memory"}, {1, PID})
    (top / "a").mkdir()
    group = top / "a"

    def write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    with pytest.raises(FileNotFoundError):
        write(group / "cpu.max", "50000 100000")  # cpu not enabled in the parent: no cpu.max yet
    with pytest.raises(OSError):
        write(group / "cgroup.subtree_control", "+cpu")  # not in a's cgroup.controllers
    write(top / "cgroup.subtree_control", "+cpu +io +memory")
    if wrong == "cpu.max":
        for text in ("50% 100000", "500 100000", "50000 10", "50000 100000 1"):
            with pytest.raises(OSError):
                write(group / "cpu.max", text)
        write(group / "cpu.max", "50000")
        assert (group / "cpu.max").read_text() == "50000 100000\n"
    elif wrong == "io.max":
        for text in (f"{setup.partition} rbps=2", f"{setup.disk} rbps=10M", f"{setup.disk} read_bps=5",
                     f"{setup.disk} wiops=0", f"{setup.disk}"[:-1] + "9 rbps=5"):
            with pytest.raises(OSError):
                write(group / "io.max", text)
        write(group / "io.max", f"{setup.disk} rbps=5")
        write(group / "io.max", f"{setup.disk} wiops=9")
        assert (group / "io.max").read_text() == f"{setup.disk} rbps=5 wbps=max riops=max wiops=9\n"
    elif wrong == "memory.max":
        for name in ("memory.limit_in_bytes", "memory.current"):
            with pytest.raises(OSError):
                write(group / name, "1G")
        write(group / "memory.max", "1G")
        assert (group / "memory.max").read_text() == f"{GIB}\n"
    else:
        write(group / "cgroup.procs", str(PID))
        with pytest.raises(OSError) as busy:
            write(group / "cgroup.subtree_control", "+memory")  # a has a process of its own
        assert busy.value.errno == errno.EBUSY
        (group / "b").mkdir()
        with pytest.raises(OSError) as busy:
            os.rmdir(group)
        assert busy.value.errno == errno.EBUSY
        write(top / "cgroup.procs", str(PID))
        write(group / "cgroup.subtree_control", "+memory")
        with pytest.raises(OSError):
            write(group / "cgroup.procs", str(PID))  # a distributes memory to b now
        assert (group / "b/memory.max").exists() and not (group / "b/cpu.max").exists()


@pytest.mark.parametrize("moved", [False, True], ids=["processes-in-the-top", "processes-moved-to-init"])
def test_a_containers_cgroup_namespace_top_gives_controllers_only_without_processes_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moved: bool) -> None:
    """In a container, /sys/fs/cgroup is the container's own, non-root cgroup: the kernel refuses ``+cpu`` in
    its subtree_control while the container's processes are in it (EBUSY), so the controllers it lists in
    cgroup.controllers cannot reach ``hivectl/NAME``. hivectl says so at once (the host check and the log
    name the controller) instead of failing at cpu.max; once the processes are moved to a child (what
    docker-in-docker's entrypoint does with /init), the limits are applied."""
    from hivectl.drivers import hostchecks

    setup = Host(tmp_path, monkeypatch, V2_MOUNTS)
    top = setup.root / "sys/fs/cgroup"
    kernel = setup.kernel
    hierarchy = kernel.mount(top, True, {"cpu", "io", "memory"}, {1, PID}, namespace_root=True)
    assert (top / "cgroup.type").exists()
    if moved:
        os.mkdir(top / "init")
        for pid in (1, PID):
            fd = os.open(top / "init/cgroup.procs", os.O_WRONLY)
            os.write(fd, str(pid).encode())
            os.close(fd)
        assert hierarchy.procs[top] == set()
    problems = hostchecks._cgroups(setup.host, setup.ref.config())
    setup.apply()
    if moved:
        assert problems == [] and not [line for line in setup.log if "not applied" in line], setup.log
        assert (top / "hivectl/web/cpu.max").read_text() == "50000 100000\n"
        assert (top / "hivectl/web/cgroup.procs").read_text() == f"{PID}\n"
        return
    assert len(problems) == 1 and "cpu and io and memory" in problems[0], problems
    assert setup.log == [f"limit not applied: no cgroup {name} controller on this host"
                         for name in ("cpu", "io", "memory")], setup.log
    assert kernel.writes == [] and not (top / "hivectl").exists()
