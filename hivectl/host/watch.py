"""Change notification on directories (Linux's inotify(7)), for a cache that must see a change at once.

The daemon's guest list (hivectl/daemon/listcache.py) is valid while nothing it was read from changed.
Asking the files (two stat(2) calls per guest) costs more than the API's whole 10 ms budget at 1,000
guests; asking the kernel costs one read(2) that finds nothing. The kernel queues an event for each entry
created, removed or renamed in a watched directory and for each file in it closed after writing or whose
attributes (mtime included: utimes(2), touch(1)) changed (inotify(7): IN_CREATE, IN_DELETE, IN_MOVED_FROM,
IN_MOVED_TO, IN_CLOSE_WRITE, IN_ATTRIB). Plain IN_MODIFY is not asked for: a running guest's disk image
would queue one per write.

Only Linux is served, through its C library (inotify_init(2), inotify_add_watch(2), inotify_rm_watch(2));
elsewhere ``open_watcher`` returns None and the caller keeps asking the files. FreeBSD's kqueue(2)
EVFILT_VNODE would need an open descriptor per watched directory and file; not built. A watcher is not a
proof of freshness on a network file system (a change made by another NFS client queues nothing here),
which is why its caller also keeps a time limit.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000  # the queue overflowed: events were lost (wd is -1)
IN_IGNORED = 0x00008000  # the watch is gone (its directory was removed, or inotify_rm_watch)
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000

ENTRIES = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO  # a directory's entries changed
SELF = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED  # the directory itself went away
MASK = ENTRIES | SELF | IN_CLOSE_WRITE | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK

_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


class Event:
    """One queued change: in directory ``path`` (None: the queue overflowed), entry ``name`` ("" for the
    directory itself), ``mask`` the IN_* bits."""

    __slots__ = ("mask", "name", "path")

    def __init__(self, path: str | None, name: str, mask: int) -> None:
        self.path = path
        self.name = name
        self.mask = mask

    def __repr__(self) -> str:
        return f"Event({self.path!r}, {self.name!r}, {self.mask:#x})"


class DirWatcher:
    """An inotify instance watching some directories; ``read`` returns what changed since the last call."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = libc.inotify_init()
        if fd < 0:
            raise _os_error("inotify_init", "")
        os.set_inheritable(fd, False)  # no hypervisor or supervisor the daemon starts inherits it
        os.set_blocking(fd, False)
        self._fd = fd
        self._lock = threading.Lock()
        self._paths: dict[int, str] = {}  # wd -> directory
        self._wds: dict[str, int] = {}  # directory -> wd

    def watched(self) -> set[str]:
        with self._lock:
            return set(self._wds)

    def watch(self, path: str) -> None:
        """Watch directory ``path`` (again: harmless); OSError if it is not one or the kernel refuses."""
        with self._lock:
            if path in self._wds:
                return
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), MASK)
            if wd < 0:
                raise _os_error("inotify_add_watch", path)
            self._wds[path] = wd
            self._paths.setdefault(wd, path)  # a second name of a watched directory has the same wd

    def unwatch(self, path: str) -> None:
        with self._lock:
            wd = self._wds.pop(path, None)
            if wd is not None:
                self._paths.pop(wd, None)
                self._libc.inotify_rm_watch(self._fd, wd)  # its IN_IGNORED then names no directory

    def read(self) -> list[Event]:
        """Every event queued since the last call (none: an empty list, at the cost of one read(2))."""
        events: list[Event] = []
        with self._lock:
            while True:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    return events
                offset = 0
                while offset + _HEADER.size <= len(data):
                    wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                    offset += _HEADER.size
                    name = data[offset:offset + length].rstrip(b"\0").decode("utf-8", "surrogateescape")
                    offset += length
                    if mask & IN_Q_OVERFLOW:
                        events.append(Event(None, "", mask))
                        continue
                    path = self._paths.get(wd)
                    if path is None:
                        continue  # a watch removed before its last events were read
                    if mask & IN_IGNORED:
                        del self._paths[wd]
                        self._wds.pop(path, None)
                    events.append(Event(path, name, mask))

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _os_error(call: str, path: str) -> OSError:
    number = ctypes.get_errno()
    return OSError(number, f"{call}: {os.strerror(number)}", path or None)


def open_watcher() -> DirWatcher | None:
    """A new watcher, or None where there is no inotify (not Linux, or the kernel's instance limit,
    /proc/sys/fs/inotify/max_user_instances, is reached): the caller then asks the files instead."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return DirWatcher(ctypes.CDLL(None, use_errno=True))
    except (OSError, AttributeError):  # no such symbol in this C library, or EMFILE/ENOSYS
        return None


