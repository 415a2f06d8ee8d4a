"""Building a guest out of sight, publishing it with one rename, and collecting what a killed run left.

The names are ``hivectl/model/staging.py``'s; this module holds the plan actions that use them:

- ``MakeStaging`` makes the hidden directory (``mkdir``) or dataset (``zfs create``/``zfs clone``) a new guest
  is built in, and holds an exclusive flock(2) on that directory for as long as the command runs. The lock
  is how a later command tells a leftover (its maker was killed: the kernel dropped the lock) from a build
  in progress (locked): flock(2) on a directory works the same on FreeBSD and Linux.
- ``Publish`` renames the finished staging directory (``zfs rename`` for a dataset) to the guest's name:
  rename(2) is atomic, so the guest appears complete or not at all.
- ``Collect`` removes one leftover staging or tombstone entry that nobody holds, and fails loudly (naming
  what remains) when it cannot: ``destroy`` re-run after a failure finishes the job through it.

A plain rename(2) of a directory may replace an *empty* directory at the target; ``Publish`` checks first
and the rename itself refuses a non-empty one (``ENOTEMPTY``), so it can never replace a guest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
from pathlib import Path

from hivectl.errors import Conflict, HivectlError
from hivectl.host.base import CommandFailed, Host
from hivectl.plan import Action, Run
from hivectl.records import field, record

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on directory ``path``; None if another process holds it."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _zfs_destroy(host: Host, dataset: str) -> None:
    """``zfs destroy -rf``, retried briefly while the dataset reads as busy; an absent dataset is fine."""
    try:
        Run(["zfs", "destroy", "-rf", dataset], retry_when="dataset is busy").apply(host)
    except CommandFailed as error:
        if "does not exist" not in error.result.stderr:
            raise


def _remove_tree(path: Path) -> None:
    """Remove a directory tree (never following a symlink) and raise naming what could not be removed."""
    problems: list[str] = []

    def note(_function: object, failed: str, info: tuple[type[BaseException], BaseException, object]) -> None:
        problems.append(f"{failed}: {getattr(info[1], 'strerror', None) or info[1]}")

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path, onerror=note)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if os.path.lexists(path):
        detail = "; ".join(problems[:3]) or "it is still there"
        raise HivectlError(f"{path} could not be removed: {detail}")


@record
class MakeStaging(Action):
    """Make the hidden place a guest is built in and lock it for the rest of the command.

    ``made_by`` is the ``zfs create``/``zfs clone`` command for a dataset, or empty for a plain directory.
    """

    directory: Path
    dataset: str | None = None
    made_by: list[str] = field(default_factory=list)
    fd: int | None = field(default=None, repr=False)
    _identity: tuple[int, int] | None = field(default=None, repr=False)

    def argv(self) -> list[str]:
        return list(self.made_by) if self.dataset else ["mkdir", "-m", "755", str(self.directory)]

    def apply(self, host: Host) -> None:
        if self.dataset:
            host.run(self.made_by)
        else:
            os.mkdir(self.directory, 0o755)
        self.fd = _lock(self.directory)
        info = os.lstat(self.directory)
        self._identity = (info.st_dev, info.st_ino)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def undo(self, host: Host) -> None:
        self.release()
        if self.dataset:
            _zfs_destroy(host, self.dataset)
        try:
            info = os.lstat(self.directory)
        except FileNotFoundError:
            return
        if self._identity == (info.st_dev, info.st_ino):  # only what this action made, never what replaced it
            _remove_tree(self.directory)


@record
class Publish(Action):
    """Rename a finished staging directory or dataset to the guest's own name (one atomic rename)."""

    staging: MakeStaging | None
    source: Path
    target: Path
    source_dataset: str | None = None
    target_dataset: str | None = None

    def argv(self) -> list[str]:
        if self.source_dataset and self.target_dataset:
            return ["zfs", "rename", self.source_dataset, self.target_dataset]
        return ["mv", str(self.source), str(self.target)]

    def apply(self, host: Host) -> None:
        if os.path.lexists(self.target):
            raise Conflict(f"{self.target} already exists")
        if self.source_dataset and self.target_dataset:
            # zfs rename unmounts and remounts the dataset, which an open fd on its mountpoint (our lock)
            # makes fail with "target is busy" (Linux) / "Device busy" (FreeBSD): let go of the lock first.
            # A collector that slips into that instant destroys a build nobody has published: the rename
            # then fails and the create reports it; no guest is lost.
            if self.staging is not None:
                self.staging.release()
            host.run(self.argv())
        else:
            try:
                os.rename(self.source, self.target)
            except OSError as error:
                if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise Conflict(f"{self.target} already exists") from None
                raise
        if self.staging is not None:
            self.staging.release()

    def undo(self, host: Host) -> None:
        if self.source_dataset and self.target_dataset:
            host.run(["zfs", "rename", self.target_dataset, self.source_dataset], check=False)
        elif not os.path.lexists(self.source):
            os.rename(self.target, self.source)


@record
class Collect(Action):
    """Remove one leftover staging or tombstone entry (and its dataset) unless a live command holds it."""

    path: Path
    dataset: str | None = None

    def argv(self) -> list[str]:
        return ["zfs", "destroy", "-rf", self.dataset] if self.dataset else ["rm", "-R", str(self.path)]

    def apply(self, host: Host) -> None:
        try:
            fd = _lock(self.path)
        except FileNotFoundError:
            return  # someone else collected it
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
                raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # a symlink or file under a hidden name: remove the entry, never its target
            return
        if fd is None:
            return  # a build or removal in progress
        try:
            if self.dataset:
                _zfs_destroy(host, self.dataset)
            _remove_tree(self.path)
        finally:
            os.close(fd)
