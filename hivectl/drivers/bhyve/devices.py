"""The PCI devices of one boot: what the config asks for, placed by ``slots`` and spelled for bhyve.

Device strings follow vm-bhyve byte for byte where vm-bhyve works (so ``ps`` shows what administrators
know), and the options are kept structured so ``kconfig`` can print the same devices as
bhyve_config(5) keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hivectl import validate
from hivectl.drivers.bhyve import disks as disk_rules
from hivectl.drivers.bhyve.model import AhciPort, Opt, PciDevice, check_text, parse_opts
from hivectl.drivers.bhyve.slots import (
    DiskReq,
    Layout,
    LayoutRequest,
    NicReq,
    PassthruReq,
    Placement,
    allocate,
    parse_pin,
)
from hivectl.errors import ConfigError, HivectlError
from hivectl.model.guest import Disk, GuestConfig, Nic
from hivectl.model.layout import VIRT_CONSOLE_PREFIX
from hivectl.net.ports import Port
from hivectl.safety import values
from hivectl.store import GuestRef

MAX_CONSOLE_PORTS = 16  # bhyve's virtio-console limit
SUN_PATH_MAX = 103  # FreeBSD's sockaddr_un path (104 bytes with the NUL)
_CONSOLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Fbuf:
    """The frame buffer of this boot (UEFI guests with ``graphics=yes``)."""

    listen: str
    port: int
    width: str = ""
    height: str = ""
    vga: str = ""
    password: str = ""
    wait: bool = False

    @property
    def address(self) -> str:
        """``ip:port`` as bhyve's ``tcp=`` and the console file want it (IPv6 in brackets)."""
        return f"[{self.listen}]:{self.port}" if ":" in self.listen else f"{self.listen}:{self.port}"


@dataclass
class DeviceContext:
    """What one boot's devices depend on besides the config."""

    ref: GuestRef
    config: GuestConfig
    ports: dict[int, Port]
    install_media: Path | None = None  # attached at install_slot on this boot
    null_iso: Path | None = None  # nulliso_fix's empty CD on this boot
    fbuf: Fbuf | None = None


# -- reading the config ------------------------------------------------------------------------------


def numbered(config: GuestConfig, prefix: str) -> list[tuple[int, str]]:
    """``passthru0``, ``passthru1``… or ``virt_console0``…: up to the first missing one (vm-bhyve's rule)."""
    found = []
    index = 0
    while config.values.get(f"{prefix}{index}", ""):
        found.append((index, config.values[f"{prefix}{index}"]))
        index += 1
    return found


def passthru_requests(config: GuestConfig) -> list[PassthruReq]:
    result = []
    for index, value in numbered(config, "passthru"):
        host, _, fixed = value.partition("=")
        pos = None
        if fixed:
            slot, func = fixed.split(":")
            if int(slot) > 31 or int(slot) in (0, 31):
                raise ConfigError(config.path, f"passthru{index}", value,
                                  "the guest slot after '=' must be 1-30 (0 and 31 are the host and LPC bridges)")
            pos = (int(slot), int(func))
        result.append(PassthruReq(f"passthru{index}", host.split("/")[0], pos))
    return result


def console_ports(config: GuestConfig, directory: Path) -> list[tuple[str, str]]:
    """virtio-console ports as (name, socket path): ``yes``/``on``/``1`` numbers the port, as vm-bhyve does."""
    result = []
    entries = numbered(config, "virt_console")
    if len(entries) > MAX_CONSOLE_PORTS:
        raise ConfigError(config.path, f"virt_console{MAX_CONSOLE_PORTS}", entries[MAX_CONSOLE_PORTS][1],
                          f"bhyve's virtio-console has at most {MAX_CONSOLE_PORTS} ports (virt_console0-15)")
    for index, value in entries:
        name = str(index) if value.lower() in ("yes", "on", "1") else value
        if not _CONSOLE_NAME.fullmatch(name) or name in (".", ".."):
            raise ConfigError(config.path, f"virt_console{index}", value,
                              "a port name uses letters, digits, '.', '_' and '-' (it names the socket file)")
        path = str(directory / f"{VIRT_CONSOLE_PREFIX}{name}")
        if len(path.encode()) > SUN_PATH_MAX:
            raise ConfigError(config.path, f"virt_console{index}", value,
                              f"the socket path {path} is longer than FreeBSD's {SUN_PATH_MAX} bytes")
        result.append((name, check_text(config.path, f"virt_console{index}", path)))
    return result


def nulliso_attached(config: GuestConfig, installing: bool) -> bool:
    """vm-bhyve's nulliso_fix: an empty CD on normal boots, only for ``loader=uefi`` exactly."""
    return not installing and config.loader == "uefi" and config.flag("nulliso_fix")


def layout_request(config: GuestConfig, *, install: bool, fbuf: bool) -> LayoutRequest:
    """The allocator's input for this config (install: something sits at install_slot on this boot)."""
    source = config.path
    ahci_limit = validate.integer(source, "ahci_device_limit", config.get("ahci_device_limit"), 1, 32)
    return LayoutRequest(
        uefi=config.is_uefi,
        start_slot=validate.integer(source, "start_slot", config.get("start_slot"), 1, 30),
        install_slot=validate.integer(source, "install_slot", config.get("install_slot"), 1, 30),
        ahci_limit=ahci_limit,
        hostbridge=not config.get("hostbridge").startswith("no"),
        disks=[DiskReq(d.key, d.type in disk_rules.AHCI_TYPES,
                       parse_pin(source, f"{d.key}_slot", d.slot) if d.slot else None) for d in config.disks],
        nics=[NicReq(n.key, parse_pin(source, f"{n.key}_slot", n.slot) if n.slot else None) for n in config.nics],
        rnd=config.flag("virt_random"),
        passthru=passthru_requests(config),
        fbuf=fbuf,
        xhci=config.flag("xhci_mouse"),
        hda=config.flag("sound"),
        console=bool(config.values.get("virt_console0")),
        install=install,
        source=source,
    )


# -- building devices --------------------------------------------------------------------------------


def build(ctx: DeviceContext) -> tuple[list[PciDevice], PciDevice | None, Layout]:
    """All devices in vm-bhyve's order, the install-slot device (placed last on the command line), the layout."""
    config = ctx.config
    installing = ctx.install_media is not None or ctx.null_iso is not None
    layout = allocate(layout_request(config, install=installing, fbuf=ctx.fbuf is not None))
    by_disk = {d.key: d for d in config.disks}
    by_nic = {n.key: n for n in config.nics}
    devices: list[PciDevice] = []
    install: PciDevice | None = None
    for placement in layout.placements:
        kind = placement.kind
        if kind == "hostbridge":
            amd = config.get("hostbridge") == "amd"
            devices.append(PciDevice(placement, "amd_hostbridge" if amd else "hostbridge"))
        elif kind == "lpc":
            devices.append(PciDevice(placement, "lpc"))
        elif kind == "disk":
            devices.append(_disk(ctx, placement, by_disk[placement.members[0]]))
        elif kind == "ahci":
            devices.append(_ahci(ctx, placement, [by_disk[m] for m in placement.members]))
        elif kind == "nic":
            devices.append(_nic(ctx, placement, by_nic[placement.members[0]]))
        elif kind == "rnd":
            devices.append(PciDevice(placement, "virtio-rnd"))
        elif kind == "passthru":
            devices.append(_passthru(ctx, placement))
        elif kind == "fbuf" and ctx.fbuf is not None:
            devices.append(_fbuf(placement, ctx.fbuf))
        elif kind == "xhci":
            devices.append(PciDevice(placement, "xhci", "tablet"))
        elif kind == "hda":
            devices.append(_hda(ctx, placement))
        elif kind == "console":
            devices.append(PciDevice(placement, "virtio-console",
                                     named=tuple(console_ports(config, ctx.ref.directory))))
        elif kind == "install":
            install = _install(ctx, placement, devices)
    _check_bootindex(ctx, [*devices, *([install] if install else [])])
    return devices, install, layout


def _disk(ctx: DeviceContext, placement: Placement, disk: Disk) -> PciDevice:
    path = disk_rules.disk_path(ctx.ref, ctx.config, disk)
    disk_rules.check_scsi(ctx.config, disk, path)
    opts = disk_rules.disk_opts(ctx.config, disk)
    return PciDevice(placement, disk.type, path, opts)


def _ahci(ctx: DeviceContext, placement: Placement, members: list[Disk]) -> PciDevice:
    ports = []
    for disk in members:
        opts = disk_rules.disk_opts(ctx.config, disk)
        ports.append(AhciPort("cd" if disk.type == "ahci-cd" else "hd",
                              disk_rules.disk_path(ctx.ref, ctx.config, disk), opts))
    return PciDevice(placement, "ahci", ports=tuple(ports))


def _backend(port: Port) -> str:
    """The backend text bhyve gets; a renamed tap needs ``type=tap`` (bhyve matches backends by name prefix)."""
    if port.backend:
        return port.backend
    if port.ifname.startswith(("tap", "vmnet")):
        return port.ifname
    return f"{port.ifname},type=tap"


def _nic(ctx: DeviceContext, placement: Placement, nic: Nic) -> PciDevice:
    port = ctx.ports.get(nic.index)
    if port is None:
        raise HivectlError(f"{nic.key} has no host port (the network planner returned none for it)")
    backend = _backend(port)
    for part in backend.split(","):
        if "\\" in part or "%" in part or not part:
            raise HivectlError(f"{nic.key}: backend {backend!r} cannot be given to bhyve")
    opts: list[Opt] = []
    if nic.mac:
        opts.append(Opt("mac", nic.mac))
    if nic.type == "virtio-net":
        mtu = nic.mtu or (str(port.mtu) if port.mtu and port.mtu != 1500 else "")
        if mtu:
            opts.append(Opt("mtu", mtu))
    return PciDevice(placement, nic.type, backend, tuple(opts))


def _passthru(ctx: DeviceContext, placement: Placement) -> PciDevice:
    key = placement.members[0]
    host = ctx.config.values[key].partition("=")[0]
    text = ctx.config.values.get(f"{key}_options", "")
    values.passthru_options(ctx.config.path, f"{key}_options", text)  # never bus/slot/func/pptdev
    opts = parse_opts(ctx.config.path, f"{key}_options", text)
    return PciDevice(placement, "passthru", host, opts)


def _fbuf(placement: Placement, fbuf: Fbuf) -> PciDevice:
    opts = [Opt("tcp", fbuf.address)]
    if fbuf.width:
        opts += [Opt("w", fbuf.width), Opt("h", fbuf.height)]
    if fbuf.vga:
        opts.append(Opt("vga", fbuf.vga))
    if fbuf.password:
        opts.append(Opt("password", fbuf.password, secret=True))
    if fbuf.wait:
        opts.append(Opt("wait"))
    return PciDevice(placement, "fbuf", opts=tuple(opts))


def _hda(ctx: DeviceContext, placement: Placement) -> PciDevice:
    source = ctx.config.path
    opts = [Opt("play", check_text(source, "sound_play", ctx.config.get("sound_play")))]
    rec = ctx.config.get("sound_rec")
    if rec:
        opts.append(Opt("rec", check_text(source, "sound_rec", rec)))
    return PciDevice(placement, "hda", opts=tuple(opts))


def _install(ctx: DeviceContext, placement: Placement, others: list[PciDevice]) -> PciDevice:
    """The install medium (vm-bhyve: ``ahci-cd,<iso>,ro,bootindex=1``; other images ``ahci-hd,<img>,ro``).

    ``bootindex=1`` makes the firmware try the medium first; if a disk already claims 1 (a guest set up to
    prefer its disk), the medium takes 0 so that installing still works instead of failing on a clash.
    """
    if ctx.install_media is None:
        assert ctx.null_iso is not None
        return PciDevice(placement, "ahci-cd", check_text(None, "null.iso", str(ctx.null_iso)))
    media = check_text(None, "install media", str(ctx.install_media))
    if media.lower().endswith(".iso"):
        used = {o.value for d in others for o in [*d.opts, *(x for p in d.ports for x in p.opts)]
                if o.name == "bootindex"}
        index = "0" if "1" in used and "0" not in used else "1"
        return PciDevice(placement, "ahci-cd", media, (Opt("ro"), Opt("bootindex", index)))
    return PciDevice(placement, "ahci-hd", media, (Opt("ro"),))


def _check_bootindex(ctx: DeviceContext, devices: list[PciDevice]) -> None:
    """Two devices with one ``bootindex`` make bhyve exit 4 at start; name both keys instead."""
    seen: dict[str, str] = {}
    for device in devices:
        options = [*device.opts, *(o for p in device.ports for o in p.opts)]
        for opt in options:
            if opt.name != "bootindex" or opt.value is None:
                continue
            if not opt.value.isdigit():
                raise ConfigError(ctx.config.path, _opts_key(device), opt.value, "bootindex is a whole number")
            where = _opts_key(device)
            if opt.value in seen:
                raise ConfigError(ctx.config.path, where, opt.value,
                                  f"bootindex={opt.value} is also used by {seen[opt.value]}")
            seen[opt.value] = where


def _opts_key(device: PciDevice) -> str:
    member = device.placement.members[0]
    if device.placement.kind in ("disk", "ahci"):
        return f"{member}_opts"
    if device.placement.kind == "passthru":
        return f"{member}_options"
    return "install media" if device.placement.kind == "install" else member
