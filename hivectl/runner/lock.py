"""The per-guest run lock: one hypervisor per guest, even when ``start`` races itself.

``NAME/run.lock`` keeps vm-bhyve's format on its first line (the host name, which vm-bhyve and peers on
shared storage read) and adds ``pid=`` (the supervisor), ``start=`` (its start time, so a reused pid is
not mistaken for it: ``hivectl/host/identity.py``) and ``boot=`` (this boot's id). It is created with
O_EXCL, so two starts can never both own it. A lock is stale when it is ours and its owner is gone: the
supervisor is dead *and* the hypervisor it recorded is dead, or the host has rebooted since, or the file
is empty (what a power loss leaves). Checking, clearing, taking over and releasing a lock all happen
under an flock on a guard file and re-read the lock there, so two starts that both find the same stale
lock cannot clear each other's fresh one, only one of several adopting supervisors takes the lock over,
and nobody removes a lock that another run holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from hivectl.errors import Conflict
from hivectl.host import identity
from hivectl.model.layout import LOCK_GUARD, RUN_LOCK
from hivectl.runtime import Lock, boot_id, guest_state, hostname, read_lock, supervisor_alive
from hivectl.safety import paths


def lock_text(owner_pid: int) -> str:
    """The lock's lines for supervisor ``owner_pid``: host, pid, the pid's start time, boot id."""
    me = identity.identify(owner_pid)
    start = me.start if me is not None else ""
    return f"{hostname()}\npid={owner_pid}\nstart={start}\nboot={boot_id()}\n"


@contextlib.contextmanager
def guarded(directory: Path) -> Iterator[None]:
    """Serialise lock inspection and creation between processes (flock on a guard file)."""
    fd = os.open(directory / LOCK_GUARD, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def acquire(directory: Path, name: str, owner_pid: int | None = None,
            on_stale: Callable[[Lock], None] | None = None) -> None:
    """Take the lock for ``owner_pid`` (default: this process) or raise ``Conflict`` saying who holds it.

    A stale lock of ours is cleared, after ``on_stale`` (still under the guard) has torn down what that
    run recorded; an exception from ``on_stale`` leaves the lock in place.
    """
    with guarded(directory):
        path = directory / RUN_LOCK
        if path.exists():
            state = guest_state(directory, name)
            if state.stale:
                old = read_lock(directory)
                if on_stale is not None and old is not None:
                    on_stale(old)
                path.unlink()
            elif state.state == "Locked":
                raise Conflict(f"{name} is locked by host {state.host}; if that host is gone for good, "
                               f"remove {path}")
            else:
                raise Conflict(f"{name} is already {state.label()}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(lock_text(owner_pid or os.getpid()))
            handle.flush()
            os.fsync(handle.fileno())


def take_over(directory: Path, name: str, owner_pid: int, check: Callable[[], None] | None = None) -> None:
    """Rewrite our own lock for a new supervisor (adopting a guest whose supervisor died), exactly once.

    Under the guard the lock is read again: if its supervisor is alive (another adopter got there first)
    or the lock is gone or not ours, ``Conflict``; ``check`` (also under the guard) may refuse too. The
    new lock is written to an unpredictable temporary name (opened without following symlinks, through
    ``paths``) and renamed over the old one.
    """
    with guarded(directory):
        current = read_lock(directory)
        if current is None:
            raise Conflict(f"{name} stopped before it could be adopted")
        if not current.local:
            raise Conflict(f"{name} is locked by host {current.host}")
        if supervisor_alive(current):
            raise Conflict(f"{name} is already running (supervised by pid {current.pid})")
        if check is not None:
            check()
        tmp = directory / f".{RUN_LOCK}.{os.urandom(8).hex()}"
        paths.write_file(directory, tmp, lock_text(owner_pid), 0o644)
        os.replace(tmp, directory / RUN_LOCK)


def release(directory: Path, owner_pid: int | None = None) -> bool:
    """Remove the lock if it is still the one of supervisor ``owner_pid`` (default: this process) or a
    lock nobody runs under any more; a lock another live run holds is left alone. True if removed."""
    owner = owner_pid or os.getpid()
    with guarded(directory):
        current = read_lock(directory)
        if current is None:
            return False
        if current.pid != owner and current.local and supervisor_alive(current):
            return False
        (directory / RUN_LOCK).unlink(missing_ok=True)
        return True
