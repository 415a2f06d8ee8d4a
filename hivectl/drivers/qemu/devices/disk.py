"""Disks: vm-bhyve's ``diskN_*`` keys as QEMU drives and devices.

Emulation mapping (bhyve → QEMU device):

| ``diskN_type`` | QEMU |
|---|---|
| virtio-blk | ``virtio-blk-pci`` |
| ahci-hd / ahci-cd | ``ide-hd`` / ``ide-cd`` on ``ich9-ahci`` controllers (``ahci_device_limit`` each, at most 6) |
| nvme | ``nvme`` with a serial (bhyve's default ``NVME-<slot>-<function>`` unless ``ser=`` is given) |
| virtio-scsi | ``virtio-scsi-pci`` + ``scsi-hd`` backed by the disk (bhyve passes a CTL port instead) |
| virtio-9p | ``virtio-9p-pci`` over ``-fsdev local`` (``diskN_name`` is ``sharename=/host/dir``) |

``file`` images named ``*.qcow2`` are qcow2, every other disk is raw (see ``file_format``: the format is
never taken from content the guest can write). Options follow bhyve's meaning:
``nocache`` is O_DIRECT (``cache=none``), ``direct``/``sync`` is O_SYNC (``cache=writethrough``), both
give ``cache=directsync``; ``ro`` is ``readonly=on``; ``nodelete`` turns TRIM off (otherwise
``discard=unmap``, as bhyve passes deletes down); ``sectorsize=L[/P]`` sets the logical/physical block
sizes; ``bootindex=N`` and ``ser=`` are passed on. bhyve's nvme tuning knobs are accepted and ignored.
"""

from __future__ import annotations

from pathlib import Path

from hivectl import validate
from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import Props, join, props_text
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError
from hivectl.model.guest import Disk, GuestConfig
from hivectl.records import record
from hivectl.safety import disks as shared
from hivectl.store import GuestRef

QCOW2_MAGIC = b"QFI\xfb"
AHCI_TYPES = ("ahci-hd", "ahci-cd")
AHCI_PORTS = 6  # an ich9-ahci controller has six ports
INSTALL_BOOTINDEX = 1
FIRST_DISK_BOOTINDEX = 2
_BOOLEAN_OPTS = ("ro", "nocache", "direct", "sync", "nodelete")
_IGNORED_OPTS = frozenset({"maxq", "qsz", "ioslots", "eui64", "dsm", "iid"})  # bhyve-only tuning


@record(frozen=True)
class DiskOptions:
    """``diskN_opts`` parsed into what QEMU needs."""

    readonly: bool = False
    cache: str = ""  # "", "none", "writethrough" or "directsync"
    trim: bool = True
    logical: int = 0
    physical: int = 0
    bootindex: int | None = None
    serial: str = ""


def _sector_sizes(source: Path, key: str, value: str, text: str) -> tuple[int, int]:
    logical_text, _, physical_text = text.partition("/")
    physical_text = physical_text or logical_text
    if not (logical_text.isdigit() and physical_text.isdigit()):
        raise ConfigError(source, key, value, f"invalid sector size {text!r}: expected L or L/P in bytes")
    logical, physical = int(logical_text), int(physical_text)
    for size in (logical, physical):
        if size < 512 or size > 32768 or size & (size - 1):
            raise ConfigError(source, key, value, f"sector size {size} must be a power of two from 512 to 32768")
    if logical > physical:
        raise ConfigError(source, key, value, "the logical sector size cannot exceed the physical one")
    return logical, physical


def parse_options(source: Path, key: str, value: str) -> DiskOptions:
    """Parse ``diskN_opts`` (comma-separated ``name`` or ``name=value``), refusing what is unknown."""
    flags: dict[str, bool] = {}
    logical = physical = 0
    nvme_sectors = 0
    bootindex: int | None = None
    serial = ""
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, has_value, text = item.partition("=")
        if name in _BOOLEAN_OPTS:
            flags[name] = validate.boolean(source, key, text) if has_value else True
        elif name == "sectorsize" and has_value:
            logical, physical = _sector_sizes(source, key, value, text)
        elif name == "sectsz" and has_value:
            nvme_sectors = _sector_sizes(source, key, value, text)[0]
        elif name == "bootindex" and has_value:
            bootindex = validate.integer(source, key, text, 0, 65535)
        elif name in ("ser", "serial") and has_value:
            if not text or len(text) > 20 or not text.isprintable() or " " in text:
                raise ConfigError(source, key, value, "a disk serial is 1-20 printable characters without spaces")
            serial = text
        elif name in _IGNORED_OPTS:
            continue
        else:
            raise ConfigError(source, key, value, f"unknown disk option {item!r} (known: ro, nocache, direct, "
                                                  "sync, nodelete, sectorsize=L[/P], bootindex=N, ser=TEXT)")
    if not logical and nvme_sectors:
        logical = physical = nvme_sectors
    uncached = flags.get("nocache", False)
    synced = flags.get("direct", False) or flags.get("sync", False)
    cache = {(True, True): "directsync", (True, False): "none", (False, True): "writethrough"}.get(
        (uncached, synced), "")
    return DiskOptions(flags.get("ro", False), cache, not flags.get("nodelete", False), logical, physical,
                       bootindex, serial)


def image_format(path: Path) -> str:
    """``qcow2`` when the file starts with the qcow2 magic, else ``raw`` (also when it cannot be read)."""
    try:
        with path.open("rb") as handle:
            return "qcow2" if handle.read(4) == QCOW2_MAGIC else "raw"
    except OSError:
        return "raw"


def file_format(disk: Disk, path: Path, source: Path) -> str:
    """The format of a ``file`` disk: ``qcow2`` only when its *name* says so (``*.qcow2``), else ``raw``.

    Never decided from the content alone: the guest writes that content, and a raw disk whose first sector
    the guest has set to a qcow2 header (naming a backing or data file) would, at the next boot, have QEMU
    (running as root) open any host file the guest chose. A raw-named disk that does start with the qcow2
    magic is refused rather than opened raw, so that a qcow2 image an administrator named ``*.img`` is not
    handed to the guest as a blank disk to be overwritten.
    """
    if path.name.endswith(".qcow2"):
        return "qcow2"
    if image_format(path) == "qcow2":
        raise ConfigError(source, f"{disk.key}_name", disk.name,
                          f"{path} starts with a qcow2 header but is not named *.qcow2; hivectl opens only disks "
                          "named *.qcow2 as qcow2 (a guest can write that header into its raw disk): rename a real "
                          "qcow2 image to NAME.qcow2 (and diskN_name), or clear the header of a raw one")
    return "raw"


def disk_path(ref: GuestRef, disk: Disk, source: Path) -> Path:
    """Where a disk's data is, by ``diskN_dev`` (vm-bhyve's rules, composed by ``GuestLayout.disk_path``)."""
    kind = disk.backing  # what diskN_dev means (hivectl/model/backing.py)
    if not kind.supported:
        raise ConfigError(source, f"{disk.key}_dev", disk.dev, f"{kind.label} disks are not supported by the qemu "
                                                               "driver")
    if kind.managed:
        shared.check_name(source, f"{disk.key}_name", disk.name, zvol=kind.zvol, in_directory=kind.in_directory)
    if kind.zvol and not ref.dataset:
        raise ConfigError(source, f"{disk.key}_dev", disk.dev, "zvol disks need a guest on a ZFS datastore")
    if kind.literal and not kind.share and not disk.name.startswith("/"):
        raise ConfigError(source, f"{disk.key}_name", disk.name, "a custom disk is a full path")
    if kind.in_directory:
        # The bhyve driver's rule, shared (hivectl/safety/disks.py): inside the guest directory, no symlink.
        return shared.file_disk(ref.directory, source, f"{disk.key}_name", disk.name)
    return Path(ref.layout.disk_path(disk.dev, disk.name))


def is_share(disk: Disk) -> bool:
    """A virtio-9p share: a host directory, not a disk image."""
    return disk.type == "virtio-9p"


def share_of(disk: Disk, source: Path) -> tuple[str, Path]:
    """A 9p disk's ``sharename=/host/dir``."""
    tag, sep, directory = disk.name.partition("=")
    if not sep or not tag or not directory.startswith("/"):
        raise ConfigError(source, f"{disk.key}_name", disk.name, "a virtio-9p disk is sharename=/host/directory")
    return tag, Path(directory)


def drive_args(ident: str, path: Path, fmt: str, opts: DiskOptions, cdrom: bool = False) -> list[str]:
    props: Props = [("if", "none"), ("id", ident), ("file", str(path)), ("format", fmt)]
    if cdrom:
        props.append(("media", "cdrom"))
    if cdrom or opts.readonly:
        props.append(("readonly", "on"))
    if opts.cache:
        props.append(("cache", opts.cache))
    if opts.trim and not (cdrom or opts.readonly):
        props.append(("discard", "unmap"))
    return ["-drive", props_text(props)]


def _block_props(opts: DiskOptions, bootindex: int | None) -> Props:
    props: Props = []
    if opts.serial:
        props.append(("serial", opts.serial))
    if opts.logical:
        props += [("logical_block_size", str(opts.logical)), ("physical_block_size", str(opts.physical))]
    if bootindex is not None:
        props.append(("bootindex", str(bootindex)))
    return props


class _BootOrder:
    """Boot indices: explicit ``bootindex=`` options win; other disks follow in order from 2 (1 is the
    install media), skipping the explicit ones so two devices never claim the same index."""

    def __init__(self, explicit: set[int]) -> None:
        self.explicit = explicit
        self.next = FIRST_DISK_BOOTINDEX

    def take(self, opts: DiskOptions) -> int:
        if opts.bootindex is not None:
            return opts.bootindex
        while self.next in self.explicit or self.next == INSTALL_BOOTINDEX:
            self.next += 1
        self.next += 1
        return self.next - 1


def disk_devices(ref: GuestRef, config: GuestConfig, problems: list[ConfigError]) -> list[PciDevice]:
    """The PCI devices for every disk, in config order; invalid disks are reported and left out."""
    source = config.path
    parsed: list[tuple[Disk, DiskOptions]] = []
    for disk in config.disks:
        try:
            parsed.append((disk, parse_options(source, f"{disk.key}_opts", disk.opts)))
        except ConfigError as error:
            problems.append(error)
    explicit: dict[int, Disk] = {}
    for disk, opts in parsed:
        if opts.bootindex is None:
            continue
        if opts.bootindex in explicit:
            other = explicit[opts.bootindex].key
            problems.append(ConfigError(source, f"{disk.key}_opts", disk.opts,
                                        f"bootindex={opts.bootindex} is already used by {other}"))
        explicit.setdefault(opts.bootindex, disk)
    order = _BootOrder(set(explicit))
    try:
        limit = min(validate.integer(source, "ahci_device_limit", config.get("ahci_device_limit") or "1", 1, 32),
                    AHCI_PORTS)
    except ConfigError as error:
        problems.append(error)
        limit = 1
    devices: list[PciDevice] = []
    ahci: PciDevice | None = None
    ahci_id = ""
    ahci_used = 0
    for disk, opts in parsed:
        try:
            if disk.type in AHCI_TYPES:
                if ahci is None or ahci_used >= limit:
                    ahci_id, ahci_used = f"ahci{disk.index}", 0
                    ahci = PciDevice(disk.key, "ich9-ahci", [("id", ahci_id)], disk.slot, f"{disk.key}_slot")
                    devices.append(ahci)
                elif disk.slot:
                    raise ConfigError(source, f"{disk.key}_slot", disk.slot,
                                      f"this disk shares the AHCI controller of {ahci.owner} (ahci_device_limit); "
                                      f"pin {ahci.owner} instead")
                ahci.after += _ahci_port(ref, disk, opts, source, f"{ahci_id}.{ahci_used}", order)
                ahci_used += 1
            else:
                devices.append(_single(ref, disk, opts, source, order))
        except ConfigError as error:
            problems.append(error)
    return devices


def _ahci_port(ref: GuestRef, disk: Disk, opts: DiskOptions, source: Path, bus: str, order: _BootOrder) -> list[str]:
    path = disk_path(ref, disk, source)
    ident = f"disk{disk.index}"
    if disk.type == "ahci-cd":
        if opts.logical:
            raise ConfigError(source, f"{disk.key}_opts", disk.opts, "an ahci-cd has fixed 2048-byte sectors")
        drive = drive_args(ident, path, "raw", opts, cdrom=True)
        props = [("bus", bus), ("drive", ident), *_block_props(opts, order.take(opts))]
        return [*drive, "-device", join("ide-cd", props)]
    if opts.logical and opts.logical != 512:
        raise ConfigError(source, f"{disk.key}_opts", disk.opts,
                          "ahci-hd disks have 512-byte logical sectors under QEMU (sectorsize=512/4096 works)")
    fmt = file_format(disk, path, source) if disk.backing.in_directory else "raw"
    drive = drive_args(ident, path, fmt, opts)
    return [*drive, "-device", join("ide-hd", [("bus", bus), ("drive", ident), *_block_props(opts, order.take(opts))])]


def _single(ref: GuestRef, disk: Disk, opts: DiskOptions, source: Path, order: _BootOrder) -> PciDevice:
    ident = f"disk{disk.index}"
    pin = (disk.slot, f"{disk.key}_slot")
    if is_share(disk):
        tag, directory = share_of(disk, source)
        fsdev: Props = [("id", f"fsdev{disk.index}"), ("path", str(directory)), ("security_model", "passthrough")]
        if opts.readonly:
            fsdev.append(("readonly", "on"))
        return PciDevice(disk.key, "virtio-9p-pci", [("fsdev", f"fsdev{disk.index}"), ("mount_tag", tag)], *pin,
                         before=["-fsdev", join("local", fsdev)])
    path = disk_path(ref, disk, source)
    fmt = file_format(disk, path, source) if disk.backing.in_directory else "raw"
    drive = drive_args(ident, path, fmt, opts)
    props = [("drive", ident), *_block_props(opts, order.take(opts))]
    if disk.type == "virtio-blk":
        return PciDevice(disk.key, "virtio-blk-pci", props, *pin, before=drive)
    if disk.type == "nvme":
        return PciDevice(disk.key, "nvme", props, *pin, before=drive)
    if disk.type == "virtio-scsi":
        controller = f"scsi{disk.index}"
        return PciDevice(disk.key, "virtio-scsi-pci", [("id", controller)], *pin,
                         after=[*drive, "-device", join("scsi-hd", [("bus", f"{controller}.0"), *props])])
    raise ConfigError(source, f"{disk.key}_type", disk.type, "not an emulation the qemu driver knows")


def name_nvme_serials(devices: list[PciDevice]) -> None:
    """Give nvme devices without ``ser=`` bhyve's default serial ``NVME-<slot>-<function>`` (needs addresses)."""
    for device in devices:
        if device.driver == "nvme" and not any(key == "serial" for key, _ in device.props):
            device.props.insert(1, ("serial", f"NVME-{device.slot}-{device.function}"))


class Disks(QemuDeviceKind):
    name = "disk"
    slot_order = 10

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        return disk_devices(ctx.request.ref, ctx.request.config, ctx.problems)

    def placed(self, devices: list[PciDevice]) -> None:
        name_nvme_serials(devices)


KIND = Disks()
