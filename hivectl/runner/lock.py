"""The per-guest run lock: one hypervisor per guest, even when ``start`` races itself.

``NAME/run.lock`` keeps vm-bhyve's format on its first line (the host name, which vm-bhyve and peers on
shared storage read) and adds ``pid=`` (the supervisor) and ``boot=`` (this boot's id). It is created with
O_EXCL, so two starts can never both own it. A lock is stale when it is ours and its owner is gone: the
supervisor is dead *and* the hypervisor it recorded is dead, or the host has rebooted since, or the file
is empty (what a power loss leaves). Checking and clearing a stale lock happens under an flock on a guard
file, so two starts that both find the same stale lock cannot clear each other's fresh one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from hivectl.errors import Conflict
from hivectl.model.layout import LOCK_GUARD, RUN_LOCK
from hivectl.runtime import boot_id, guest_state, hostname
from hivectl.safety import paths


@contextlib.contextmanager
def guarded(directory: Path) -> Iterator[None]:
    """Serialise lock inspection and creation between processes (flock on a guard file)."""
    fd = os.open(directory / LOCK_GUARD, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def acquire(directory: Path, name: str, owner_pid: int | None = None) -> None:
    """Take the lock for ``owner_pid`` (default: this process) or raise ``Conflict`` saying who holds it."""
    with guarded(directory):
        path = directory / RUN_LOCK
        if path.exists():
            state = guest_state(directory, name)
            if state.state == "Locked" and state.stale:
                path.unlink()
            elif state.state == "Locked":
                raise Conflict(f"{name} is locked by host {state.host}; if that host is gone for good, "
                               f"remove {path}")
            else:
                raise Conflict(f"{name} is already {state.label()}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{hostname()}\npid={owner_pid or os.getpid()}\nboot={boot_id()}\n")
            handle.flush()
            os.fsync(handle.fileno())


def take_over(directory: Path, owner_pid: int) -> None:
    """Rewrite our own lock for a new supervisor (adopting a guest whose supervisor died)."""
    with guarded(directory):
        tmp = directory / f".{RUN_LOCK}.{owner_pid}"
        paths.write_file(directory, tmp, f"{hostname()}\npid={owner_pid}\nboot={boot_id()}\n", 0o644)
        os.replace(tmp, directory / RUN_LOCK)


def release(directory: Path) -> None:
    with guarded(directory):
        (directory / RUN_LOCK).unlink(missing_ok=True)
