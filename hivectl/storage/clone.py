"""``clone NAME[@SNAP] NEW``: a new guest from an existing one, in the same datastore.

On ZFS every dataset and zvol of the guest is ``zfs clone``d from a recursive snapshot (taken now, named
after the first block of a fresh UUID as vm-bhyve does, unless ``@SNAP`` names one); the clone shares
blocks with its origin and depends on that snapshot. On a directory datastore the guest directory is
copied file by file, sparse-aware (only a stopped guest, and no ``@SNAP``: that would pretend to have a
snapshot that does not exist).

Either way the copy is *generalised*: a new uuid and new MAC addresses (two guests on one network must
not share a MAC, and cloud-init must see a new instance), the config renamed to ``NEW.conf``, run-time
files (lock, console, state, saved memory, logs) dropped, and the cloud-init seed rebuilt.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from hivectl import validate
from hivectl.errors import HivectlError
from hivectl.model.identity import new_mac, new_uuid, taken_macs
from hivectl.model.layout import config_name, is_runtime_file
from hivectl.model.staging import staging_name
from hivectl.plan import Call, Plan, Run
from hivectl.rcfile import RcFile
from hivectl.safety.filelock import locked
from hivectl.staging import Collect, MakeStaging, Publish
from hivectl.storage import sparse, zfs
from hivectl.storage.guards import require_stopped
from hivectl.store import GuestRef, Store


def plan_clone(store: Store, spec: str, new: str) -> Plan:
    name, snap = zfs.split_spec(spec)
    validate.guest_name(None, "NEW", new, new=True)
    ref = store.get(name)
    store.require_free(new)
    final = GuestRef(new, ref.datastore)
    target = final.staged(staging_name(new))  # built out of sight, published by one rename at the end
    plan = Plan()
    for leftover in store.leftovers(new, ref.datastore):
        plan.add(Collect(leftover.path, leftover.dataset))
    if ref.dataset is not None and target.dataset is not None:
        members = zfs.datasets(store.host, ref.dataset)
        if snap is None:
            require_stopped(ref, "clone", "stop it first, or clone from a snapshot (NAME@SNAP)")
            snap = new_uuid().split("-")[0]
            full = f"{ref.dataset}@{snap}"
            plan.add(Run(["zfs", "snapshot", "-r", full], undo_argv=["zfs", "destroy", "-r", full]))
        else:
            out = store.host.run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", ref.dataset]).stdout
            have = set(out.split())
            missing = [m for m in members if f"{m}@{snap}" not in have]
            if missing:
                raise HivectlError(f"cannot clone {name}@{snap}: {', '.join(missing)} has no snapshot {snap}")
        staging = MakeStaging(target.directory, target.dataset,
                              ["zfs", "clone", f"{ref.dataset}@{snap}", target.dataset])
        plan.add(staging)
        for member in members[1:]:
            clone = target.dataset + member[len(ref.dataset):]
            plan.add(Run(["zfs", "clone", f"{member}@{snap}", clone], undo_argv=["zfs", "destroy", "-r", clone]))
    else:
        if snap is not None:
            zfs.require_zfs(ref, "cloning from a snapshot")
        require_stopped(ref, "clone")
        staging = MakeStaging(target.directory)
        plan.add(staging)
        source_dir, target_dir = ref.directory, target.directory
        plan.add(Call(["cp", "-a", "--sparse=always", f"{source_dir}/.", str(target_dir)],
                      lambda: copy_tree(source_dir, target_dir, ref.name)))
    plan.add(generalise_action(store, ref.name, target))
    plan.add(Publish(staging, target.directory, final.directory, target.dataset, final.dataset))
    return plan


def generalise_action(store: Store, old: str, target: GuestRef) -> Call:
    """Rename ``OLD.conf`` to ``NEW.conf``, drop run-time files, set a new uuid and MACs, rebuild the seed."""
    uuid = new_uuid()
    source_conf = store.get(old).config() if store.find(old) else None
    shown_macs: dict[str, str] = {}
    taken = taken_macs(store.iter_guests())
    if source_conf is not None:
        for nic in source_conf.nics:
            mac = new_mac(taken)
            taken.add(mac)
            shown_macs[f"network{nic.index}_mac"] = mac

    def apply() -> None:
        directory = target.directory
        old_conf = directory / config_name(old)
        if old_conf.exists() and old != target.name:
            os.replace(old_conf, target.conf_path)
        for entry in os.listdir(directory):
            if is_runtime_file(entry, old) or is_runtime_file(entry, target.name):
                path = directory / entry
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        from hivectl.model.guest import GuestConfig

        with locked(target.conf_path):  # the read-modify-write of the new guest's config (filelock.py)
            conf = RcFile.load(target.conf_path)
            conf.set("uuid", uuid)
            used = set(taken)
            for nic in GuestConfig(conf, target.name).nics:
                key = f"network{nic.index}_mac"
                mac = shown_macs.get(key) or new_mac(used)
                used.add(mac)
                conf.set(key, mac)
            conf.save()
        from hivectl.storage.cloudinit import ensure_seed

        action = ensure_seed(target)
        if action is not None:
            action.apply(store.host)

    shown = ["sysrc", "-f", str(target.conf_path), f"uuid={uuid}", *[f"{k}={v}" for k, v in shown_macs.items()]]
    return Call(shown, apply)


def copy_tree(source: Path, target: Path, guest: str) -> None:
    """Copy a guest directory into the (existing, empty) ``target``: files sparse-aware, modes kept,
    run-time files and sockets left out."""
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        if is_runtime_file(entry.name, guest):
            continue
        dest = target / entry.name
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.path), dest)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(dest, stat.S_IMODE(st.st_mode))
            copy_tree(Path(entry.path), dest, guest)
        elif stat.S_ISREG(st.st_mode):
            copy_file(Path(entry.path), dest, stat.S_IMODE(st.st_mode))


def copy_file(source: Path, dest: Path, mode: int) -> None:
    src = os.open(source, os.O_RDONLY)
    try:
        size = os.fstat(src).st_size
        dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            sparse.copy_sparse(src, dst, size)
            os.ftruncate(dst, size)
            os.fchmod(dst, mode)
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
