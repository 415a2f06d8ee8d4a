"""A guest's saved state (``hivectl suspend``): where it is, what makes it stale, and how it is put aside.

A save is ``NAME.save`` in the guest directory, vm-bhyve's name (its lib/vm-run resumes with ``bhyve -r
NAME.save``). For bhyve it is what ``bhyvectl --suspend=FILE`` makes bhyve write: FILE (guest memory),
FILE.kern (the kernel's vCPU and device state) and FILE.meta (a JSON index), usr.sbin/bhyve/snapshot.c;
for QEMU it is the migration stream of the paused guest (qemu(1) ``-incoming``, QMP ``migrate``).

Guest memory is only worth restoring onto the machine and the disks it was taken with: memory that
believes a file system looks one way, restored onto disks that look another, corrupts them. So once a
save is complete hivectl writes ``NAME.save.hivectl``: the driver, the config values that shape the
machine (:func:`machine`) as the run was booted with them, and a stamp of every disk (:func:`disk_stamps`).
A start compares all three with the present (:func:`problems`) and refuses a save that no longer fits,
naming what changed. A save without a record (one vm-bhyve made) is checked the only way left: a disk
modified after the save file was written makes it stale.

A save is never deleted behind the administrator's back: ``resume --discard`` and ``start --discard-save``
move it into ``NAME.save.discarded-STAMP/`` (:func:`discard`); only a save that was resumed from, and so
lives on in the running guest, is removed (:func:`consume`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig
from hivectl.rcfile import atomic_write
from hivectl.records import record
from hivectl.store import GuestRef

RECORD = ".hivectl"  # NAME.save.hivectl
PARTS = {"bhyve": ("", ".kern", ".meta"), "qemu": ("",)}  # the files each hypervisor's save consists of
DISCARDED = ".discarded-"

# Keys that change nothing in the virtual machine a save restores: hivectl's own run policy, hooks,
# labels and host-side limits. Every other key counts (a new disk, NIC, loader, vCPU or memory size does).
NOT_MACHINE = frozenset({
    "tags", "description", "priority", "on_restart", "on_fault", "fault_limit", "fault_backoff", "prestart",
    "limit_pcpu", "limit_rbps", "limit_wbps", "limit_riops", "limit_wiops", "graphics_wait",
})


def machine(config: GuestConfig) -> dict[str, str]:
    """The config values that describe the virtual machine (every key except :data:`NOT_MACHINE`)."""
    return {k: v for k, v in sorted(config.values.items()) if k not in NOT_MACHINE}


def fingerprint(values: dict[str, str]) -> str:
    """A short digest of :func:`machine`'s values, for the log and ``info``."""
    import hashlib  # with OpenSSL's module: only where a digest is made

    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def disk_files(host: Host, ref: GuestRef, config: GuestConfig) -> dict[str, Path]:
    """Each disk's local file or device (``disk0`` → path), and the UEFI variable store when it exists:
    what a resumed guest expects to find as it left it. Disks without a local path (iSCSI) are skipped."""
    found: dict[str, Path] = {}
    for disk in config.disks:
        try:
            where = ref.layout.disk_path(disk.dev, disk.name)
        except LookupError:
            continue
        if not where.startswith("/"):
            continue
        found[disk.key] = host.devpath(where) if where.startswith("/dev/") else Path(where)
    if ref.layout.uefi_vars.exists():
        found["uefi_vars"] = ref.layout.uefi_vars
    return found


def disk_stamps(host: Host, ref: GuestRef, config: GuestConfig) -> dict[str, list[int] | None]:
    """Size and modification time (ns) of each of :func:`disk_files`; None for one that is missing."""
    stamps: dict[str, list[int] | None] = {}
    for key, path in disk_files(host, ref, config).items():
        try:
            st = os.stat(path)
        except OSError:
            stamps[key] = None
            continue
        stamps[key] = [st.st_size, st.st_mtime_ns]
    return stamps


@record(frozen=True)
class Save:
    """The save of one guest as found on disk."""

    ref: GuestRef
    record: dict[str, object] | None  # NAME.save.hivectl, None for a save hivectl did not make

    @property
    def path(self) -> Path:
        return self.ref.layout.suspend

    @property
    def driver(self) -> str:
        """The hypervisor that wrote it: the record says; a save without one is vm-bhyve's, so bhyve's."""
        return str((self.record or {}).get("driver") or "bhyve")

    def files(self) -> list[Path]:
        """Every file of the save present now (its parts, the record)."""
        base = self.ref.layout
        return [p for p in (base.save_file(s) for s in (*PARTS.get(self.driver, ("",)), RECORD)) if p.exists()]


def find(ref: GuestRef) -> Save | None:
    """The guest's save, or None when ``NAME.save`` does not exist."""
    if not ref.layout.suspend.exists():
        return None
    record_path = ref.layout.save_file(RECORD)
    try:
        data = json.loads(record_path.read_text())
    except FileNotFoundError:
        return Save(ref, None)
    except (OSError, ValueError):
        data = {"driver": "?", "damaged": True}
    return Save(ref, data if isinstance(data, dict) else {"driver": "?", "damaged": True})


def write_record(ref: GuestRef, driver: str, values: dict[str, str], stamps: dict[str, list[int] | None]) -> None:
    """``NAME.save.hivectl``, written atomically once the save itself is complete."""
    data = {"driver": driver, "saved": time.time(), "fingerprint": fingerprint(values), "machine": values,
            "disks": stamps}
    atomic_write(ref.layout.save_file(RECORD), json.dumps(data, indent=1) + "\n", 0o600)


def problems(host: Host, save: Save, config: GuestConfig, driver: str) -> list[str]:
    """Why ``save`` cannot be resumed by ``driver`` with ``config`` now; empty when it can."""
    ref, found = save.ref, []
    hint = f"; 'hivectl resume --discard {ref.name}' puts the save aside and boots afresh"
    missing = [save.ref.layout.save_file(s).name for s in PARTS.get(save.driver, ("",))
               if not save.ref.layout.save_file(s).exists()]
    if save.record is not None and save.record.get("damaged"):
        return [f"{ref.layout.save_file(RECORD)} is damaged, so the save {save.path} cannot be checked" + hint]
    if save.driver != driver:
        return [f"{save.path} was written by {save.driver}, and this host runs guests with {driver}" + hint]
    if missing:
        return [f"the save {save.path} is incomplete: {', '.join(missing)} missing" + hint]
    if save.record is None:
        taken = save.path.stat().st_mtime_ns
        for key, path in disk_files(host, ref, config).items():
            with_time = _mtime(path)
            if with_time is not None and with_time > taken:
                found.append(f"{key} ({path}) was written after the save {save.path} (made without hivectl, "
                             "so only the times can be compared)")
        return [f"{ref.name}'s save is stale: {p}{hint}" for p in found]
    then = save.record.get("machine")
    if isinstance(then, dict):
        now = machine(config)
        changed = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
        if changed:
            shown = ", ".join(f"{k} ({then.get(k, '-')!s} -> {now.get(k, '-')})" for k in changed[:6])
            more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
            found.append(f"the config changed since the save: {shown}{more}")
    stamps = save.record.get("disks")
    if isinstance(stamps, dict):
        current = disk_stamps(host, ref, config)
        for key in sorted(set(stamps) | set(current)):
            if key not in stamps or key not in current:
                continue  # a disk added or removed is a config change, reported above
            if stamps[key] != current[key]:
                what = "is missing" if current[key] is None else "was written since the save (snapshot, rollback "\
                       "or another program)"
                found.append(f"{key} ({disk_files(host, ref, config).get(key)}) {what}")
    return [f"{ref.name}'s save {save.path} is stale: {p}{hint}" for p in found]


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def discard_target(ref: GuestRef, when: float | None = None) -> Path:
    """``NAME.save.discarded-YYYYMMDDTHHMMSS``: the directory a discarded save is moved into."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if when is None else when))
    target = ref.layout.save_file(DISCARDED + stamp)
    number = 1
    while target.exists():
        number += 1
        target = ref.layout.save_file(f"{DISCARDED}{stamp}.{number}")
    return target


def discard_plan(save: Save, target: Path) -> list[list[str]]:
    """What :func:`discard` does, as commands: make the directory, move every file of the save into it."""
    return [["mkdir", "-m", "700", str(target)], ["mv", *map(str, save.files()), f"{target}/"]]


def discard(save: Save, target: Path) -> list[Path]:
    """Move the save's files into ``target`` (renames within the guest directory: nothing is copied or
    lost); returns their new paths. ``NAME.save`` goes last, so the guest reads Suspended until the end."""
    target.mkdir(mode=0o700)
    moved = []
    for path in sorted(save.files(), key=lambda p: p == save.path):
        os.rename(path, target / path.name)
        moved.append(target / path.name)
    return moved


def consume(save: Save) -> None:
    """Remove a save that a guest was resumed from: its state lives on in the running guest, and resuming
    it a second time would put memory from before onto disks written since."""
    for path in sorted(save.files(), key=lambda p: p != save.path):
        path.unlink(missing_ok=True)
