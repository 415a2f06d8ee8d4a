"""Bring the other side's copy of a guest up to a snapshot: one ``zfs send`` into one ``zfs recv`` per step.

For each of the guest's datasets (the guest's own first: the zvols are received below it) the loop asks
:func:`hivectl.transfer.chain.next_step` what to send, sends it, reads the other side again and repeats:
an interrupted receive is finished first (``zfs send -t``), then a full stream if the other side has
nothing, then one ``zfs send -i`` per snapshot. The bytes are copied here, so they are counted (for
``replicate status`` and the resume test) whatever carries them: a pipe to a ``zfs recv`` of this host or
a remote's ``hivectl _stream``.

Without resumable receives on both sides (zfs-fuse 0.7 has neither ``zfs recv -s`` nor ``zfs send -t``),
the receive runs without ``-s``: ZFS throws an interrupted receive away and the next run sends that step
again from its start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivectl.context import Context
from hivectl.errors import NotFound
from hivectl.host.base import CommandFailed
from hivectl.transfer import side
from hivectl.transfer.chain import Snap, Step, common, next_step
from hivectl.transfer.peer import Peer

CHUNK = 1 << 16
Progress = Callable[[int], None]  # bytes sent so far in this sync


@dataclass
class Sent:
    """One stream: the dataset (``rel`` below the guest's), its kind, snapshots and bytes."""

    rel: str
    kind: str
    snapshot: str
    base: str | None
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {"dataset": self.rel or "/", "kind": self.kind, "snapshot": self.snapshot, "base": self.base,
                "bytes": self.bytes}


@dataclass
class SyncResult:
    """What a sync did: its streams, their bytes, the last common snapshot after it, and whether the two
    ZFS could resume interrupted receives."""

    sent: list[Sent] = field(default_factory=list)
    common: str | None = None
    resumable: bool = False

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sent)


def _members(info: dict[str, Any]) -> list[str]:
    return sorted(info["members"], key=lambda rel: (rel.count("/"), rel))


def _member_snaps(info: dict[str, Any], rel: str) -> list[Snap]:
    found = info["members"].get(rel)
    return side.snaps(found) if found else []


def last_common(src: dict[str, Any], dst: dict[str, Any]) -> str | None:
    """The newest snapshot name that every member of the guest has on both sides (same guid)."""
    names: set[str] | None = None
    order: dict[str, int] = {}
    for rel in _members(src):
        mine, theirs = _member_snaps(src, rel), _member_snaps(dst, rel)
        guids = {s.guid for s in theirs}
        here = {s.name for s in mine if s.guid in guids}
        order.update({s.name: s.txg for s in mine})
        names = here if names is None else names & here
    if not names:
        return None
    return max(names, key=lambda n: order.get(n, 0))


def replicated(src: dict[str, Any], dst: dict[str, Any]) -> list[str]:
    """Source snapshots that need no sending any more: on the other side, or older than the last common
    snapshot of every member (a full stream of a newer one made them unnecessary)."""
    done: set[str] | None = None
    for rel in _members(src):
        mine, theirs = _member_snaps(src, rel), _member_snaps(dst, rel)
        base = common(mine, theirs)
        guids = {s.guid for s in theirs}
        here = {s.name for s in mine if s.guid in guids or (base is not None and s.txg <= base.txg)}
        done = here if done is None else done & here
    return sorted(done or set())


def _copy(ctx: Context, peer: Peer, name: str, rel: str, step: Step, keep: bool, total: list[int],
          progress: Progress | None, there: str) -> int:
    count = 0
    with side.sending(ctx, name, rel, step) as out, peer.receiving(there, rel, step.kind, keep) as into:
        while chunk := out.read(CHUNK):
            into.write(chunk)
            count += len(chunk)
            total[0] += len(chunk)
            if progress is not None:
                progress(total[0])
    return count


def sync(ctx: Context, peer: Peer, name: str, upto: str | None = None, progress: Progress | None = None,
         max_steps: int = 100_000, target: str | None = None) -> SyncResult:
    """Send guest ``name`` of ``ctx``'s vm_dir to ``peer`` up to snapshot ``upto`` (default: the newest), as
    guest ``target`` there (default: the same name; ``migrate --rename``)."""
    there_name = target or name
    src = side.state(ctx, name)
    if not src["exists"]:
        raise NotFound(f"{name} has no dataset {src['dataset']} to send")
    dst = peer.state(there_name)
    keep = bool(src["resumable"] and dst["resumable"])
    result = SyncResult(resumable=keep)
    total = [0]
    for rel in _members(src):
        for _ in range(max_steps):
            there = dst["members"].get(rel) or {"snapshots": [], "token": None}
            token = there.get("token") if keep else None
            step = next_step(_member_snaps(src, rel), side.snaps(there), token, upto, what=f"{name}{rel}")
            if step is None:
                break
            try:
                sent = _copy(ctx, peer, name, rel, step, keep, total, progress, there_name)
            except CommandFailed as error:
                if step.kind == "resume" and "no longer exists" in str(error):
                    peer.request(["abort", there_name, rel or "/"])  # the token's snapshot is gone: afresh
                    dst = peer.state(there_name)
                    continue
                raise
            snapshot = step.snapshot
            if step.kind == "resume":
                dst = peer.state(there_name)
                newest = _member_snaps(dst, rel)
                snapshot = max(newest, key=lambda s: s.txg).name if newest else ""
            else:
                dst = peer.state(there_name)
            result.sent.append(Sent(rel, step.kind, snapshot, step.base, sent))
    result.common = last_common(src, dst)
    return result
