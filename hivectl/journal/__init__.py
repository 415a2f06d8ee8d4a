"""The event stream and the audit log: two append-only JSON-lines logs in ``vm_dir/.config/``.

``events.jsonl`` says what happened to guests (created, started, crashed, ...), ``audit.jsonl`` who changed
what through which operation, and with what result (docs/events.md). Both are :class:`log.Journal`s: one
mechanism, gap-free sequence numbers, rotation that keeps at least 10,000 records.
"""

from __future__ import annotations

import os
import time

EVENTS = "events.jsonl"
AUDIT = "audit.jsonl"


def events_path(config_dir: str) -> str:
    """The event log of the vm_dir whose ``.config`` directory is ``config_dir``."""
    return os.path.join(config_dir, EVENTS)


def audit_path(config_dir: str) -> str:
    """The audit log of the vm_dir whose ``.config`` directory is ``config_dir``."""
    return os.path.join(config_dir, AUDIT)


def now() -> str:
    """The current time in UTC as RFC 3339 with milliseconds (``2026-12-03T12:48:10.123Z``)."""
    stamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}Z"
