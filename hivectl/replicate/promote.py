"""``hivectl promote NAME`` on the DR host: the replica becomes a normal guest, and starts.

Before anything changes, the source is asked whether it still runs the guest: two copies running at once
would each write their own disks and answer on the same addresses. The replica's mark
(hivectl/transfer/replica.py) says where it comes from; a source in another vm_dir of this host is asked
directly, a remote one through hivectl/remote (``--source REMOTE``, else a remote named as the source host).
Running there, or no answer: refused in one line, unless ``--force`` (the source is known to be dead).

Then every dataset of the guest is rolled back to the newest replication snapshot all of them have (an
interrupted run may have brought the config further than a disk: the copy that starts is one moment of
the source), the replication holds are released, the mark removed, and the guest started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hivectl.context import Context
from hivectl.errors import Conflict, HivectlError, NotFound
from hivectl.transfer import replica, side


@dataclass
class PromoteResult:
    name: str
    snapshot: str | None = None
    source: str = ""
    forced: bool = False
    plan: list[list[str]] = field(default_factory=list)
    started: bool = False


def _source_running(ctx: Context, mark: dict[str, str], source: str | None) -> bool | None:
    """True/False from the source, None when it cannot be asked."""
    from hivectl.runtime import hostname

    if source is None and mark.get("host") == hostname() and mark.get("vm_dir"):
        there = Context(vm_dir=mark["vm_dir"], host=ctx.host)
        try:
            return replica.running_here(there, mark.get("guest", ""))
        except HivectlError:
            return None
    name = source or mark.get("host", "")
    from hivectl.remote import connect

    try:
        remote = connect(ctx, name)
        with remote.stream(["replica", "do", "running", mark.get("guest", "")]) as pipes:
            pipes.stdin.close()
            answer = pipes.stdout.read().decode("utf-8", errors="replace").strip()
    except (HivectlError, OSError):
        return None
    return bool(answer == "true")


def consistent_snapshot(info: dict[str, Any]) -> str | None:
    """The newest snapshot every dataset of the guest has (by name, in the top dataset's order)."""
    members = info["members"]
    top = members.get("", {"snapshots": []})["snapshots"]
    names = [row[0] for row in top]
    for m in members.values():
        have = {row[0] for row in m["snapshots"]}
        names = [n for n in names if n in have]
    return names[-1] if names else None


def promote(ctx: Context, name: str, force: bool = False, source: str | None = None, start: bool = True,
            dry_run: bool = False) -> PromoteResult:
    mark = replica.read_mark(ctx, name)
    if mark is None:
        raise NotFound(f"{name} is not a replica here (no {replica.mark_path(ctx, name)})")
    result = PromoteResult(name, source=mark.get("host", "?"), forced=force)
    running = _source_running(ctx, mark, source)
    if running and not force:
        raise Conflict(f"{name} still runs on {result.source}: stop it there first, or use --force")
    if running is None and not force:
        raise Conflict(f"cannot ask {source or result.source} whether it still runs {name}: refused (use "
                       "--force if that host is down for good)")
    info = side.state(ctx, name)
    snap = consistent_snapshot(info)
    result.snapshot = snap
    if snap is None:
        raise Conflict(f"{name}: no snapshot that every dataset of the copy has; nothing consistent to promote")
    for rel, m in info["members"].items():
        if m.get("token"):
            result.plan.append(["zfs", "recv", "-A", f"{info['dataset']}{rel}"])
    for rel in sorted(info["members"], key=lambda r: (r.count("/"), r)):
        rows = info["members"][rel]["snapshots"]
        if rows and rows[-1][0] != snap:
            result.plan.append(["zfs", "rollback", "-r", f"{info['dataset']}{rel}@{snap}"])
    if dry_run:
        return result
    for argv in result.plan:
        ctx.host.run(argv)
    side.release_all(ctx, name)
    replica.unmark(ctx, name)
    if start:
        from hivectl.ops.lifecycle import StartRequest
        from hivectl.ops.lifecycle import start as start_guests

        outcome = start_guests(ctx, StartRequest(names=(name,)))
        if outcome.errors:
            raise HivectlError(f"{name} is promoted but did not start: {outcome.errors[0]}")
        result.started = True
    return result
