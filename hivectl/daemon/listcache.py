"""A cache of the guest list for ``GET /1.0/guests``, valid while nothing it was read from has changed.

``list`` reads every guest's config and run-time files (hivectl/ops/listing.py): about 30 ms for 1,000
guests on an idle machine, three times the API's 10 ms target (issue 11). The daemon lives long, so it
keeps the last answer (already rendered as the response's bytes) while nothing it depends on changed: the
system.conf (datastores), every datastore directory's entries, and each guest directory's entries and its
config file. The CLI and the supervisors change those by writing or renaming files in them (config edits
are atomic renames, run.lock and the supervisor's state are created and removed in the guest's
directory), so any change they make is seen by the next request. Two ways to see it:

* on Linux the kernel says so (``hivectl.host.watch``, inotify(7)): the directories are watched before
  they are read, and a request that finds no event queued costs one read(2), whatever the number of
  guests;
* elsewhere (or when the kernel refuses more watches) a fingerprint of the same things, by modification
  time, size and inode: two stat(2) calls per guest (``fingerprint``).

What no file records (a hypervisor killed with SIGKILL before its supervisor could clean up) is seen
within ``TTL`` seconds, after which the list is read again. So that no request waits for that periodic
read while clients keep asking, a request that finds its answer older than half the ``TTL`` has it read
again on a thread of its own; the answer served is never older than ``TTL``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hivectl.host import watch

log = logging.getLogger("hivectld.listcache")

TTL = 1.0  # seconds an unchanged answer is trusted

Roots = Callable[[], list[str]]  # the datastores' directories, as they are now
Render = Callable[[], bytes]


def _stat(name: str, dir_fd: int) -> tuple[int, int, int] | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def fingerprint(config_dir: Path, datastores: list[str]) -> tuple[Any, ...]:
    """What a guest list depends on, as it is now (see the module docstring): each name is looked up
    relative to its datastore's open directory, not through its whole path."""
    try:
        st = os.stat(config_dir / "system.conf")
        parts: list[Any] = [(st.st_mtime_ns, st.st_size, st.st_ino)]
    except OSError:
        parts = [None]
    for root in datastores:
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            parts.append((root, None))
            continue
        try:
            st = os.fstat(fd)
            parts.append((root, (st.st_mtime_ns, st.st_size, st.st_ino)))
            entries = sorted(e.name for e in os.scandir(fd) if e.is_dir(follow_symlinks=False))
            for name in entries:
                parts.append((name, _stat(name, fd), _stat(f"{name}/{name}.conf", fd)))
        finally:
            os.close(fd)
    return tuple(parts)


class _Entry:
    __slots__ = ("body", "made", "stamp")

    def __init__(self, stamp: Any, made: float, body: bytes) -> None:
        self.stamp = stamp  # the watcher's generation, or the fingerprint, when the reading began
        self.made = made
        self.body = body


class ListCache:
    """The last rendered answer per set of arguments, with what it was read from and when."""

    def __init__(self, config_dir: str | Path, ttl: float = TTL, watcher: watch.DirWatcher | None = None,
                 use_watcher: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.config_dir = str(config_dir)
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Any, _Entry] = {}
        self._refreshing: set[Any] = set()
        self._watcher = watcher if watcher is not None else (watch.open_watcher() if use_watcher else None)
        self._generation = 0  # bumped by every relevant event (watcher only)
        self._roots: set[str] = set()  # the datastore directories being watched
        self.hits = 0
        self.misses = 0
        self.refreshes = 0

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    def close(self) -> None:
        """Give the kernel its inotify instance back (at most 128 per user by default); the cache then asks
        the files."""
        with self._lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None

    # -- the watcher ---------------------------------------------------------------------------------------

    def _relevant(self, event: watch.Event) -> bool:
        if event.path is None or event.mask & watch.SELF:
            return True  # lost events, or a watched directory went away
        if event.path == self.config_dir:
            return event.name == "system.conf"
        if event.mask & watch.ENTRIES:
            return True  # a datastore's or a guest directory's entries (the stat fingerprint's mtime)
        if event.name == "":
            return True  # the directory's own attributes (its mtime: utimes(2))
        return event.path not in self._roots and event.name == f"{os.path.basename(event.path)}.conf"

    def _drain(self) -> int:
        """The generation after every queued event is read (the caller holds ``_lock``)."""
        assert self._watcher is not None
        if any(self._relevant(e) for e in self._watcher.read()):
            self._generation += 1
        return self._generation

    def _arm(self, roots: list[str]) -> None:
        """Watch .config, each datastore directory and each guest directory in them: before they are read."""
        assert self._watcher is not None
        wanted = {self.config_dir, *roots}
        for root in roots:
            try:
                wanted.update(e.path for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
        for path in self._watcher.watched() - wanted:
            self._watcher.unwatch(path)
        for path in wanted:
            try:
                self._watcher.watch(path)
            except FileNotFoundError:
                continue  # gone since the scan: its datastore's event says so
            except OSError as error:  # ENOSPC: /proc/sys/fs/inotify/max_user_watches reached
                log.warning("list cache: cannot watch %s (%s): asking the files instead", path, error)
                self._watcher.close()
                self._watcher = None
                return
        self._roots = set(roots)

    # -- the cache -----------------------------------------------------------------------------------------

    def _stamp(self, roots: Roots, arm: bool) -> Any:
        if self._watcher is not None:
            with self._lock:  # re-checked under the lock: ``close`` or a refused watch may have dropped it
                if arm and self._watcher is not None:
                    self._arm(roots())
                if self._watcher is not None:
                    return ("watch", self._drain())
        return ("stat", fingerprint(Path(self.config_dir), roots()))

    def _render(self, key: Any, roots: Roots, render: Render) -> bytes:
        made = self._clock()
        stamp = self._stamp(roots, arm=True)  # watches first, then the reading: no change falls between
        body = render()
        with self._lock:
            self._entries[key] = _Entry(stamp, made, body)
        return body

    def _refresh(self, key: Any, roots: Roots, render: Render) -> None:
        try:
            self._render(key, roots, render)
            self.refreshes += 1
        except Exception:  # the next request reads it itself and answers the error
            log.exception("list cache: refresh failed")
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def get(self, key: Any, roots: Roots, render: Render) -> bytes:
        """The cached bytes for ``key`` if nothing changed since they were read and they are fresh, else
        ``render()``'s (``roots()`` gives the datastores' directories, read only when needed)."""
        now = self._clock()
        stamp = self._stamp(roots, arm=False)
        with self._lock:
            entry = self._entries.get(key)
            fresh = entry is not None and entry.stamp == stamp and now - entry.made < self.ttl
            stale_soon = fresh and entry is not None and now - entry.made >= self.ttl / 2 \
                and key not in self._refreshing
            if stale_soon:
                self._refreshing.add(key)
        if entry is not None and fresh:
            self.hits += 1
            if stale_soon:
                threading.Thread(target=self._refresh, args=(key, roots, render), daemon=True,
                                 name="hivectld-list-refresh").start()
            return entry.body
        self.misses += 1
        return self._render(key, roots, render)
