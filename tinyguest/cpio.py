"""A writer (and a small reader) for the cpio "newc" format that Linux unpacks as an initramfs.

Why in Python and not ``cpio -o``: ``cpio`` is not installed on a stock Debian, and building the archive
ourselves lets us add device nodes (``/dev/console``) without being root or calling ``mknod``, fix every
timestamp and owner (so the same inputs give the same bytes), and never touch the host file system.

Format (see the kernel's ``Documentation/driver-api/early-userspace/buffer-format.rst``): each entry is
a 110-byte ASCII header ``070701`` + 13 eight-digit hex fields, the NUL-terminated name padded to a
multiple of 4 bytes, then the data padded to a multiple of 4. The archive ends with ``TRAILER!!!``.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110


def _pad4(n: int) -> int:
    """Bytes of padding that bring ``n`` up to a multiple of four (newc aligns names and data to 4)."""
    return (4 - n % 4) % 4


@dataclass(frozen=True)
class Entry:
    """One archive member as read back by :func:`iter_newc` (used by tests and for sanity checks)."""

    name: str
    mode: int
    data: bytes
    rdev: tuple[int, int] = (0, 0)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


class NewcWriter:
    """Streams newc entries into a binary file object.

    Parent directories are added automatically the first time a path below them is written, because
    the kernel's unpacker does not create missing parents and silently drops such members.
    """

    def __init__(self, out: BinaryIO, *, mtime: int = 0) -> None:
        self._out = out
        self._mtime = mtime
        self._ino = 0
        self._seen: set[str] = set()
        self._finished = False

    def _header(self, name: str, mode: int, size: int, nlink: int, rdev: tuple[int, int]) -> bytes:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, self._mtime, size, 0, 0, rdev[0], rdev[1], len(encoded), 0)
        head = MAGIC + b"".join(b"%08X" % f for f in fields) + encoded
        return head + b"\0" * _pad4(len(head))

    def _write(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        if self._finished:
            raise ValueError("archive already finished")
        name = self._normalise(name)
        if name in self._seen and not stat.S_ISDIR(mode):
            raise ValueError(f"duplicate cpio member {name!r}")
        if name in self._seen:
            return
        self._ensure_parents(name)
        self._seen.add(name)
        nlink = 2 if stat.S_ISDIR(mode) else 1
        self._out.write(self._header(name, mode, len(data), nlink, rdev))
        if data:
            self._out.write(data)
            self._out.write(b"\0" * _pad4(len(data)))

    @staticmethod
    def _normalise(name: str) -> str:
        """Members are stored relative ("bin/sh", not "/bin/sh"), as ``find . | cpio`` would, minus "./"."""
        name = name.strip("/")
        while name.startswith("./"):
            name = name[2:]
        if not name or ".." in name.split("/"):
            raise ValueError(f"bad cpio member name {name!r}")
        return name

    def _ensure_parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self._seen:
                self._write(parent, stat.S_IFDIR | 0o755)

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self._write(name, stat.S_IFDIR | mode)

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._write(name, stat.S_IFREG | mode, data)

    def add_symlink(self, name: str, target: str) -> None:
        self._write(name, stat.S_IFLNK | 0o777, target.encode())

    def add_char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._write(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> None:
        """Write the trailer; without it the kernel rejects the archive ("junk in compressed archive")."""
        if not self._finished:
            self._out.write(self._header(TRAILER, 0, 0, 1, (0, 0)))
            self._finished = True


def iter_newc(data: bytes) -> Iterator[Entry]:
    """Parse one newc archive (uncompressed) and yield its members, stopping at the trailer."""
    pos = 0
    while True:
        head = data[pos : pos + _HEADER_LEN]
        if len(head) < _HEADER_LEN or head[:6] != MAGIC:
            raise ValueError(f"bad newc header at offset {pos}")
        fields = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_start = pos + _HEADER_LEN
        name = data[name_start : name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += _pad4(pos)
        if name == TRAILER:
            return
        body = data[pos : pos + size]
        pos += size + _pad4(size)
        yield Entry(name=name, mode=mode, data=body, rdev=(rmaj, rmin))
