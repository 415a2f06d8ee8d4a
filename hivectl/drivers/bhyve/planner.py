"""One boot of one guest, planned: prepare actions, loader command, bhyve command, console lines.

Pure except for read-only questions to the Host (does ``/dev/vmm/NAME`` exist, is the UEFI variable
store already there, which VNC port is free). ``Planned`` keeps the intermediate products (the structured
invocation, the bhyve_config text, device.map and grub.cfg) because golden tests compare them all.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers import swtpm
from hivectl.drivers.base import BootPlan, BootRequest
from hivectl.drivers.bhyve import devices, graphics, kconfig, loaders, options, render
from hivectl.drivers.bhyve.actions import CopyIfMissing, RemoveFiles
from hivectl.drivers.bhyve.devices import disk as disk_rules
from hivectl.drivers.bhyve.devices import tpm as tpm_rules
from hivectl.drivers.bhyve.model import Invocation, check_text
from hivectl.errors import ConfigError
from hivectl.host.base import Host
from hivectl.plan import Action, Run, WriteFile
from hivectl.records import record


@record
class Planned:
    boot: BootPlan
    invocation: Invocation
    config_text: str
    device_map: str | None = None
    grub_cfg: str | None = None


def vmm_exists(host: Host, name: str) -> bool:
    return host.devpath(f"/dev/vmm/{name}").exists()


def destroy_vmm(name: str) -> Run:
    return Run(["bhyvectl", f"--vm={name}", "--destroy"])


def plan(host: Host, null_iso: Path, request: BootRequest, vnc_ports: graphics.VncPortFinder) -> Planned:
    """Plan one boot. ``null_iso`` is ``vm_dir/.config/null.iso`` (vm-bhyve keeps one for all datastores)."""
    ref, config = request.ref, request.config
    config.check()
    uefi = config.is_uefi
    # A loader boots the install medium only on the first boot (churchers#530); UEFI keeps what it is given.
    media = request.install_media if (uefi or request.first_boot) else None
    installing = media is not None
    name = ref.name

    topology = options.topology(config)
    serial = options.serial(config, name, request.foreground)
    fbuf = None
    if uefi and config.flag("graphics"):
        fbuf = graphics.fbuf(config, vnc_ports, installing, request.first_boot)
    ctx = devices.DeviceContext(ref, config, {p.index: p for p in request.ports}, media,
                                null_iso if devices.nulliso_attached(config, installing) else None, fbuf)
    pci, install, layout = devices.build(ctx)
    wired = config.flag("wired_memory") or devices.wires_memory(pci)
    inv = Invocation(
        name=name, topology=topology, memory=config.memory, devices=pci,
        ignore_msr=config.flag("ignore_msr"), fwcfg=config.get("fwcfg") or None,
        tpm=tpm_rules.of(config, ref), raw=options.raw_options(config, "bhyve_options"), wired=wired,
        uuid=config.get("uuid") or None, utc=config.flag("utctime"),
        pins=options.pins(config, int(topology.cpus)), no_mptable=layout.upper_bus, install=install,
        com=serial.com,
    )
    prepare: list[Action] = []
    if uefi:
        inv.bootrom = check_text(config.path, "loader", loaders.firmware(config, ref))
        if config.flag("uefi_vars"):
            store = loaders.vars_path(ref)
            inv.bootvars = check_text(None, "uefi_vars", str(store))
            if not store.exists():
                prepare.append(CopyIfMissing(loaders.VARS_TEMPLATE, host.devpath(loaders.VARS_TEMPLATE), store))
    elif vmm_exists(host, name):
        # bhyveload and grub-bhyve reuse a VM left over from the last run only partly; start clean as vm-bhyve does.
        prepare.insert(0, destroy_vmm(name))

    sockets = devices.sockets(pci)
    if sockets:
        # bhyve binds these sockets and never removes them; a leftover one makes the next start fail.
        prepare.append(RemoveFiles(sockets))

    # the software TPM listens before bhyve starts (drivers/swtpm.py)
    if inv.tpm is not None and tpm_rules.is_software(inv.tpm):
        prepare.append(swtpm.StartSwtpm(ref.layout, Path(inv.tpm[1])))

    planned = Planned(BootPlan(), inv, kconfig.text(inv))
    boot = planned.boot
    if not uefi:
        if not config.disks:
            raise ConfigError(config.path, "disk0_name", "", f"loader={config.loader} boots from disk0, and "
                                                             "this guest has none (vm-bhyve refuses it too)")
        if config.loader == "grub" and disk_rules.is_share(config.disks[0]):
            raise ConfigError(config.path, "disk0_type", "virtio-9p", "grub-bhyve cannot boot from a 9p share")
        loader_input = loaders.LoaderInput(ref, config, serial.loader_console, wired, media)
        if config.loader == "grub":
            grub = loaders.grub(loader_input)
            prepare += grub.files
            boot.loader = grub.argv
            planned.device_map, planned.grub_cfg = grub.device_map, grub.grub_cfg
        else:
            boot.loader = loaders.bhyveload(loader_input)

    if inv.has_secret:
        path = ref.layout.bhyve_config
        # Removed first: an old file would keep its (maybe wider) mode through the atomic replace.
        prepare += [RemoveFiles([path]),
                    WriteFile(path, planned.config_text, ["install", "-m", "600", "/dev/stdin", str(path)], 0o600)]
        boot.hypervisor = kconfig.argv(inv, str(path))
        boot.secrets.append(path)
    else:
        boot.hypervisor = render.argv(inv)
    boot.prepare = prepare
    boot.console = dict(serial.console)
    if fbuf is not None:
        boot.console["vnc"] = fbuf.address
    return planned
