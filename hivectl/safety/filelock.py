"""One lock per config file that hivectl reads, changes and writes back (issue 10, "concurrent edits").

Every edit of ``system.conf``, a guest's ``NAME.conf`` or the settings file that holds ``vm_list`` is a
read-modify-write: two commands that read the same text and each write back their own change lose one
of the changes. ``locked(path)`` serialises them: it is held across the read, the re-check and the write.

Why these choices:

- The lock is a *sibling* file, ``.NAME.lock`` next to ``NAME`` (``.web.conf.lock``, ``.system.conf.lock``,
  ``.rc.conf.lock``), never the config itself: configs are replaced by ``rename(2)`` (see
  ``hivectl.rcfile.atomic_write``), and a lock held on the old inode would not exclude a process that
  opened the new one.
- ``flock(2)`` is used: FreeBSD and Linux both implement it on local file systems and ZFS, it belongs to
  the open file description (so it is released when the process dies, even by ``kill -9``: no stale
  lock to clean up), and unlike ``fcntl``/``lockf`` record locks it is not dropped when *another*
  descriptor of the same file is closed in the same process (flock(2), fcntl(2) "BUGS" in the FreeBSD
  and Linux manual pages).
- The lock file is opened with ``O_NOFOLLOW`` and ``O_NONBLOCK`` and must be a regular file: a symlink
  or FIFO planted under the lock's name is refused instead of being created through or blocking.
- Re-entrant within one thread (a plan may edit the same file in two steps): a second ``locked`` on
  the same path reuses the held lock instead of deadlocking on its own ``flock``.
- Waiting is bounded (``TIMEOUT`` seconds): an edit holds the lock for milliseconds, so a lock held for
  longer means a stuck process, and the command says so instead of hanging.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from hivectl.errors import Conflict, HivectlError

TIMEOUT = 60.0
# lock path -> (fd, depth) for the locks this *thread* holds. Per thread, not per process: hivectld runs
# operations on worker threads, and a lock held by one thread must exclude the others as it excludes other
# processes (re-entry is for one plan editing the same file twice, which is always one thread).
_local = threading.local()


def _held_locks() -> dict[str, tuple[int, int]]:
    held: dict[str, tuple[int, int]] | None = getattr(_local, "held", None)
    if held is None:
        held = _local.held = {}
    return held


def lock_name(name: str) -> str:
    """The name of the lock file of the file called ``name``: ``.NAME.lock``."""
    return f".{name}.lock"


def lock_path(path: Path) -> Path:
    """The sibling lock file of ``path``: ``DIR/.NAME.lock``."""
    return path.parent / lock_name(path.name)


def _open(lock: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags, 0o600)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):
            raise HivectlError(f"{lock}: the lock file is a symbolic link; refusing to follow it "
                               "(remove it: hivectl recreates it)") from None
        raise HivectlError(f"{lock}: cannot open the lock file: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HivectlError(f"{lock}: the lock file is not a regular file; remove it (hivectl recreates it)")
    return fd


@contextlib.contextmanager
def locked(path: Path, timeout: float = TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (a config file) for the duration of the ``with`` block."""
    lock = lock_path(path)
    key = os.path.abspath(lock)
    _held = _held_locks()
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    fd = _open(lock)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Conflict(f"{path} is being edited by another hivectl (lock {lock} held for more "
                                   f"than {timeout:g} s); nothing was written, try again") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        _held[key] = (fd, 1)
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # closing the only descriptor releases the flock
