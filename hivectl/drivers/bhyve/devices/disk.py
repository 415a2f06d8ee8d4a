"""Disks (``diskN_*``): where each lives on the host, its block emulation, its slot, its ``-s`` and ``-k`` text.

Paths follow vm-bhyve (``lib/vm-run``, ``vm_bhyve_device_disks``): ``file`` disks are in the guest
directory, ``zvol`` and ``sparse-zvol`` are ``/dev/zvol/<datastore dataset>/NAME/<name>``, ``custom`` is a
literal path, and a virtio-9p share is written ``sharename=/host/dir`` with ``diskN_dev=9p``. Everything
that bhyve would only reject at start (exit 4 with a generic message) is refused here with the key that
causes it; the path itself is composed by ``GuestLayout.disk_path`` (hivectl/model/layout.py).

Slots: functions 0-7 of a slot, then the next, from ``start_slot``; under UEFI every disk gets its own
slot (the firmware only boots function 0). With ``ahci_device_limit`` N > 1, up to N ``ahci-hd``/``ahci-cd``
disks share one ``ahci,hd:…,cd:…`` controller (bhyve(8): a controller has 32 ports).
"""

from __future__ import annotations

from hivectl import validate
from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs, opt_pairs, opt_text
from hivectl.drivers.bhyve.model import AhciPort, Opt, PciDevice, check_text, parse_opts
from hivectl.drivers.bhyve.slots import Functions, Item, Placement, Rule, parse_pin
from hivectl.errors import ConfigError
from hivectl.model.guest import Disk, GuestConfig
from hivectl.patterns import Pattern
from hivectl.safety import disks as shared
from hivectl.safety import values
from hivectl.safety.values import bhyve_token
from hivectl.store import GuestRef

AHCI_TYPES = ("ahci-hd", "ahci-cd")
SHARED_CONTROLLER = "ahci"  # the placement kind of a controller several disks share
_SHARE = Pattern(r"([A-Za-z0-9_.-]+)=(/.*)")
_NO_SCSI_OPTS = ("ro", "nocache", "direct", "sectorsize")


def is_share(disk: Disk) -> bool:
    """A virtio-9p share: a host directory, not a block device (no loader can read it as a disk)."""
    return disk.type == "virtio-9p"


def disk_path(ref: GuestRef, config: GuestConfig, disk: Disk) -> str:
    """The host path (FreeBSD spelling) of a disk's data, or ``share=/dir`` for a 9p share."""
    source = config.path
    name_key, dev_key = f"{disk.key}_name", f"{disk.key}_dev"
    kind = disk.backing  # what diskN_dev means (hivectl/model/backing.py)
    if is_share(disk) != kind.share:
        raise ConfigError(source, dev_key, disk.dev, f"{disk.key}_type=virtio-9p and {disk.key}_dev=9p go "
                                                     f"together (this disk has type {disk.type!r})")
    if not kind.supported:
        raise ConfigError(source, dev_key, disk.dev, f"{kind.label} disks are not supported by hivectl's bhyve "
                                                     "driver; use diskN_dev=custom with the device's /dev path")
    if kind.managed:  # the one disk rule (hivectl/safety/disks.py)
        shared.check_name(source, name_key, disk.name, zvol=kind.zvol, in_directory=kind.in_directory)
    if kind.zvol:
        if ref.dataset is None:
            raise ConfigError(source, dev_key, disk.dev, f"zvols need a ZFS datastore; {ref.datastore.name} "
                                                         f"({ref.datastore.spec}) is a plain directory")
        return check_text(source, name_key, ref.layout.disk_path(disk.dev, disk.name))
    if kind.share:
        match = _SHARE.fullmatch(disk.name)
        if not match:
            raise ConfigError(source, name_key, disk.name, "a 9p share is written sharename=/host/directory")
        return check_text(source, name_key, disk.name)
    if kind.literal:
        if not disk.name.startswith("/"):
            raise ConfigError(source, name_key, disk.name, "a custom disk is a full path starting with '/'")
        return check_text(source, name_key, disk.name)
    shared.file_disk(ref.directory, source, name_key, disk.name)
    return check_text(source, name_key, ref.layout.disk_path(disk.dev, disk.name))


def share_parts(path: str) -> tuple[str, str]:
    """``share=/dir`` → ``("share", "/dir")`` (validated by ``disk_path``)."""
    name, _, directory = path.partition("=")
    return name, directory


def disk_opts(config: GuestConfig, disk: Disk) -> tuple[Opt, ...]:
    """``diskN_opts`` as options; inside a shared AHCI controller ``hd:``/``cd:`` would start a new port."""
    key = f"{disk.key}_opts"
    values.disk_options(config.path, key, disk.opts, disk.type)  # only options bhyve defines for this device
    opts = parse_opts(config.path, key, disk.opts)
    if disk.type == "virtio-scsi" and any(o.name in _NO_SCSI_OPTS for o in opts):
        bad = next(o.name for o in opts if o.name in _NO_SCSI_OPTS)
        raise ConfigError(config.path, key, disk.opts, f"virtio-scsi passes a CTL port through and has no "
                                                       f"{bad!r} option")
    return opts


def check_scsi(config: GuestConfig, disk: Disk, path: str) -> None:
    """virtio-scsi hands a CAM target layer port to the guest; a file path cannot work."""
    if disk.type == "virtio-scsi" and not path.startswith("/dev/cam/ctl"):
        raise ConfigError(config.path, f"{disk.key}_name", disk.name,
                          "virtio-scsi needs a CTL port: diskN_dev=custom and diskN_name=/dev/cam/ctl[PP.VP]")


def single_port_keys(device: PciDevice, node: str) -> Pairs:
    """An ``ahci-hd``/``ahci-cd`` device is an AHCI controller with one port (bhyve_config(5))."""
    port = f"{node}.port.0"
    return [(f"{node}.device", "ahci"), (f"{port}.type", device.emulation[-2:]), (f"{port}.path", device.head or ""),
            *opt_pairs(port, device.opts)]


class DiskKind(DeviceKind):
    name = "disk"
    slot_order = 20
    placements = ("disk", SHARED_CONTROLLER)

    def rule(self, boot: LayoutInput) -> Rule | None:
        config = boot.config
        source = config.path
        limit = validate.integer(source, "ahci_device_limit", config.get("ahci_device_limit"), 1, 32)
        items = tuple(Item(d.key, parse_pin(source, f"{d.key}_slot", d.slot) if d.slot else None,
                           d.type in AHCI_TYPES) for d in config.disks)
        return Functions(self.name, items, slot_each=config.is_uefi, share_kind=SHARED_CONTROLLER,
                         share_limit=limit, share_label="the shared AHCI controller of ")

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        by_key = {d.key: d for d in ctx.config.disks}
        if placement.kind == SHARED_CONTROLLER:
            ports = []
            for disk in (by_key[m] for m in placement.members):
                opts = disk_opts(ctx.config, disk)
                ports.append(AhciPort("cd" if disk.type == "ahci-cd" else "hd",
                                      disk_path(ctx.ref, ctx.config, disk), opts))
            return PciDevice(placement, "ahci", ports=tuple(ports))
        disk = by_key[placement.members[0]]
        path = disk_path(ctx.ref, ctx.config, disk)
        check_scsi(ctx.config, disk, path)
        return PciDevice(placement, disk.type, path, disk_opts(ctx.config, disk))

    def conf(self, device: PciDevice) -> str:
        if device.emulation != "ahci":
            return super().conf(device)
        parts = []
        for port in device.ports:
            parts += [f"{port.type}:{bhyve_token(port.path)}", *(opt_text(o) for o in port.opts)]
        return ",".join(parts)

    def keys(self, device: PciDevice, node: str) -> Pairs:
        emulation, head = device.emulation, device.head or ""
        if emulation in AHCI_TYPES:
            return single_port_keys(device, node)
        pairs: Pairs = [(f"{node}.device", emulation)]
        if emulation == "ahci":
            for index, ahci_port in enumerate(device.ports):
                port = f"{node}.port.{index}"
                pairs += [(f"{port}.type", ahci_port.type), (f"{port}.path", ahci_port.path),
                          *opt_pairs(port, ahci_port.opts)]
            return pairs
        if emulation in ("virtio-blk", "nvme"):
            pairs.append((f"{node}.path", head))
        elif emulation == "virtio-scsi":
            pairs.append((f"{node}.dev", head))
        elif emulation == "virtio-9p":
            share, _, path = head.partition("=")
            pairs += [(f"{node}.sharename", share), (f"{node}.path", path)]
        return pairs + opt_pairs(node, device.opts)

    def opts_key(self, device: PciDevice) -> str:
        return f"{device.placement.members[0]}_opts"


KIND = DiskKind()
