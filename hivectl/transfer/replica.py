"""The mark of a replica: ``<vm_dir>/.config/replicas/NAME.json`` on the host that keeps the copy.

The copy itself is an ordinary guest in the vm_dir layout (its dataset holds NAME.conf and the disks, so
vm-bhyve could run it). The mark lives outside the guest's dataset, in vm_dir's ``.config``, because every
incremental receive rolls the guest's dataset back to the source's snapshot: a file inside it would be
gone after the first one. ``start`` refuses a marked guest; ``promote`` removes the mark. The file says
where the copy comes from (host, vm_dir, guest) so that ``promote`` can ask that host first.
"""

from __future__ import annotations

import json
from pathlib import Path

from hivectl import validate
from hivectl.context import Context
from hivectl.errors import Conflict

# ``start`` asks ``refuse_start``: this module (and the package's __init__) imports no typing, and the
# package does not re-export the chain's dataclasses (tests/lifecycle/test_start_imports.py).
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any


def mark_path(ctx: Context, name: str) -> Path:
    validate.guest_name(None, "NAME", name)
    return ctx.store.config_dir / "replicas" / f"{name}.json"


def mark(ctx: Context, name: str, info: dict[str, Any]) -> None:
    """Write (atomically) the mark of replica ``name``: ``info`` is {"host", "vm_dir", "guest", "job"}."""
    from hivectl.rcfile import atomic_write

    allowed = {key: str(info[key]) for key in ("host", "vm_dir", "guest", "remote", "job") if key in info}
    path = mark_path(ctx, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(allowed, sort_keys=True) + "\n")


def read_mark(ctx: Context, name: str) -> dict[str, str] | None:
    try:
        data = json.loads(mark_path(ctx, name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {"host": "?", "guest": name}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {"host": "?", "guest": name}


def unmark(ctx: Context, name: str) -> None:
    mark_path(ctx, name).unlink(missing_ok=True)


def refuse_start(ctx: Context, name: str) -> None:
    """The check ``start`` makes: a replica does not start until it is promoted."""
    found = read_mark(ctx, name)
    if found is not None:
        raise Conflict(f"{name} is a replica of {found.get('guest', name)} on {found.get('host', '?')} "
                       f"(hivectl replicate); 'hivectl promote {name}' makes it a normal guest and starts it")


def running_here(ctx: Context, name: str) -> bool:
    """Whether guest ``name`` of this host runs (the source's answer to ``promote``'s question)."""
    from hivectl.runtime import guest_state

    ref = ctx.store.find(name)
    return ref is not None and guest_state(ref.directory, name).running
