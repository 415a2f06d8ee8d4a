"""Where a guest's cgroups are on this Linux host: cgroup v2 where the unified hierarchy offers a controller,
else that controller's cgroup v1 hierarchy (Documentation/admin-guide/cgroup-v2.rst, "Controllers", and
cgroup-v1/cgroups.rst). Read from ``/proc/self/mounts`` and each hierarchy's own files under the host root,
so tests can lay out a host of either kind; hivectl/runner/limits.py writes the limits, the QEMU host
checks ask which controllers are missing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hivectl.records import record

GROUP = "hivectl"
V2_CONTROLLERS = {"cpu": "cpu", "io": "io", "memory": "memory"}
V1_CONTROLLERS = {"cpu": "cpu", "io": "blkio", "memory": "memory"}


@record(frozen=True)
class Group:
    """One controller's group for a guest: its directory and whether it is cgroup v2."""

    controller: str  # our name: cpu, io, memory
    path: Path
    v2: bool


def _mounts(root: Path) -> list[tuple[str, str, list[str]]]:
    try:
        text = (root / "proc/self/mounts").read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            found.append((parts[2], parts[1].replace("\\040", " "), parts[3].split(",")))
    return found


def _on_host(root: Path, mountpoint: str) -> Path:
    return Path(str(root).rstrip("/") + mountpoint) if str(root) != "/" else Path(mountpoint)


def _givable(top: Path, offered: set[str]) -> set[str]:
    """The controllers of ``offered`` that the hierarchy's top can give to ``hivectl/NAME``.

    The true root cgroup may enable any of them in its ``cgroup.subtree_control``. The top of a cgroup
    namespace (a container's ``/sys/fs/cgroup``) is a non-root cgroup (it has ``cgroup.type``, which the root
    lacks) and usually holds the container's processes: cgroup-v2.rst's "no internal processes" rule makes
    the kernel refuse ``+cpu`` there (EBUSY), so only what it already enables reaches a child. Counting the
    rest as offered made the host check pass and every limit fail later at the write of cpu.max (ENOENT).
    """
    with contextlib.suppress(OSError):
        if (top / "cgroup.type").exists() and (top / "cgroup.procs").read_text().split():
            return offered & set((top / "cgroup.subtree_control").read_text().split())
    return offered


def groups(root: Path, name: str, wanted: set[str]) -> tuple[list[Group], list[str]]:
    """Where each wanted controller's group of guest ``name`` is (v2 first), and the controllers missing."""
    mounts = _mounts(root)
    v2_root: Path | None = None
    offered: set[str] = set()
    for kind, point, _opts in mounts:
        if kind == "cgroup2":
            with contextlib.suppress(OSError):
                here = _on_host(root, point)
                offered = _givable(here, set((here / "cgroup.controllers").read_text().split()))
                v2_root = here
                if offered:
                    break
    found: list[Group] = []
    missing: list[str] = []
    for controller in sorted(wanted):
        if v2_root is not None and V2_CONTROLLERS[controller] in offered:
            found.append(Group(controller, v2_root / GROUP / name, True))
            continue
        v1 = next((_on_host(root, point) for kind, point, opts in mounts
                   if kind == "cgroup" and V1_CONTROLLERS[controller] in opts), None)
        if v1 is None:
            missing.append(controller)
        else:
            found.append(Group(controller, v1 / GROUP / name, False))
    return found, missing
