"""A cache of the guest list for ``GET /1.0/guests``, valid while nothing it was read from has changed.

``list`` reads every guest's config and run-time files (hivectl/ops/listing.py): about 30 ms for 1,000
guests on an idle machine, three times the API's 10 ms target (issue 11). The daemon lives long, so it
keeps the last answer (already rendered as the response's bytes) with a fingerprint of what it came from:
the system.conf (datastores), every datastore directory, and each guest directory and config file in
them, by modification time and size. The CLI and the supervisors change those by writing or renaming
files in them (config edits are atomic renames, run.lock and the supervisor's state are created and
removed in the guest's directory), so any change they make changes the fingerprint; checking it costs two
stat(2) calls per guest instead of reading and parsing its files. What no file records (a hypervisor
killed with SIGKILL before its supervisor could clean up) is seen within ``TTL`` seconds, after which the
list is always read again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TTL = 1.0  # seconds an unchanged fingerprint is trusted


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def fingerprint(config_dir: Path, datastores: list[str]) -> tuple[Any, ...]:
    """What a guest list depends on, as it is now (see the module docstring)."""
    parts: list[Any] = [_stat(str(config_dir / "system.conf"))]
    for root in datastores:
        parts.append((root, _stat(root)))
        try:
            entries = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        for name in entries:
            directory = os.path.join(root, name)
            parts.append((name, _stat(directory), _stat(os.path.join(directory, f"{name}.conf"))))
    return tuple(parts)


class ListCache:
    """The last rendered answer per set of arguments, with the fingerprint and time it was made at."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[tuple[Any, ...], float, bytes]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Any, current: Callable[[], tuple[Any, ...]], render: Callable[[], bytes]) -> bytes:
        """The cached bytes for ``key`` if ``current()`` still matches and they are fresh, else ``render()``."""
        now = time.monotonic()
        seen = current()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == seen and now - entry[1] < self.ttl:
            self.hits += 1
            return entry[2]
        self.misses += 1
        body = render()
        with self._lock:
            self._entries[key] = (seen, now, body)
        return body
