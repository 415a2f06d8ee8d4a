"""Putting a guest's limits (hivectl/model/limits.py) on its hypervisor process, and taking them off.

FreeBSD: vm-bhyve's ``rctl::set`` (``lib/vm-rctl``) adds one rctl(8) rule per limit on the bhyve pid once
bhyve runs (``rctl -a process:PID:pcpu:deny=50`` ...); hivectl does it right after the spawn of every boot
instead of a second later from a background job. The kernel drops a process's rules when it exits (racct(9)
keeps them with the process), so a reboot's new bhyve gets new rules and nothing outlives the guest; the
run's tear-down still removes the rules of a hypervisor that is alive when it runs (``release``: a stale
run cleared before ``bhyvectl --destroy``). A guest in a jail of its own (``jail="auto"``, docs/jails.md)
has the same rules on its jail instead (``jail:hivectl-NAME:...``, made with the jail and removed by name in
its recorded tear-down, since the kernel keeps a jail subject's rules after the jail is gone). Unlike
vm-bhyve, whose log lines for the I/O limits never reached the log (they lack the guest argument), each
rule applied or refused is logged.

Linux: the same numbers as cgroup limits on the QEMU process, in ``hivectl/NAME`` below each controller's
hierarchy: cgroup v2 where the unified hierarchy offers the controller (``cpu.max``, ``io.max``,
``memory.max``; Documentation/admin-guide/cgroup-v2.rst), else cgroup v1 (``cpu.cfs_quota_us``,
``blkio.throttle.*_device``, ``memory.limit_in_bytes``; Documentation/admin-guide/cgroup-v1/). I/O limits
name block devices: those holding the guest's disks (the whole disk for a partition: the kernel's
throttling is per disk). The group is removed when the run is torn down (``release``), so a supervisor
killed with SIGKILL leaves nothing once its stale run is cleared.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from hivectl.host import identity
from hivectl.host.base import Host
from hivectl.host.cgroups import V2_CONTROLLERS, Group, groups
from hivectl.model.guest import GuestConfig
from hivectl.model.limits import Limits, rctl_rules
from hivectl.model.limits import of as limits_of
from hivectl.store import GuestRef

CPU_PERIOD = 100000  # microseconds: the default period of CFS bandwidth control (cpu.max, cpu.cfs_period_us)

Log = Callable[[str], None]


def of(config: GuestConfig) -> Limits:
    return limits_of(config.values, config.path)


# -- FreeBSD: rctl ---------------------------------------------------------------------------------------
def rctl_apply(host: Host, limits: Limits, pid: int, log: Log) -> None:
    """``rctl -a`` each rule; a refusal is logged and the guest runs on, as vm-bhyve's does."""
    for rule in rctl_rules(limits, pid):
        result = host.run(["rctl", "-a", rule], check=False)
        if result.status == 0:
            log(f"limit applied: rctl -a {rule}")
        else:
            log(f"limit not applied: rctl -a {rule}: {(result.stderr or result.stdout).strip()}")


def rctl_usage(host: Host, subject: str) -> dict[str, str]:
    """``rctl -u process:PID`` (or ``jail:NAME``): the resources the hypervisor (or the guest's jail, the
    loader and bhyve in it) uses now (``resource=amount`` lines)."""
    result = host.run(["rctl", "-u", subject], check=False)
    if result.status != 0:
        return {}
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def rctl_rules_of(host: Host, subject: str) -> list[str]:
    """The rules in force on a subject (``rctl process:PID``, ``rctl jail:NAME``)."""
    result = host.run(["rctl", subject], check=False)
    return [line for line in result.stdout.splitlines() if line.strip()] if result.status == 0 else []


# -- Linux: cgroups --------------------------------------------------------------------------------------
def wanted_controllers(limits: Limits) -> set[str]:
    wanted = set()
    if limits.pcpu is not None:
        wanted.add("cpu")
    if limits.io():
        wanted.add("io")
    if limits.memory is not None:
        wanted.add("memory")
    return wanted


def block_devices(root: Path, paths: list[str]) -> tuple[list[str], list[str]]:
    """``MAJ:MIN`` of the whole disks holding ``paths`` (a block device itself, or the file system's disk);
    and the paths on no block device (tmpfs, overlay: nothing there to throttle)."""
    found: list[str] = []
    none: list[str] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            none.append(path)
            continue
        dev = st.st_rdev if stat.S_ISBLK(st.st_mode) else st.st_dev
        number = f"{os.major(dev)}:{os.minor(dev)}"
        sys_dir = root / "sys/dev/block" / number
        if not sys_dir.exists():
            none.append(path)
            continue
        if (sys_dir / "partition").exists():  # throttling is per disk: the partition's parent
            with contextlib.suppress(OSError):
                number = (sys_dir.resolve().parent / "dev").read_text().strip()
        if number not in found:
            found.append(number)
    return found, none


def _disk_paths(ref: GuestRef, config: GuestConfig) -> list[str]:
    paths = []
    for disk in config.disks:
        if disk.backing.share or disk.is_cd:
            continue
        with contextlib.suppress(LookupError):
            paths.append(ref.layout.disk_path(disk.dev, disk.name))
    return paths


def _settings(group: Group, limits: Limits, devices: list[str]) -> list[tuple[str, str]]:
    """The files to write in one group and what, in order."""
    if group.controller == "cpu":
        quota = (limits.pcpu or 0) * CPU_PERIOD // 100
        if group.v2:
            return [("cpu.max", f"{quota} {CPU_PERIOD}")]
        return [("cpu.cfs_period_us", str(CPU_PERIOD)), ("cpu.cfs_quota_us", str(quota))]
    if group.controller == "memory":
        return [("memory.max" if group.v2 else "memory.limit_in_bytes", str(limits.memory))]
    pairs = [("rbps", limits.rbps, "read_bps"), ("wbps", limits.wbps, "write_bps"),
             ("riops", limits.riops, "read_iops"), ("wiops", limits.wiops, "write_iops")]
    out: list[tuple[str, str]] = []
    for device in devices:
        if group.v2:
            words = " ".join(f"{key}={value}" for key, value, _ in pairs if value is not None)
            out.append(("io.max", f"{device} {words}"))
        else:
            out += [(f"blkio.throttle.{v1}_device", f"{device} {value}") for _, value, v1 in pairs if value is not None]
    return out


def _write(path: Path, text: str) -> None:
    """One write(2) of a control file (cgroup files take a whole value per write; no temp file and rename:
    cgroupfs has no such thing)."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _enable_v2(group: Group) -> None:
    """cgroup v2 gives a child a controller only if each parent lists it in ``cgroup.subtree_control``."""
    for parent in (group.path.parent.parent, group.path.parent):
        with contextlib.suppress(OSError):
            _write(parent / "cgroup.subtree_control", f"+{V2_CONTROLLERS[group.controller]}")


def cgroup_apply(host: Host, ref: GuestRef, config: GuestConfig, limits: Limits, pid: int, log: Log) -> None:
    """Make (or reuse) the guest's groups, write the limits, move ``pid`` in; each failure logged."""
    found, missing = groups(host.root, ref.name, wanted_controllers(limits))
    for controller in missing:
        log(f"limit not applied: no cgroup {controller} controller on this host")
    devices: list[str] = []
    if limits.io():
        devices, none = block_devices(host.root, _disk_paths(ref, config))
        for path in none:
            log(f"I/O limit not applied to {path}: it is on no block device")
    for group in found:
        try:
            group.path.mkdir(parents=True, exist_ok=True)
            if group.v2:
                _enable_v2(group)
            for name, text in _settings(group, limits, devices):
                _write(group.path / name, text)
                log(f"limit applied: {group.path / name} = {text}")
            _write(group.path / "cgroup.procs", str(pid))
        except OSError as error:
            log(f"limit not applied in {group.path}: {error}")


def cgroup_release(host: Host, name: str) -> None:
    """Remove the guest's groups (empty once its hypervisor exited; rmdir(2) is how a cgroup goes)."""
    found, _ = groups(host.root, name, set(V2_CONTROLLERS))
    for group in found:
        with contextlib.suppress(OSError):
            group.path.rmdir()


def cgroup_report(host: Host, name: str) -> dict[str, str]:
    """The limits in force and the usage, from the guest's groups' files."""
    found, _ = groups(host.root, name, set(V2_CONTROLLERS))
    files = {"cpu": ["cpu.max", "cpu.stat", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.stat"],
             "io": ["io.max", "io.stat", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                    "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device",
                    "blkio.throttle.io_service_bytes"],
             "memory": ["memory.max", "memory.current", "memory.limit_in_bytes", "memory.usage_in_bytes"]}
    out: dict[str, str] = {}
    for group in found:
        for file in dict.fromkeys(files[group.controller]):
            with contextlib.suppress(OSError):
                text = (group.path / file).read_text().strip()
                if text:
                    out[file] = " ".join(text.split()) if len(text) < 200 else " ".join(text.split()[:12])
    return out


def planned(config: GuestConfig, hypervisor: list[str]) -> list[list[str]]:
    """What ``start --dry-run`` shows after a bhyve line: the ``rctl -a`` of each limit, ``<pid>`` standing for
    the pid bhyve will have. (The Linux cgroup writes are file writes, listed in the log when made.)"""
    program = hypervisor[2:] if len(hypervisor) > 2 and Path(hypervisor[0]).name == "jexec" else hypervisor
    if not program or Path(program[0]).name != "bhyve":  # (jexec JAIL bhyve ...: a jailed guest, docs/jails.md)
        return []
    if on_jail(config):
        return []  # jail="auto": the jail's own rules, planned with the jail (rctl -a jail:hivectl-NAME:...)
    try:
        limits = of(config)
    except Exception:
        return []
    return [["rctl", "-a", rule.replace(f"process:{PID}:", "process:<pid>:")] for rule in rctl_rules(limits, PID)]


PID = 0  # rendered as <pid> by ``planned``


def on_jail(config: GuestConfig) -> bool:
    """Whether the limits are rules on the guest's own jail (``jail="auto"``, ``jail:hivectl-NAME``) rather
    than on its bhyve process (no jail, or an administrator's jail that may run other things)."""
    return config.get("jail") == "auto"


def jail_subject(config: GuestConfig) -> str:
    return f"jail:hivectl-{config.name}"


# -- both ------------------------------------------------------------------------------------------------
def apply(host: Host, ref: GuestRef, config: GuestConfig, pid: int, log: Log) -> None:
    """After each hypervisor spawn: its limits, if the config sets any (the supervisor calls this)."""
    try:
        limits = of(config)
    except Exception as error:  # checked at start already; a config edited since is logged, not fatal
        log(f"limits not applied: {error}")
        return
    if not limits.any():
        return
    if host.platform == "freebsd":
        if on_jail(config):
            return  # the rules are the jail's, made with it (drivers/bhyve/jail.py, JailLimit)
        rctl_apply(host, limits, pid, log)
    else:
        cgroup_apply(host, ref, config, limits, pid, log)


def release_rules(host: Host, ref: GuestRef, pid: object, start: object) -> None:
    """At a run's tear-down, before the VM is destroyed: the rctl rules of a hypervisor still alive (by its
    recorded identity). Nothing is asked of rctl for a guest with no limits or a pid that is gone."""
    if host.platform != "freebsd" or not isinstance(pid, int) or not identity.matches(pid, start):
        return
    try:
        wanted = of(ref.config()).any()
    except Exception:  # an unreadable config: remove whatever the process has, to be sure
        wanted = True
    if wanted:
        host.run(["rctl", "-r", f"process:{pid}"], check=False)


def release_groups(host: Host, ref: GuestRef) -> None:
    """At a run's tear-down, once the hypervisor is gone: on Linux, the guest's cgroups."""
    if host.platform != "freebsd":
        cgroup_release(host, ref.name)


def report(host: Host, ref: GuestRef, pid: int | None) -> dict[str, str]:
    """What ``info`` shows: ``rctl process:PID`` rules and ``rctl -u`` usage, or the cgroup files."""
    if host.platform == "freebsd":
        if not pid:
            return {}
        subject = f"process:{pid}"
        with contextlib.suppress(Exception):
            config = ref.config()
            subject = jail_subject(config) if on_jail(config) else subject
        out = {"rule " + str(n + 1): rule for n, rule in enumerate(rctl_rules_of(host, subject))}
        usage = rctl_usage(host, subject)
        out.update({k: usage[k] for k in ("pcpu", "cputime", "memoryuse", "vmemoryuse", "readbps", "writebps",
                                          "readiops", "writeiops") if k in usage})
        return out
    return cgroup_report(host, ref.name)
