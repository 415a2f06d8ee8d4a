"""What to send next, from the snapshots both sides have: pure decisions, no I/O.

ZFS matches snapshots by guid, not by name: a received snapshot keeps the guid it had on the sender, and an
incremental stream names its base by guid (zfs-send(8): "the incremental source must be an earlier
snapshot in the destination's history"). So the common base is the newest source snapshot whose guid the
target has, and the target's newest snapshot must be that one (a target with newer snapshots of its own
has diverged: receiving would need ``-F`` to destroy them, which replication never does by itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hivectl.errors import Conflict


class Diverged(Conflict):
    """The two sides have no usable common snapshot; a person has to decide (e.g. destroy the replica)."""


@dataclass(frozen=True)
class Snap:
    """One snapshot of one dataset: its name (after ``@``), guid and creation txg (the order of creation)."""

    name: str
    guid: int
    txg: int
    time: int = 0


@dataclass(frozen=True)
class Step:
    """One stream: ``full`` of ``snapshot``, ``incremental`` from ``base`` to ``snapshot``, or ``resume``
    of an interrupted one (``token``)."""

    kind: str
    snapshot: str = ""
    base: str | None = None
    token: str | None = None


def common(source: Sequence[Snap], target: Sequence[Snap]) -> Snap | None:
    """The newest snapshot of ``source`` that ``target`` has (by guid), or None."""
    there = {snap.guid for snap in target}
    ordered = sorted(source, key=lambda snap: snap.txg)
    return next((snap for snap in reversed(ordered) if snap.guid in there), None)


def next_step(source: Sequence[Snap], target: Sequence[Snap], token: str | None, upto: str | None = None,
              what: str = "dataset") -> Step | None:
    """The next stream that brings ``target`` closer to ``upto`` (default: the newest source snapshot), or
    None when it is there. An interrupted receive (``token``) is always finished first."""
    if token:
        return Step("resume", token=token)
    ordered = sorted(source, key=lambda snap: snap.txg)
    if upto is not None:
        names = [snap.name for snap in ordered]
        if upto not in names:
            raise Diverged(f"{what} has no snapshot {upto}")
        ordered = ordered[:names.index(upto) + 1]
    if not ordered:
        return None
    base = common(ordered, target)
    if base is None:
        if target:
            raise Diverged(f"{what}: the other side has snapshots ({sorted(target, key=lambda s: s.txg)[-1].name}"
                           " newest) but none in common with this one; destroy the copy to send it anew")
        return Step("full", ordered[-1].name)
    newest_there = max(target, key=lambda snap: snap.txg)
    if newest_there.guid != base.guid:
        raise Diverged(f"{what}: the other side has snapshot {newest_there.name}, newer than the last common one "
                       f"({base.name}); roll it back or destroy the copy")
    later = [snap for snap in ordered if snap.txg > base.txg]
    if not later:
        return None
    return Step("incremental", later[0].name, base=base.name)
