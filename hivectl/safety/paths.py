"""Where a path may live, and opening files inside a guest directory without following symlinks.

hivectl runs as root, and a guest directory is filled by things hivectl does not fully control: a backup
being restored, a template, a config edited by hand, the guest's own disk images. A symlink planted there
under the name of a run-time file (``restart``, ``bhyve.log``, ``uefi-vars.fd``) would have root truncate or
append to whatever it points at, such as the guest's disk or a host file. So every file hivectl writes,
truncates or appends to under a guest directory is opened here: an ``openat``-style walk that starts at the
guest directory (which must itself be a real directory) and opens each component with ``O_NOFOLLOW``
(open(2) on FreeBSD and Linux: a symlink as last component fails with ``EMLINK`` or ``ELOOP``), and refuses
anything but a regular file with a single link. Paths that hivectl does not open itself but hands to a
hypervisor (file disks, kernels) are checked with ``confined``: inside the directory, no symlink on the way.

Every refusal is one line naming the path and why, as ``HivectlError`` (or ``ConfigError`` when a config
key named the path).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from hivectl.errors import ConfigError, HivectlError

_SYMLINK_ERRNOS = (errno.ELOOP, errno.EMLINK)  # Linux gives ELOOP, FreeBSD EMLINK for O_NOFOLLOW on a link
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(HivectlError):
    """A path that would lead hivectl outside where it may act (a symlink, a hard link, a device...)."""


def _what(path: Path) -> str:
    """A short description of what sits at ``path`` (for the one-line refusal)."""
    try:
        info = os.lstat(path)
    except OSError:
        return "missing"
    if stat.S_ISLNK(info.st_mode):
        try:
            return f"a symbolic link to {os.readlink(path)}"
        except OSError:
            return "a symbolic link"
    if stat.S_ISDIR(info.st_mode):
        return "a directory"
    if stat.S_ISREG(info.st_mode):
        return "a regular file" if info.st_nlink == 1 else f"a file with {info.st_nlink} hard links"
    return "a device, FIFO or socket"


def real_directory(path: Path, what: str = "guest directory") -> Path:
    """Return ``path`` if it is a real directory (not a symlink to one); refuse otherwise.

    A symlinked guest directory would put every run-time file, and what ``destroy`` removes, outside vm_dir.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise UnsafePath(f"{path}: the {what} does not exist") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{path}: the {what} is {_what(path)}, not a directory; hivectl refuses to use it")
    return path


def is_real_directory(path: Path) -> bool:
    """True when ``path`` is a directory and not a symlink (``list`` skips everything else)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def relative_parts(root: Path, path: Path | str) -> list[str]:
    """The components of ``path`` below ``root`` (``path`` absolute under ``root``, or relative to it).

    Lexical only; ``..``, ``.``, empty names and paths outside ``root`` are refused, so the walk that follows
    can never climb out.
    """
    pure = PurePosixPath(path)
    if pure.is_absolute():
        try:
            pure = pure.relative_to(PurePosixPath(root))
        except ValueError:
            raise UnsafePath(f"{path}: not inside {root}") from None
    parts = list(pure.parts)
    if not parts or any(p in ("", ".", "..") for p in parts) or "\0" in str(path):
        raise UnsafePath(f"{path}: not a plain path inside {root}")
    return parts


def _refusal(root: Path, parts: list[str], error: OSError) -> UnsafePath:
    here = root.joinpath(*parts)
    return UnsafePath(f"{here}: refusing to open it: it is {_what(here)} (hivectl never follows links in a "
                      "guest directory)")


def open_dir(root: Path, parts: list[str] | None = None) -> int:
    """A descriptor of ``root`` (a real directory) or of a real subdirectory of it; the caller closes it."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as error:
        if error.errno in (*_SYMLINK_ERRNOS, errno.ENOTDIR):
            raise UnsafePath(f"{root}: is {_what(root)}, not a real directory; hivectl refuses to use it") from None
        raise UnsafePath(f"{root}: cannot open: {error.strerror}") from None
    for index, part in enumerate(parts or []):
        try:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as error:
            os.close(fd)
            if error.errno in (*_SYMLINK_ERRNOS, errno.ENOTDIR):
                raise _refusal(root, (parts or [])[: index + 1], error) from None
            raise
        os.close(fd)
        fd = next_fd
    return fd


def open_file(root: Path, path: Path | str, *, write: bool = False, append: bool = False, truncate: bool = False,
              create: bool = False, exclusive: bool = False, mode: int = 0o600) -> int:
    """Open a regular file inside ``root`` without following any symlink; return the descriptor.

    Refused: a symlink anywhere below ``root`` (or ``root`` itself), anything that is not a regular file
    (a FIFO would block, a device would be written to) and, for writing, a file with more than one hard link
    (it may be a host file linked in).
    """
    parts = relative_parts(root, path)
    flags = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if write or append or truncate:
        flags |= os.O_WRONLY
    else:
        flags |= os.O_RDONLY
    flags |= (os.O_APPEND if append else 0) | (os.O_CREAT if create or exclusive else 0)
    flags |= os.O_EXCL if exclusive else 0
    dir_fd = open_dir(root, parts[:-1])
    try:
        try:
            fd = os.open(parts[-1], flags, mode, dir_fd=dir_fd)
        except OSError as error:
            if error.errno in (*_SYMLINK_ERRNOS, errno.ENXIO):
                raise _refusal(root, parts, error) from None
            raise
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (flags & os.O_WRONLY and info.st_nlink > 1):
            raise _refusal(root, parts, OSError(errno.EPERM, "not a plain file"))
        if truncate:
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_file(root: Path, path: Path | str, data: bytes | str, mode: int = 0o644, *, append: bool = False) -> None:
    """Write (truncate, or append to) a small file inside ``root`` through ``open_file``'s checks."""
    raw = data.encode("utf-8", errors="surrogateescape") if isinstance(data, str) else data
    fd = open_file(root, path, write=True, append=append, truncate=not append, create=True, mode=mode)
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def read_bytes(root: Path, path: Path | str, limit: int = 1 << 20) -> bytes:
    """Read a small file inside ``root`` (at most ``limit`` bytes) without following symlinks."""
    fd = open_file(root, path)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def unlink(root: Path, path: Path | str) -> bool:
    """Remove a file inside ``root`` (the link itself if it is one); True when something was removed."""
    parts = relative_parts(root, path)
    try:
        dir_fd = open_dir(root, parts[:-1])
    except (UnsafePath, FileNotFoundError):
        return False
    try:
        os.unlink(parts[-1], dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(dir_fd)


def confined(root: Path, path: Path | str, *, source: str | Path | None, key: str, value: str,
             must_exist: bool = False, kinds: str = "file") -> Path:
    """Check a path that a config names and a hypervisor will open: inside ``root``, no symlink on the way.

    ``kinds`` is ``file`` (a regular file), ``dir`` or ``any`` for what the last component may be when it
    exists. Returns the absolute path. Raises ``ConfigError`` naming the file, the key and the value.
    """
    try:
        parts = relative_parts(root, path)
    except UnsafePath:
        raise ConfigError(source, key, value, f"must name a file inside {root} (no '..', no absolute path "
                                              "elsewhere)") from None
    here = root
    for index, part in enumerate(parts):
        here = here / part
        try:
            info = os.lstat(here)
        except FileNotFoundError:
            if must_exist:
                raise ConfigError(source, key, value, f"{here} does not exist") from None
            return root.joinpath(*parts)
        except OSError as error:
            raise ConfigError(source, key, value, f"{here}: {error.strerror}") from None
        last = index == len(parts) - 1
        if stat.S_ISLNK(info.st_mode):
            raise ConfigError(source, key, value, f"{here} is {_what(here)}; hivectl refuses links inside the guest "
                                                  "directory (they could point at a host file)")
        if not last and not stat.S_ISDIR(info.st_mode):
            raise ConfigError(source, key, value, f"{here} is not a directory")
        if last and kinds == "file" and not stat.S_ISREG(info.st_mode):
            raise ConfigError(source, key, value, f"{here} is {_what(here)}, not a regular file")
        if last and kinds == "dir" and not stat.S_ISDIR(info.st_mode):
            raise ConfigError(source, key, value, f"{here} is {_what(here)}, not a directory")
    return root.joinpath(*parts)


def existing_file(root: Path, path: Path | str) -> bool:
    """True if ``path`` (inside ``root``) is a plain regular file, False if it is missing; refuse anything else.

    For files hivectl makes once and then hands to a hypervisor (``uefi-vars.fd``): a symlink planted under
    that name would have bhyve or QEMU write the guest's variables into whatever it points at.
    """
    parts = relative_parts(root, path)
    try:
        fd = open_file(root, path)
    except FileNotFoundError:
        return False
    except UnsafePath:
        raise
    except OSError as error:
        raise UnsafePath(f"{root.joinpath(*parts)}: {error.strerror}") from None
    os.close(fd)
    return True
