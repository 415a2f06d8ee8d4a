"""``disk list NAME`` and ``disk resize NAME DISK SIZE``: grow a stopped guest's disk, never shrink it.

Growing is safe for any guest: the new space appears at the end of the disk and the guest's partitions
and file systems are untouched (cloud images grow their root file system at the next boot; other guests
need ``growpart``/``gpart resize`` inside). Shrinking would cut off data the guest may use, so it is
refused with the current and requested sizes in the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError, NotFound
from hivectl.model.guest import Disk
from hivectl.model.layout import SEED
from hivectl.plan import Call, Plan, Run
from hivectl.safety import disks as disk_rules
from hivectl.safety import paths
from hivectl.storage import zfs
from hivectl.storage.guards import require_stopped
from hivectl.store import GuestRef, Store


@dataclass(frozen=True)
class Resize:
    plan: Plan
    disk: Disk
    old: int
    new: int


def find_disk(ref: GuestRef, spec: str) -> Disk:
    """A disk by key (``disk1``), index (``1``) or file/zvol name (``disk1.img``)."""
    disks = ref.config().disks
    for disk in disks:
        if spec in (disk.key, str(disk.index), disk.name):
            return disk
    known = ", ".join(f"{d.key} ({d.name})" for d in disks) or "none"
    raise NotFound(f"{ref.name} has no disk {spec!r} (disks: {known})")


def current_size(store: Store, ref: GuestRef, disk: Disk) -> int:
    if disk.backing.zvol:
        disk_rules.check_name(ref.conf_path, f"{disk.key}_name", disk.name, zvol=True)
        return zfs.volsize(store.host, f"{zfs.require_zfs(ref, 'a zvol disk')}/{disk.name}")
    if disk.backing.in_directory:
        # The drivers' own rule: inside the guest directory, no symlink (never grow a host file).
        path = disk_rules.file_disk(ref.directory, ref.conf_path, f"{disk.key}_name", disk.name)
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            raise NotFound(f"{path} does not exist") from None
    raise HivectlError(f"{disk.key} is a {disk.dev} disk; hivectl does not manage its storage")


def plan_resize(store: Store, name: str, spec: str, size_text: str) -> Resize:
    """Grow one disk to ``SIZE`` (or by ``+SIZE``)."""
    ref = store.get(name)
    disk = find_disk(ref, spec)
    if disk.is_cd or disk.name == SEED:
        raise HivectlError(f"{disk.key} is a CD ({disk.name}); it cannot be resized")
    old = current_size(store, ref, disk)
    grow = size_text.startswith("+")
    amount = validate.disk_size(None, "SIZE", size_text.lstrip("+"))
    new = old + amount if grow else amount
    if new > validate.MAX_DISK_BYTES:
        raise ConfigError(None, "SIZE", size_text, "a disk is at most 8E minus one byte (the largest file size)")
    if new < old:
        raise ConfigError(None, "SIZE", size_text,
                          f"{disk.key} is {validate.format_size(old)} and shrinking it to {validate.format_size(new)} "
                          "would destroy the data at its end; disks can only grow")
    require_stopped(ref, "resize a disk of")
    shown_size = validate.format_size(new)
    plan = Plan()
    if new == old:
        return Resize(plan, disk, old, new)
    if disk.backing.in_directory:
        path = ref.directory / disk.name

        def set_size(size: int, expected: int | None) -> None:
            fd = paths.open_file(ref.directory, path, write=True)  # no symlink, a plain file with one link
            try:
                if expected is not None and os.fstat(fd).st_size != expected:
                    raise HivectlError(f"{path} changed size while being resized; nothing was done")
                os.ftruncate(fd, size)
            finally:
                os.close(fd)

        plan.add(Call(["truncate", "-s", shown_size, str(path)], lambda: set_size(new, old),
                      lambda: set_size(old, None)))
    else:
        volume = f"{ref.dataset}/{disk.name}"
        plan.add(Run(["zfs", "set", f"volsize={shown_size}", volume],
                     undo_argv=["zfs", "set", f"volsize={old}", volume]))
    return Resize(plan, disk, old, new)
