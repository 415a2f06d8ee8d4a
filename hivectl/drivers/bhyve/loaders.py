"""How a guest boots: UEFI firmware, bhyveload, or grub-bhyve (vm-bhyve's ``lib/vm-run``; bhyveload(8), grub2-bhyve).

UEFI needs no loader process: bhyve gets ``-l bootrom,<firmware>[,<vars>]`` and the firmware boots the
guest. bhyveload and grub-bhyve run to completion before each bhyve start, load the kernel into the VM
and leave it in ``/dev/vmm/NAME`` for bhyve.

Install media and loaders: vm-bhyve keeps booting the loader from the ISO until a full stop when an
installer reboots into the new system, so many installers start over (churchers#530). Here a loader uses
the install medium only on the first boot of the session; after the guest reboots, the loader and bhyve
boot from disk0 (the medium is detached; the supervisor asks for a first boot only once).
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers.bhyve import options
from hivectl.drivers.bhyve.devices import disk as disk_rules
from hivectl.model.guest import GuestConfig
from hivectl.plan import WriteFile
from hivectl.records import record
from hivectl.store import GuestRef

FIRMWARE_DIR = "/usr/local/share/uefi-firmware"
VARS_TEMPLATE = f"{FIRMWARE_DIR}/BHYVE_UEFI_VARS.fd"
FIRMWARE = {
    "uefi": f"{FIRMWARE_DIR}/BHYVE_UEFI.fd",
    "uefi-csm": f"{FIRMWARE_DIR}/BHYVE_UEFI_CSM.fd",
    "uefi-devel": f"{FIRMWARE_DIR}/BHYVE_UEFI_CODE-devel.fd",
}


def firmware(config: GuestConfig, ref: GuestRef) -> str:
    """The boot ROM: a packaged firmware, or ``<guest's datastore>/.config/BHYVE_UEFI.fd`` for uefi-custom."""
    if config.loader == "uefi-custom":
        return str(ref.datastore.path / ".config" / "BHYVE_UEFI.fd")
    return FIRMWARE.get(config.loader, FIRMWARE["uefi"])


def vars_path(ref: GuestRef) -> Path:
    """The guest's own UEFI variable store (vm-bhyve's name, so existing guests keep their boot entries)."""
    return ref.layout.uefi_vars


@record
class LoaderInput:
    """What a loader command depends on for one boot."""

    ref: GuestRef
    config: GuestConfig
    console: str | None  # nmdm A side; None in the foreground (the loader uses the terminal)
    wired: bool
    install_media: Path | None  # only on the first boot of an install


def _common(inp: LoaderInput) -> list[str]:
    args = []
    if inp.console:
        args += ["-c", inp.console]
    if inp.wired:
        args.append("-S")
    return args


def _boot_disk(inp: LoaderInput) -> tuple[bool, str]:
    """(is a 9p share, path) of disk0."""
    disk = inp.config.disks[0]
    return disk_rules.is_share(disk), disk_rules.disk_path(inp.ref, inp.config, disk)


def bhyveload(inp: LoaderInput) -> list[str]:
    """``bhyveload [-c A] [-S] -m MEM -e smbios.system.uuid=U -e autoboot_delay=T -e bhyve_vm_name=NAME
    [bhyveload_args] [-l loader] (-d iso | -h dir -e vfs.root.mountfrom=p9fs:share | -d disk0) NAME``."""
    config, name = inp.config, inp.ref.name
    argv = ["bhyveload", *_common(inp), "-m", config.memory]
    uuid = config.get("uuid")
    if uuid:
        argv += ["-e", f"smbios.system.uuid={uuid}"]
    argv += ["-e", f"autoboot_delay={config.get('loader_timeout')}", "-e", f"bhyve_vm_name={name}"]
    argv += options.raw_options(config, "bhyveload_args")
    loader = config.get("bhyveload_loader")
    if loader:
        argv += ["-l", loader]
    if inp.install_media is not None:
        argv += ["-d", str(inp.install_media)]
    else:
        is_share, path = _boot_disk(inp)
        if is_share:
            share, directory = disk_rules.share_parts(path)
            argv += ["-h", directory, "-e", f"vfs.root.mountfrom=p9fs:{share}"]
        else:
            argv += ["-d", path]
    return [*argv, name]


@record
class GrubPlan:
    argv: list[str]
    device_map: str
    grub_cfg: str | None  # written only when the config has grub_install*/grub_run* commands
    files: list[WriteFile]


def _commands(config: GuestConfig, kind: str) -> list[str]:
    found = []
    index = 0
    while config.values.get(f"grub_{kind}{index}", ""):
        found.append(config.values[f"grub_{kind}{index}"])
        index += 1
    return found


def grub_root(config: GuestConfig) -> str:
    """The run-time root: ``hd0,<grub_run_partition>``, or the whole disk with grub_run_no_partition.

    vm-bhyve's test for grub_run_no_partition can never be true (it runs ``[`` on a function name), so
    there the key does nothing; here it does what its documentation says.
    """
    if config.flag("grub_run_no_partition"):
        return "hd0"
    return f"hd0,{config.get('grub_run_partition')}"


def grub(inp: LoaderInput) -> GrubPlan:
    """grub-bhyve with a generated device.map and, if the config has grub commands, a generated grub.cfg."""
    config, ref = inp.config, inp.ref
    directory = ref.directory
    map_lines = []
    if inp.install_media is not None:
        map_lines.append(f"(cd0) {inp.install_media}")
    for disk in config.disks:
        if disk_rules.is_share(disk):
            continue  # grub cannot read a 9p share; keep (hdN) numbered by disk index as vm-bhyve does
        map_lines.append(f"(hd{disk.index}) {disk_rules.disk_path(ref, config, disk)}")
    device_map = "\n".join(map_lines) + "\n"
    device_map_path = ref.layout.device_map
    files = [WriteFile(device_map_path, device_map, ["install", "-m", "644", "/dev/stdin", str(device_map_path)])]

    installing = inp.install_media is not None
    kind = "install" if installing else "run"
    root = "cd0" if installing else grub_root(config)
    argv = ["grub-bhyve", *_common(inp), "-m", str(device_map_path), "-M", config.memory]
    commands = _commands(config, kind)
    grub_cfg = None
    if commands:
        lines = [f"timeout={config.get('loader_timeout')}", f"menuentry '{ref.name} (bhyve {kind})' {{",
                 f"    root={root}"]
        lines += [f"    {command}" for command in commands if command.strip() != "boot"]
        grub_cfg = "\n".join([*lines, "}"]) + "\n"
        cfg_path = directory / "grub.cfg"
        files.append(WriteFile(cfg_path, grub_cfg, ["install", "-m", "644", "/dev/stdin", str(cfg_path)]))
        argv += ["-r", "host", "-d", str(directory)]
    else:
        argv += ["-r", root]
        if not installing:
            run_dir, run_file = config.get("grub_run_dir"), config.get("grub_run_file")
            if run_dir:
                argv += ["-d", run_dir]
            if run_file:
                argv += ["-g", run_file]
    return GrubPlan([*argv, ref.name], device_map, grub_cfg, files)
