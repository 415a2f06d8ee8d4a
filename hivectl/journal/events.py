"""The event stream: what happened to guests, one record each, in ``vm_dir/.config/events.jsonl``.

A record is ``{"seq", "time", "type", "target", "who", "details"}``; ``target`` is the resource path of the
catalog and of the roles (``/guests/web1``, ``/switches/lan``, ``/`` for the host). Who writes which type:

- the supervisor (``hivectl/runner/supervisor.py``), which sees the hypervisor run and exit: ``started``,
  ``stopped``, ``rebooted``, ``crashed`` (details: exit status and outcome) and ``adopted``;
- the audit seam (``hivectl/journal/audit.py``), after a change succeeded: ``created``, ``destroyed``,
  ``snapshot``, ``config-changed`` and, for other changes, ``changed`` with the operation's name;
- the console operation: ``console-opened``; the daemon's operations: ``operation`` (progress, status);
- migrations (``hivectl/ops/migrate.py`` here, ``hivectl/migrate/receive.py`` on the target): ``migration``
  with ``phase`` started, done or failed (sender), received or refused (receiver).

Lifecycle commands (start, stop, ...) add no event of their own: the supervisor reports what really
happened, including a guest that powers itself off, which no command asked for.
"""

from __future__ import annotations

import os

from hivectl.journal import events_path, now
from hivectl.journal.log import Journal
from hivectl.journal.who import current

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

TYPES = ("created", "destroyed", "config-changed", "changed", "started", "start-failed", "stopped", "rebooted",
         "crashed", "adopted", "console-opened", "snapshot", "operation", "migration")

# The event a successful change adds, by operation (hivectl.api's method names, as in the catalog).
# Operations that start or stop guests add none: the supervisor reports the run itself.
FROM_OPERATION: dict[str, str | None] = {
    "create": "created", "import_guest": "created", "clone": "created", "restore": "created",
    "image_provision": "created", "destroy": "destroyed", "snapshot": "snapshot", "rollback": "config-changed",
    "set": "config-changed", "configure": "config-changed", "add": "config-changed", "rename": "config-changed",
    "disk_resize": "config-changed", "tags_add": "config-changed", "tags_remove": "config-changed",
    "start": None, "install": None, "stop": None, "restart": None, "reset": None, "poweroff": None,
    "startall": None, "stopall": None, "console": None, "suspend": None, "resume": None,
    "migrate": None,  # hivectl/ops/migrate.py writes its own "migration" events on both hosts
}


def journal(config_dir: str) -> Journal:
    return Journal(events_path(config_dir))


def emit(config_dir: str, kind: str, target: str, details: dict[str, Any] | None = None,
         who: dict[str, Any] | None = None) -> int:
    """Append one event and return its sequence number (OSError if the log cannot be written)."""
    if kind not in TYPES:
        raise ValueError(f"{events_path(config_dir)}: unknown event type {kind!r} (one of {', '.join(TYPES)})")
    return journal(config_dir).append({"time": now(), "type": kind, "target": target,
                                        "who": who if who is not None else current(), "details": details or {}})


def emit_quietly(config_dir: str, kind: str, target: str, details: dict[str, Any] | None = None) -> int | None:
    """:func:`emit`, but a log that cannot be written (vm_dir not initialised, read-only) costs the guest
    nothing: the supervisor must not fail a boot over its event line. None when nothing was written."""
    if not os.path.isdir(config_dir):
        return None
    try:
        return emit(config_dir, kind, target, details)
    except (OSError, ValueError):
        return None


def after_change(config_dir: str, operation: str, targets: list[str], who: dict[str, Any]) -> None:
    """The events a successful audited change adds (one per target; see ``FROM_OPERATION``)."""
    kind = FROM_OPERATION.get(operation, "changed")
    if kind is None:
        return
    for target in targets or ["/"]:
        emit(config_dir, kind, target, {"operation": operation}, who)
