"""ZFS snapshots of guests: ``snapshot``, ``rollback``, ``destroy NAME@SNAP`` and the list in ``info``.

A guest's snapshot is a recursive one of its dataset (``zfs snapshot -r pool/vm/NAME@SNAP``), so the
config file, the zvols and everything else in the guest's dataset are captured at the same moment. On a
directory datastore there is nothing honest to offer (copying 20 GiB is not a snapshot), so these
commands say in one line that they need ZFS.

``snapshot prune`` keeps what a retention policy keeps (``hivectl/retention``, Proxmox's keep-last,
keep-hourly ... keep-yearly) and destroys the rest; a snapshot with the user property
``hivectl:protected=on``, or ``hivectl:replication=pending`` (not yet sent to its replica), is never
destroyed by it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hivectl.errors import Conflict, HivectlError, NotFound, UsageError
from hivectl.plan import Plan, Run
from hivectl.storage import zfs
from hivectl.storage.guards import require_stopped
from hivectl.store import GuestRef, Store

if TYPE_CHECKING:
    from hivectl.retention import Decision, Item, Policy


def plan_snapshot(store: Store, spec: str, force: bool = False) -> tuple[Plan, str]:
    """``snapshot [-f] NAME[@SNAP]``: returns the plan and the snapshot's name."""
    name, snap = zfs.split_spec(spec)
    ref = store.get(name)
    dataset = zfs.require_zfs(ref, "snapshot")
    if not force:
        require_stopped(ref, "snapshot", "stop it first, or use -f for a crash-consistent snapshot")
    snap = snap or zfs.default_snapshot_name()
    if zfs.has_snapshot(store.host, dataset, snap):
        raise Conflict(f"{name}@{snap} already exists")
    full = f"{dataset}@{snap}"
    return Plan([Run(["zfs", "snapshot", "-r", full], undo_argv=["zfs", "destroy", "-r", full])]), snap


def plan_rollback(store: Store, spec: str, recursive: bool = False) -> Plan:
    """``rollback [-r] NAME@SNAP``: every filesystem and zvol of the guest goes back to SNAP.

    Without ``-r`` newer snapshots are an error (naming them) rather than something silently destroyed.
    """
    name, snap = zfs.split_spec(spec, need_snapshot=True)
    assert snap is not None
    ref = store.get(name)
    dataset = zfs.require_zfs(ref, "rollback")
    require_stopped(ref, "roll back")
    own = zfs.snapshots(store.host, dataset)
    names = [s.name for s in own]
    if snap not in names:
        raise NotFound(f"{name} has no snapshot {snap} (see 'hivectl info {name}')")
    newer = names[names.index(snap) + 1:]
    if newer and not recursive:
        raise Conflict(f"{name} has snapshots newer than {snap} ({', '.join(newer)}); use -r to destroy them "
                       "and roll back")
    plan = Plan()
    with_snap = _datasets_with(store, dataset, snap)
    for member in zfs.datasets(store.host, dataset):
        if member in with_snap:
            plan.add(Run(["zfs", "rollback", *(["-r"] if recursive else []), f"{member}@{snap}"]))
    return plan


def _datasets_with(store: Store, dataset: str, snap: str) -> set[str]:
    out = store.host.run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset]).stdout
    return {line.split("@", 1)[0] for line in out.splitlines() if line.endswith(f"@{snap}")}


def plan_destroy_snapshot(store: Store, spec: str) -> Plan:
    """``destroy NAME@SNAP``: ``zfs destroy -r`` (the snapshot on the guest's dataset and everything below)."""
    name, snap = zfs.split_spec(spec, need_snapshot=True)
    ref = store.get(name)
    dataset = zfs.require_zfs(ref, "destroying a snapshot")
    if not zfs.has_snapshot(store.host, dataset, str(snap)):
        raise NotFound(f"{name} has no snapshot {snap}")
    return Plan([Run(["zfs", "destroy", "-r", f"{dataset}@{snap}"])])


def snapshot_info(store: Store, ref: GuestRef) -> list[dict[str, Any]] | None:
    """Snapshots for ``info`` (name, creation, used), or None on a directory datastore."""
    if ref.dataset is None:
        return None
    try:
        return [s.as_json() for s in zfs.snapshots(store.host, ref.dataset)]
    except HivectlError:
        return None


def snapshot_list(store: Store, ref: GuestRef) -> list[dict[str, Any]]:
    """The guest's snapshots, oldest first (``Hivectl.snapshots``); a one-line error on a directory datastore."""
    return [s.as_json() for s in zfs.snapshots(store.host, zfs.require_zfs(ref, "listing snapshots"))]


# -- retention (hivectl/retention: one grammar for snapshots, backups and replicas) ------------------------
PROTECTED_PROPERTY = "hivectl:protected"  # on/yes/true: never pruned (Proxmox's protected backups)
REPLICATION_PROPERTY = "hivectl:replication"  # "pending": not yet sent to its replica, never pruned


def snapshot_series(store: Store, ref: GuestRef) -> list[Item]:
    """The guest's own snapshots as a retention series: creation time, and the two ZFS user properties
    that keep a snapshot whatever the policy (zfsprops(7): user properties are ``module:property``)."""
    from hivectl.retention import Item

    dataset = zfs.require_zfs(ref, "pruning snapshots")
    wanted = f"creation,{PROTECTED_PROPERTY},{REPLICATION_PROPERTY}"
    out = store.host.run(["zfs", "get", "-H", "-p", "-r", "-o", "name,property,value", wanted, dataset]).stdout
    found: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and "@" in parts[0] and parts[0].split("@", 1)[0] == dataset:
            found.setdefault(parts[0].split("@", 1)[1], {})[parts[1]] = parts[2]
    return [Item(snap, int(values["creation"]) if values.get("creation", "").isdigit() else 0,
                 protected=values.get(PROTECTED_PROPERTY, "-").lower() in ("on", "yes", "true", "1"),
                 pending=values.get(REPLICATION_PROPERTY, "-").lower() == "pending")
            for snap, values in found.items()]


def plan_prune(store: Store, name: str, policy: Policy) -> tuple[Plan, list[Decision]]:
    """``snapshot prune NAME --keep-...``: one ``zfs destroy -r DATASET@SNAP`` per snapshot the policy
    does not keep, newest first, and every decision (for the report). A policy that keeps everything is
    refused: it is almost certainly a forgotten option, and it would do nothing."""
    from hivectl.retention import select

    if policy.keeps_all:
        raise UsageError("snapshot prune needs at least one --keep-* option (or --policy keep-RULE=N,...)")
    ref = store.get(name)
    dataset = zfs.require_zfs(ref, "pruning snapshots")
    decisions = select(snapshot_series(store, ref), policy)
    plan = Plan([Run(["zfs", "destroy", "-r", f"{dataset}@{d.item.name}"]) for d in decisions if not d.keep])
    return plan, decisions
