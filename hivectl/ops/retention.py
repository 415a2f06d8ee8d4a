"""Retention operations: ``retention explain`` and ``snapshot prune`` (hivectl/retention does the choosing).

``explain`` changes nothing: it reads a guest's snapshots (or the times in the names it is given) and
returns every decision. ``prune`` plans one ``zfs destroy -r`` per snapshot the policy does not keep
(``storage/snapshots.plan_prune``) and applies it unless ``dry_run``, like every other command's plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hivectl.context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.retention import Decision, Policy


def explain(ctx: Context, policy: Policy, names: list[str] | tuple[str, ...] = (),
            guest: str | None = None) -> list[Decision]:
    """The decisions of ``policy`` over ``guest``'s snapshots, or over items named with their times."""
    from hivectl.retention import Item, select
    from hivectl.retention.names import time_of
    from hivectl.storage.snapshots import snapshot_series

    if guest is not None:
        items = snapshot_series(ctx.store, ctx.store.get(guest))
    else:
        items = [Item(name, time_of(name)) for name in names]
    return select(items, policy)


@dataclass
class PruneResult:
    decisions: list[Decision] = field(default_factory=list)  # every snapshot, newest first
    plan: list[list[str]] = field(default_factory=list)  # the zfs destroy commands (run, or only shown)


def prune(ctx: Context, name: str, policy: Policy, dry_run: bool = False) -> PruneResult:
    """``snapshot prune NAME``: destroy the snapshots ``policy`` does not keep (all of them planned
    first, then applied in one plan: a failure stops the rest)."""
    from hivectl.storage.snapshots import plan_prune

    plan, decisions = plan_prune(ctx.store, name, policy)
    if not dry_run:
        plan.apply(ctx.host)
    return PruneResult(decisions, plan.argvs())
