"""The migration lock: one migration of a guest at a time, on each end, for the whole of it.

A flock(2) on ``vm_dir/.config/.migrate-NAME.lock``, taken without waiting: a second ``migrate`` of the
same guest (or a second sender landing the same name on a target) is refused at once with one line rather
than queued behind a transfer that may take an hour. The kernel drops the lock when its holder dies, so a
killed migration never leaves the guest locked. The file lives in ``.config``, not in the guest directory,
so that it is not sent along and the receiving end can hold it before the guest exists.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from hivectl.errors import Conflict


@contextlib.contextmanager
def migration_lock(config_dir: Path, name: str, role: str) -> Iterator[None]:
    """Hold ``name``'s migration lock on this host; ``Conflict`` when another migration holds it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / f".migrate-{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise Conflict(f"a migration of {name} is already under way on this host ({path} is locked); "
                               f"this {role} was not started") from None
            raise
        yield
    finally:
        os.close(fd)
