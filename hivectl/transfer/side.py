"""One host's end of a transfer: what its ZFS has of a guest, and the ``zfs`` commands run there.

Both ends run the same functions, each on its own host: this host calls them directly, a remote runs them
under ``hivectl _stream replica ...`` (:func:`hivectl.transfer.serve.stream`). A guest is named, never a
dataset: the dataset is always ``<this host's vm_dir dataset>/NAME`` (and the zvols below it), so a
remote's request cannot reach any other dataset.

ZFS commands and properties used (zfs(8) and its pages): ``zfs get -H -p -r`` of ``guid``, ``createtxg``,
``creation`` and ``receive_resume_token``; ``zfs send [-i BASE] DS@SNAP``, ``zfs send -t TOKEN``;
``zfs recv -s [-F] DS``; ``zfs hold/release/holds``; ``zfs inherit`` of the ``hivectl:replication`` user
property (hivectl/storage/snapshots.py: ``pending`` keeps a snapshot from pruning until it is sent).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import IO, Any

from hivectl import validate
from hivectl.context import Context
from hivectl.errors import HivectlError, UsageError
from hivectl.host.base import CommandFailed
from hivectl.transfer.chain import Snap, Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.retention import Item, Policy

HOLD_TAG = "hivectl-replica"  # the hold on the last common snapshot (zfs-hold(8): any tag string)
PENDING = "hivectl:replication"  # storage/snapshots.REPLICATION_PROPERTY
_REL = re.compile(r"(/[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}){0,8}")
_TOKEN = re.compile(r"[0-9A-Za-z-]{1,1000000}")


def dataset_of(ctx: Context, name: str) -> str:
    """``<vm_dir dataset>/NAME`` after checking the name; a one-line error if vm_dir is not on ZFS."""
    validate.guest_name(None, "NAME", name)
    root = ctx.store.default.dataset
    if root is None:
        raise HivectlError(f"replication needs a ZFS vm_dir; this host's vm_dir {ctx.settings.vm_dir} is a "
                           "plain directory")
    return f"{root}/{name}"


def member(ctx: Context, name: str, rel: str) -> str:
    """The dataset ``rel`` (``""`` or ``/disk0``) below the guest's dataset, checked."""
    if not _REL.fullmatch(rel) or ".." in rel:
        raise UsageError(f"not a dataset below a guest: {rel!r}")
    return dataset_of(ctx, name) + rel


def resumable(ctx: Context) -> bool:
    """Whether this host's ZFS keeps interrupted receives (has ``receive_resume_token``; zfs-fuse has not)."""
    root = ctx.store.default.dataset
    if root is None:
        return False
    try:
        ctx.host.run(["zfs", "get", "-H", "-o", "value", "receive_resume_token", root])
    except CommandFailed:
        return False
    return True


def state(ctx: Context, name: str) -> dict[str, Any]:
    """The guest's datasets here: each one's snapshots (name, guid, txg, creation, pending) oldest first and
    its resume token; ``exists`` False when there is no dataset; ``resumable`` as :func:`resumable`."""
    dataset = dataset_of(ctx, name)
    can_resume = resumable(ctx)
    found: dict[str, Any] = {"dataset": dataset, "exists": False, "resumable": can_resume, "members": {}}
    try:
        out = ctx.host.run(["zfs", "get", "-H", "-p", "-r", "-o", "name,property,value",
                            f"guid,createtxg,creation,{PENDING}", dataset]).stdout
    except CommandFailed:
        return found
    found["exists"] = True
    members: dict[str, Any] = found["members"]
    values: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            values.setdefault(parts[0], {})[parts[1]] = parts[2]
    for full in values:
        if "@" not in full:
            members[full[len(dataset):]] = {"snapshots": [], "token": None}
    for full, props in values.items():
        base, at, snap = full.partition("@")
        if at and base[len(dataset):] in members:
            members[base[len(dataset):]]["snapshots"].append(
                [snap, int(props.get("guid", "0")), int(props.get("createtxg", "0")), int(props.get("creation", "0")),
                 props.get(PENDING, "-") == "pending"])
    for info in members.values():
        info["snapshots"].sort(key=lambda row: row[2])
    if can_resume:
        out = ctx.host.run(["zfs", "get", "-H", "-r", "-o", "name,value", "receive_resume_token", dataset]).stdout
        for line in out.splitlines():
            full, _, token = line.partition("\t")
            if "@" not in full and full[len(dataset):] in members and token not in ("", "-"):
                members[full[len(dataset):]]["token"] = token
    return found


def snaps(info: dict[str, Any]) -> list[Snap]:
    """A member's snapshots from :func:`state` as :class:`Snap` values."""
    return [Snap(row[0], int(row[1]), int(row[2]), int(row[3])) for row in info["snapshots"]]


def send_argv(ctx: Context, name: str, rel: str, step: Step) -> list[str]:
    """``zfs send`` of one step of member ``rel``."""
    if step.kind == "resume":
        if not step.token or not _TOKEN.fullmatch(step.token):
            raise UsageError("not a resume token")
        return ["zfs", "send", "-t", step.token]
    target = f"{member(ctx, name, rel)}@{validate_snap(step.snapshot)}"
    if step.kind == "incremental":
        return ["zfs", "send", "-i", f"@{validate_snap(step.base or '')}", target]
    return ["zfs", "send", target]


def recv_argv(ctx: Context, name: str, rel: str, kind: str, keep_partial: bool) -> list[str]:
    """``zfs recv`` into member ``rel``: ``-s`` where the ZFS keeps interrupted receives, ``-F`` for an
    incremental (rolls back changes made since the last snapshot, such as a mount's; never a snapshot:
    :func:`hivectl.transfer.chain.next_step` refuses a target with snapshots of its own); ``-u`` for the
    members below the guest's dataset (zvols have nothing to mount)."""
    if kind not in ("full", "incremental", "resume"):
        raise UsageError(f"not a kind of stream: {kind!r}")
    flags = (["-s"] if keep_partial else []) + (["-F"] if kind == "incremental" else [])
    return ["zfs", "recv", *flags, member(ctx, name, rel)]


def validate_snap(snap: str) -> str:
    from hivectl.storage.zfs import snapshot_name

    return snapshot_name(snap)


@contextlib.contextmanager
def sending(ctx: Context, name: str, rel: str, step: Step) -> Iterator[IO[bytes]]:
    """The stream of ``zfs send`` for one step, to read."""
    from hivectl.host import streams

    with streams.reading(send_argv(ctx, name, rel, step)) as out:
        yield out


@contextlib.contextmanager
def receiving(ctx: Context, name: str, rel: str, kind: str, keep_partial: bool) -> Iterator[IO[bytes]]:
    """The standard input of ``zfs recv`` into member ``rel``, to write the stream to."""
    from hivectl.host import streams

    with streams.writing(recv_argv(ctx, name, rel, kind, keep_partial)) as into:
        yield into


def abort_partial(ctx: Context, name: str, rel: str) -> None:
    """``zfs recv -A``: forget an interrupted receive whose source is gone (its token can never resume)."""
    ctx.host.run(["zfs", "recv", "-A", member(ctx, name, rel)])


def _holds(ctx: Context, names: list[str]) -> set[tuple[str, str]]:
    if not names:
        return set()
    # without -H, which zfs-fuse's 'holds' lacks: a header line, then NAME TAG TIMESTAMP in columns
    out = ctx.host.run(["zfs", "holds", *names]).stdout
    rows = [line.split() for line in out.splitlines()]
    return {(parts[0], parts[1]) for parts in rows if len(parts) >= 2 and parts[0] != "NAME"}


def hold(ctx: Context, name: str, snapshot: str) -> None:
    """Hold ``snapshot`` on every member that has it and release every other snapshot's replication hold:
    only the last common snapshot is held (one ``zfs holds``, then ``hold``/``release`` as needed)."""
    validate_snap(snapshot)
    info = state(ctx, name)
    dataset = info["dataset"]
    every = [f"{dataset}{rel}@{row[0]}" for rel, m in info["members"].items() for row in m["snapshots"]]
    held = {snap for snap, tag in _holds(ctx, every) if tag == HOLD_TAG}
    wanted = {f"{dataset}{rel}@{snapshot}" for rel, m in info["members"].items()
              if any(row[0] == snapshot for row in m["snapshots"])}
    missing = sorted(wanted - held)
    if missing:
        ctx.host.run(["zfs", "hold", HOLD_TAG, *missing])
    stale = sorted(held - wanted)
    if stale:
        ctx.host.run(["zfs", "release", HOLD_TAG, *stale])


def release_all(ctx: Context, name: str) -> list[str]:
    """Release every replication hold of the guest (``promote``: the copy is on its own now)."""
    info = state(ctx, name)
    dataset = info["dataset"]
    every = [f"{dataset}{rel}@{row[0]}" for rel, m in info["members"].items() for row in m["snapshots"]]
    held = sorted(snap for snap, tag in _holds(ctx, every) if tag == HOLD_TAG)
    if held:
        ctx.host.run(["zfs", "release", HOLD_TAG, *held])
    return held


def clear_pending(ctx: Context, name: str, snapshots: list[str]) -> None:
    """Drop ``hivectl:replication=pending`` from ``snapshots`` of every member (they are replicated now)."""
    for snap in snapshots:
        validate_snap(snap)
    info = state(ctx, name)
    dataset = info["dataset"]
    marked = [f"{dataset}{rel}@{row[0]}" for rel, m in info["members"].items() for row in m["snapshots"]
              if row[0] in snapshots and row[4]]
    if marked:
        ctx.host.run(["zfs", "inherit", PENDING, *marked])


def _name_time(name: str, creation: float) -> float:
    """A replication snapshot's time is in its name (``repl-20261203T150000Z``): the run's clock, which the
    tests drive; ZFS's ``creation`` only for a name without one."""
    from hivectl.errors import ConfigError
    from hivectl.retention.names import time_of

    try:
        return time_of(name)
    except ConfigError:
        return creation


def prune_choice(items: list[Item], policy: Policy, keep: list[str]) -> list[str]:
    """The names of ``items`` to destroy under ``policy``, newest first: what the retention rules do not
    keep, less ``keep`` (the last common snapshot counts towards the policy like any other, and stays
    even where the policy would drop it). Pure: the chain's property test uses it as the runs do."""
    from hivectl.retention import select

    return [d.item.name for d in select(items, policy) if not d.keep and d.item.name not in keep]


def prune(ctx: Context, name: str, policy_text: str, prefix: str, keep: list[str],
          dry_run: bool = False) -> list[str]:
    """Destroy the guest's snapshots named ``PREFIX...`` that ``policy_text`` does not keep
    (hivectl/retention); ``keep`` (the last common snapshot) is never removed, and neither is a pending one
    (the retention rule). Returns the destroyed names, newest first."""
    from hivectl.retention import Item, parse_policy
    from hivectl.storage.snapshots import snapshot_series

    policy = parse_policy(policy_text, None, "--keep")
    if policy.keeps_all:
        return []
    ref = ctx.store.get(name)
    series = [item for item in snapshot_series(ctx.store, ref) if item.name.startswith(prefix)]
    items = [Item(i.name, _name_time(i.name, i.time), protected=i.protected, pending=i.pending) for i in series]
    dataset = dataset_of(ctx, name)
    # a snapshot still held (the previous common one, when a run was interrupted before it moved the hold)
    # stays too: zfs destroy would refuse it, and the run with it
    held = {snap.partition("@")[2] for snap, tag in _holds(ctx, [f"{dataset}@{i.name}" for i in items])
            if tag == HOLD_TAG}
    gone = prune_choice(items, policy, [*keep, *sorted(held)])
    if not dry_run:
        for snap in gone:
            ctx.host.run(["zfs", "destroy", "-r", f"{dataset}@{snap}"])
    return gone
