"""Creating, changing and removing guests on disk (``create``, ``add``, ``rename``, ``destroy``).

Each operation validates everything first, then builds a ``Plan``; nothing touches the host before the
plan is applied, so ``--dry-run`` shows exactly what would happen and a failure part-way is rolled back.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hivectl import validate
from hivectl.errors import Conflict, HivectlError, NotFound, UsageError
from hivectl.model import backing
from hivectl.model.guest import GuestConfig
from hivectl.model.identity import new_mac, new_uuid
from hivectl.model.layout import config_name
from hivectl.model.staging import staging_name, tombstone_name
from hivectl.ops import macs
from hivectl.plan import (
    Action,
    Call,
    Edited,
    EditFile,
    Plan,
    Run,
    SparseFile,
    WriteFile,
    config_edit,
    read_text,
)
from hivectl.rcfile import RcFile
from hivectl.runtime import guest_state
from hivectl.safety import disks as disk_rules
from hivectl.safety import values
from hivectl.staging import Collect, MakeStaging, Publish
from hivectl.storage.guards import stale_refusal
from hivectl.store import Datastore, GuestRef, Store

DEFAULT_DISK_SIZE = "20G"


def require_stopped(ref: GuestRef, action: str) -> None:
    state = guest_state(ref.directory, ref.name)
    if state.state != "Stopped":
        raise Conflict(f"cannot {action} {ref.name}: it is {state.label()}; stop it first")
    if state.stale:
        raise Conflict(stale_refusal(ref.name, action))


def disk_plan(ref: GuestRef, index: int, dev: str, disk_name: str, size_text: str, zvol_opts: str,
              source: str) -> list[Run | SparseFile]:
    """The action that makes one new disk: a sparse file, a (sparse) zvol, or nothing for custom disks."""
    size = validate.disk_size(source, f"disk{index}_size", size_text)
    kind = backing.of(dev)
    disk_rules.check_name(source, f"disk{index}_name", disk_name, zvol=kind.zvol, in_directory=kind.in_directory)
    if kind.zvol:
        if ref.dataset is None:
            raise HivectlError(f"{source}: disk{index}_dev={dev!r}: zvols need a ZFS datastore, and "
                               f"{ref.datastore.name} ({ref.datastore.spec}) is a plain directory")
        argv = ["zfs", "create", "-sV" if kind.sparse else "-V", size_text, "-o", "volmode=dev"]
        for opt in values.zfs_properties(source, "zfs_zvol_opts", zvol_opts):  # never volmode, mountpoint...
            argv += ["-o", opt]
        volume = f"{ref.dataset}/{disk_name}"
        return [Run([*argv, volume], undo_argv=["zfs", "destroy", "-r", volume])]
    if kind.in_directory:
        # The drivers refuse such a disk at start; made here, it would land outside the guest's directory,
        # where 'destroy' never removes it (the one rule: hivectl/safety/disks.py).
        return [SparseFile(disk_rules.file_disk(ref.directory, source, f"disk{index}_name", disk_name), size,
                           size_text)]
    return []


@dataclass
class CreateRequest:
    name: str
    template: str = "default"
    datastore: str = "default"
    size: str | None = None
    cpu: str | None = None
    memory: str | None = None
    image: str | None = None  # -i: cloud image written onto disk0 (hivectl.storage.diskimage)
    cloud_init: bool = False  # -C, with -k / -u / -n (hivectl.storage.cloudinit)
    keyfile: Path | None = None
    userdata: Path | None = None
    netconfig: list[str] = field(default_factory=list)


def plan_create(store: Store, req: CreateRequest) -> tuple[Plan, GuestRef]:
    """Validate a ``create`` request and plan it (vm-bhyve's ``core::create`` in ``lib/vm-core``)."""
    validate.guest_name(None, "name", req.name, new=True)
    if req.size is not None:
        validate.disk_size(None, "-s", req.size)
    if req.cpu is not None:
        validate.cpu_count(None, "-c", req.cpu)
    if req.memory is not None:
        validate.memory(None, "-m", req.memory)
    if not req.cloud_init and (req.keyfile or req.userdata or req.netconfig):
        raise UsageError("-k, -u and -n configure cloud-init and need -C")
    template_path = store.template_path(req.template)
    datastore = store.datastore(req.datastore)
    if not datastore.holds_guests:
        raise UsageError(f"datastore {datastore.name} is an {datastore.kind} store; guests cannot live there")
    store.require_free(req.name)

    template = GuestConfig.load(template_path, req.template)
    template.check(template=True)
    if not template.get("disk0_name"):
        raise HivectlError(f"{template_path}: disk0_name is not set; a template must define at least one disk")

    final = GuestRef(req.name, datastore)
    ref = final.staged(staging_name(req.name))  # built out of sight, published by one rename at the end
    conf = RcFile(ref.conf_path, template.rc.text())
    conf.set("uuid", new_uuid())
    conf.set("network0_mac", new_mac(macs.macs_in_use(store)))  # checked again under the MAC lock when written
    if req.cpu is not None:
        conf.set("cpu", req.cpu)
    if req.memory is not None:
        conf.set("memory", req.memory)

    plan = collect_plan(store, req.name, datastore)
    if ref.dataset is not None:
        argv = ["zfs", "create"]
        for opt in values.zfs_properties(template_path, "zfs_dataset_opts", template.get("zfs_dataset_opts")):
            argv += ["-o", opt]
        staging = MakeStaging(ref.directory, ref.dataset, [*argv, ref.dataset])
    else:
        staging = MakeStaging(ref.directory)
    plan.add(staging)
    disks: list[Run | SparseFile] = []
    for disk in template.disks:
        size_text = template.get(f"disk{disk.index}_size") or DEFAULT_DISK_SIZE
        if disk.index == 0 and req.size is not None:
            size_text = req.size
        disks += disk_plan(ref, disk.index, disk.dev, disk.name, size_text, template.get("zfs_zvol_opts"),
                           str(template_path))
        conf.unset(f"disk{disk.index}_size")
    storage = _plan_image_and_seed(store, ref, req, template, conf)
    plan.add(macs.WriteNewConfig(store, ref.conf_path, conf, ["cp", str(template_path), str(ref.conf_path)],
                                 fixed=req.cloud_init))
    plan.extend(disks)
    plan.extend(storage)
    plan.add(publish(staging, ref, final))
    return plan, final


def publish(staging: MakeStaging | None, ref: GuestRef, final: GuestRef) -> Publish:
    """The one rename that makes the guest built under ``ref`` (a staging name) appear as ``final``."""
    return Publish(staging, ref.directory, final.directory, ref.dataset, final.dataset)


def collect_plan(store: Store, name: str, datastore: Datastore | None = None) -> Plan:
    """A plan that starts by collecting what killed or failed commands left for ``name`` (and in
    ``datastore``): staging and tombstone entries nobody holds any more (``hivectl/staging.py``)."""
    plan = Plan()
    for leftover in store.leftovers(name, datastore):
        plan.add(Collect(leftover.path, leftover.dataset))
    return plan


def _plan_image_and_seed(store: Store, ref: GuestRef, req: CreateRequest, template: GuestConfig,
                         conf: RcFile) -> list[Action]:
    """``-i`` (cloud image onto disk0) and ``-C`` (cloud-init seed); may add keys to ``conf``."""
    actions: list[Action] = []
    if req.image is not None:
        from hivectl.storage import diskimage

        disk0 = template.disks[0]
        if not disk0.backing.managed:
            raise UsageError(f"-i needs disk0 to be a file or zvol, not {disk0.dev}")
        image = diskimage.inspect(diskimage.resolve(store, req.image))
        size_text = req.size or template.get("disk0_size") or DEFAULT_DISK_SIZE
        diskimage.check_fits(image, validate.disk_size(None, "-s", size_text))
        try:
            target = ref.layout.disk_path(disk0.dev, disk0.name)
        except LookupError as error:
            raise UsageError(f"-i: {error}") from None
        actions.append(diskimage.WriteImage(image, target))
    if req.cloud_init:
        from hivectl.storage.cloudinit import CloudInitRequest, plan_cloud_init

        actions += plan_cloud_init(ref, conf, CloudInitRequest(req.keyfile, req.userdata, list(req.netconfig)),
                                   macs.macs_in_use(store))
    return actions


def plan_add_disk(store: Store, ref: GuestRef, size: str, dev: str = "file") -> Plan:
    """``add -d disk``: the next free diskN, emulation copied from the last disk (virtio-blk if none).

    The index is chosen again under the config's lock when the plan is applied, and the disk is made
    under that lock too, so concurrent ``add -d disk`` each get their own diskN (docs/reliability.md).
    """
    validate.choice(None, "-t", dev, backing.MANAGED)

    def change(conf: RcFile, applying: bool) -> tuple[dict[str, str], list[Action]]:
        config = GuestConfig(conf, ref.name)
        index = config.next_free("disk", "name")
        # The emulation of the last hard disk (a cloud-init seed or install CD must not turn new disks into CDs).
        hard = [d.type for d in config.disks if not d.is_cd]
        emulation = hard[-1] if hard else "virtio-blk"
        disk_name = f"disk{index}.img" if backing.of(dev).in_directory else f"disk{index}"
        path = ref.directory / disk_name
        actions: list[Action] = []
        # Checked when applied, under the config's lock: while planning, the file may be the disk another
        # 'add -d disk' is making right now, whose config line is not written yet.
        if applying and os.path.lexists(path):
            if not _empty_leftover_disk(path, config):
                raise Conflict(f"{path} already exists; refusing to overwrite a disk")
            actions.append(Call(["rm", str(path)], lambda: path.unlink(missing_ok=True)))
        actions += [*disk_plan(ref, index, dev, disk_name, size, config.get("zfs_zvol_opts"),
                                            "command line")]
        return {f"disk{index}_type": emulation, f"disk{index}_name": disk_name, f"disk{index}_dev": dev}, actions

    return Plan([_conf_edit(ref, change)])


def _empty_leftover_disk(path: Path, config: GuestConfig) -> bool:
    """A disk file an ``add -d disk`` killed before its config edit left: named by no diskN of the config,
    a plain file with one link and not a single data block (all holes: removing it loses nothing)."""
    if any(disk.name == path.name for disk in config.disks):
        return False
    info = os.lstat(path)
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_blocks == 0


def plan_add_network(store: Store, ref: GuestRef, switch: str) -> Plan:
    """``add -d network``: the next free networkN on ``switch`` with a fresh stable MAC (both chosen again
    under the config's lock when applied, so concurrent ``add -d network`` each get their own NIC)."""
    validate.name(None, "-s", switch, "switch name")
    chosen: dict[str, str] = {}  # the MAC shown by the plan is the one written, unless taken meanwhile

    def change(conf: RcFile, applying: bool) -> tuple[dict[str, str], list[Action]]:
        config = GuestConfig(conf, ref.name)
        index = config.next_free("network", "type")
        nics = config.nics
        emulation = nics[-1].type if nics else "virtio-net"
        updates = {f"network{index}_type": emulation, f"network{index}_switch": switch}
        key = f"network{index}_mac"
        if not config.get(key):
            taken = macs.macs_in_use(store) | _macs(config)  # under the MAC lock when applied
            if chosen.get(key, "") in taken or key not in chosen:
                chosen[key] = new_mac(taken)
            updates[key] = chosen[key]
        return updates, []

    return Plan([macs.UnderMacLock(store, _conf_edit(ref, change))])


def _macs(config: GuestConfig) -> set[str]:
    return {value.lower() for key, value in config.rc.items() if key.startswith("network") and key.endswith("_mac")}


def _conf_edit(ref: GuestRef, change: Callable[[RcFile, bool], tuple[dict[str, str], list[Action]]]) -> EditFile:
    """A sysrc-style edit of the guest's config: planned (and validated) on the file as read now, redone and
    validated again on the file as it is under its lock when applied (``hivectl.plan.EditFile``)."""

    def apply(conf: RcFile) -> list[Action]:
        updates, actions = change(conf, True)
        for key, value in updates.items():
            conf.set(key, value)
        GuestConfig(conf, ref.name).check()
        return actions

    planned = RcFile(ref.conf_path, read_text(ref.conf_path) or "")
    updates, actions = change(planned, False)
    for key, value in updates.items():
        planned.set(key, value)
    GuestConfig(planned, ref.name).check()  # refuses an invalid edit before anything runs
    shown = [argv for action in actions for argv in action.argvs()]
    shown.append(["sysrc", "-f", str(ref.conf_path), *[f"{k}={v}" for k, v in updates.items()]])
    return config_edit(ref.conf_path, apply, shown)


def plan_set_keys(ref: GuestRef, updates: dict[str, str]) -> Plan:
    return Plan([_conf_edit(ref, lambda conf, applying: (dict(updates), []))])


def plan_rename(store: Store, old: str, new: str) -> Plan:
    """Rename a stopped guest (vm-bhyve's ``lib/vm-core``) so that it is complete under one name at every instant.

    ``NEW.conf`` is written next to ``OLD.conf`` first (the guest is still OLD, complete); one rename of the
    directory (``zfs rename`` of the dataset) then publishes NEW, complete; removing the stale ``OLD.conf``
    is the clean-up. A rename killed after the publish is finished by running it again: ``ref`` is None
    (OLD is gone) and NEW's directory still holds ``OLD.conf``, so only the clean-up is planned.
    """
    validate.guest_name(None, "name", old)
    validate.guest_name(None, "new name", new, new=True)
    ref = store.find(old)
    if ref is None:
        done = store.find(new)
        if done is None or old == new or not (done.directory / config_name(old)).is_file():
            raise NotFound(f"guest {old} does not exist")
        leftover = done.directory / config_name(old)
        plan = collect_plan(store, new)
        plan.add(Call(["rm", str(leftover)], lambda: leftover.unlink(missing_ok=True)))
        return plan
    require_stopped(ref, "rename")
    store.require_free(new)
    new_ref = GuestRef(new, ref.datastore)
    plan = collect_plan(store, new)
    plan.extend(collect_plan(store, ref.name).actions)
    text = ref.conf_path.read_text(errors="surrogateescape")
    mode = ref.conf_path.stat().st_mode & 0o7777
    early = ref.directory / config_name(new)  # NEW.conf inside OLD's directory, before the publish
    plan.add(WriteFile(early, text, ["cp", "-p", str(ref.conf_path), str(early)], mode))
    plan.add(publish(None, ref, new_ref))
    stale = new_ref.directory / config_name(ref.name)
    plan.add(Call(["rm", str(stale)], lambda: stale.unlink(missing_ok=True)))
    return plan


def plan_destroy(store: Store, name: str) -> Plan:
    """Remove a stopped guest entirely: its dataset (with zvols and snapshots) and its directory.

    The guest first disappears with one rename to a tombstone (``hivectl/model/staging.py``), then the
    tombstone is removed. If that removal fails, the command fails naming what remains, and running
    ``destroy NAME`` again (the guest is gone, its tombstone is not) finishes the job.
    """
    validate.guest_name(None, "name", name)
    ref = store.find(name)
    if ref is None:
        plan = collect_plan(store, name)
        if not plan.actions:
            raise NotFound(f"guest {name} does not exist")
        return plan
    require_stopped(ref, "destroy")
    plan = collect_plan(store, ref.name)
    grave = ref.staged(tombstone_name(ref.name))
    dataset = ref.dataset if ref.dataset is not None and _dataset_exists(store, ref) else None
    plan.add(Publish(None, ref.directory, grave.directory, dataset, grave.dataset if dataset else None))
    plan.add(Collect(grave.directory, grave.dataset if dataset else None))
    return plan


def _dataset_exists(store: Store, ref: GuestRef) -> bool:
    """Whether the guest has its own dataset (a guest copied in by hand on a ZFS datastore may not)."""
    assert ref.dataset is not None
    return store.host.run(["zfs", "list", "-H", "-o", "name", ref.dataset], check=False).status == 0


def plan_configure(ref: GuestRef, text: str, base: str | None = None) -> Plan:
    """``configure``/``edit``: replace the guest's config with ``text`` once every value in it is valid.

    The editor is the CLI's business; this is what happens to its result (and what the Python API and
    ``configure --dry-run`` share). Invalid text raises ``ValidationErrors`` naming file, key and value.
    ``base`` is the text the edit was made from (what the editor was opened on; default: the file now).
    The whole file is replaced, so it is written only if, under the config's lock, the file still holds
    ``base``: an edit made by another command while the editor was open is refused with ``Conflict``
    rather than silently overwritten (docs/reliability.md).
    """
    GuestConfig(RcFile(ref.conf_path, text), ref.name).check()
    current = ref.conf_path.read_text()
    expected = current if base is None else base
    plan = Plan()
    if text != expected:
        mode = ref.conf_path.stat().st_mode & 0o777

        def replace(now: str | None) -> Edited:
            # Compared as Path.read_text reads (universal newlines), as the editor was given the file.
            if now is None or now.replace("\r\n", "\n").replace("\r", "\n") != expected:
                raise Conflict(f"{ref.conf_path} changed while it was being edited; nothing was written "
                               "(edit it again)")
            return Edited(text)

        plan.add(EditFile(ref.conf_path, replace,
                          [["install", "-m", f"{mode:o}", "/dev/stdin", str(ref.conf_path)]], mode))
    return plan
