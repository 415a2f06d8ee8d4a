"""Where a FreeBSD path lives on the simulated host.

Device nodes, firmware and boot files do not exist on a Linux test machine, so paths under ``/dev/``,
``/usr/local/share/`` and ``/boot/`` are looked up below ``$SIMHOST_ROOT`` (the same rule hivectl applies
with ``HIVECTL_HOST_ROOT``). Every other path is a real path on this machine: guest disk images and
directories live in a temporary ``vm_dir`` and must be checked where they really are.
"""

from __future__ import annotations

import os
from pathlib import Path

MAPPED_PREFIXES = ("/dev/", "/usr/local/share/", "/boot/")
MAPPED_DIRS = ("/dev", "/usr/local/share", "/boot")
ROOT_ENV = "SIMHOST_ROOT"


def root() -> Path:
    """The simulated host's root; a stand-in run outside the fixture must not touch the real system."""
    value = os.environ.get(ROOT_ENV)
    if not value:
        import sys

        print("simhost: SIMHOST_ROOT is not set; the FreeBSD stand-ins only run under the simhost fixture",
              file=sys.stderr)
        raise SystemExit(70)
    return Path(value)


def is_mapped(path: str) -> bool:
    """True for FreeBSD system paths that the simulator keeps under its root."""
    return path.startswith(MAPPED_PREFIXES) or path in MAPPED_DIRS


def host_path(path: str) -> str:
    """The path on this machine that stands for the FreeBSD path ``path``."""
    if is_mapped(path):
        return str(root()) + path
    return path


def freebsd_path(local: str) -> str:
    """Inverse of :func:`host_path` for paths below the root (used in messages and records)."""
    base = str(root())
    if local.startswith(base + "/"):
        candidate = local[len(base):]
        if is_mapped(candidate):
            return candidate
    return local


def dev(name: str) -> Path:
    """The stand-in file for ``/dev/<name>``."""
    return root() / "dev" / name


def vmm_node(vmname: str) -> Path:
    """The stand-in for ``/dev/vmm/NAME``; its existence means 'the VM exists in the kernel'."""
    return root() / "dev" / "vmm" / vmname


def control(name: str) -> Path:
    """Control files through which tests and bhyvectl talk to a running bhyve stand-in."""
    return root() / "control" / name
