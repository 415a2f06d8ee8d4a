"""The table of every guest configuration key hivectl understands, with its check and meaning.

This is the single source of truth for guest keys: validation, ``hivectl help keys`` and the docs all
come from it. Keys follow vm-bhyve (its sample-templates/config.sample and vm.8); keys hivectl adds are
marked ``hivectl=True``.
Numbered keys (``disk0_type``, ``network1_mac``) are written with ``N`` in ``pattern``.
Unknown keys are not errors: they are kept in the file untouched, because other tools (or a newer
vm-bhyve) may own them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.safety import values

Source = str | Path | None
Check = Callable[[Source, str, str], object]


@dataclass(frozen=True)
class KeySpec:
    """One configuration key: its name pattern, how to check a value, and what it means."""

    pattern: str
    check: Check
    meaning: str
    default: str = ""
    hivectl: bool = False
    template_only: bool = False


def _any(source: Source, key: str, value: str) -> None:
    """Free text (raw options and commands): only the file format's own limits apply."""


def _bool(source: Source, key: str, value: str) -> None:
    validate.boolean(source, key, value)


def _choice(*allowed: str) -> Check:
    def check(source: Source, key: str, value: str) -> None:
        validate.choice(source, key, value, allowed)
    return check


def _int(low: int, high: int) -> Check:
    def check(source: Source, key: str, value: str) -> None:
        validate.integer(source, key, value, low, high)
    return check


def _path(source: Source, key: str, value: str) -> None:
    validate.plain_path(source, key, value)
    values.bhyve_value(source, key, value)


def _name(source: Source, key: str, value: str) -> None:
    validate.name(source, key, value, "switch name")


def _ifname(source: Source, key: str, value: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,14}", value):
        raise ConfigError(source, key, value, "expected a network interface name (letters, digits, '_', "
                                              "'.', at most 15 characters)")


def _comports(source: Source, key: str, value: str) -> None:
    ports = value.split()
    if not ports or any(p not in ("com1", "com2", "com3", "com4") for p in ports) or len(set(ports)) != len(ports):
        raise ConfigError(source, key, value, "expected a space-separated list of com1..com4 without repeats")


def _slot(source: Source, key: str, value: str) -> None:
    """A pinned PCI position: ``S``, ``S:F`` or ``B:S:F`` (bus 0..255, slot 0..31, function 0..7)."""
    parts = value.split(":")
    limits = {1: [(0, 31)], 2: [(0, 31), (0, 7)], 3: [(0, 255), (0, 31), (0, 7)]}.get(len(parts), [])
    if not limits or not all(p.isdigit() and lo <= int(p) <= hi for p, (lo, hi) in zip(parts, limits, strict=True)):
        raise ConfigError(source, key, value, "expected a PCI slot as S, S:F or B:S:F (slot 0-31, function 0-7)")
    slot = int(parts[-2] if len(parts) >= 2 else parts[0])
    if slot in (0, 31) and (len(parts) < 3 or parts[0] == "0"):
        raise ConfigError(source, key, value, "slots 0 (hostbridge) and 31 (lpc) on bus 0 are reserved")


def _lpc_slot(source: Source, key: str, value: str) -> None:
    """The LPC bridge's slot: bus 0 only (bhyve's pci_lpc.c refuses others), never slot 0 (the host bridge)."""
    match = re.fullmatch(r"([0-9]{1,2})(?::[0-7])?|0:([0-9]{1,2}):[0-7]", value)
    if not match or not 1 <= int(match.group(1) or match.group(2)) <= 31:
        raise ConfigError(source, key, value, "expected a slot of bus 0 as S or S:F (slot 1-31, function 0-7)")


def _passthru(source: Source, key: str, value: str) -> None:
    if not re.fullmatch(r"[0-9]{1,3}/[0-9]{1,2}/[0-7](=[0-9]{1,2}:[0-7])?", value):
        raise ConfigError(source, key, value, "expected a host PCI address bus/slot/function like 2/0/0, "
                                              "optionally =S:F for a fixed guest slot")


def _resolution(source: Source, key: str, value: str) -> None:
    match = re.fullmatch(r"([0-9]{3,4})x([0-9]{3,4})", value)
    if not match or not (640 <= int(match.group(1)) <= 3840 and 480 <= int(match.group(2)) <= 2160):
        raise ConfigError(source, key, value, "expected WIDTHxHEIGHT between 640x480 and 3840x2160")


def _address(source: Source, key: str, value: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(source, key, value, "expected an IPv4 or IPv6 address") from None
    if "%" in value:  # Python accepts any text as an IPv6 scope id ("::1%x,rfb=0.0.0.0:5999")
        raise ConfigError(source, key, value, "a scope id (%zone) cannot be used: give the address alone")


def _opts(source: Source, key: str, value: str) -> None:
    if " " in value.strip():
        raise ConfigError(source, key, value, "options are comma-separated with no spaces")
    values.any_disk_options(source, key, value)


def _passthru_opts(source: Source, key: str, value: str) -> None:
    if " " in value.strip():
        raise ConfigError(source, key, value, "options are comma-separated with no spaces")
    values.passthru_options(source, key, value)


def _zfs_opts(source: Source, key: str, value: str) -> None:
    values.zfs_properties(source, key, value)


def _tags(source: Source, key: str, value: str) -> None:
    for tag in value.split():
        validate.name(source, key, tag, "tag")


def _mem(source: Source, key: str, value: str) -> None:
    validate.memory(source, key, value)


def _cpu(source: Source, key: str, value: str) -> None:
    validate.cpu_count(source, key, value)


def _uuid(source: Source, key: str, value: str) -> None:
    validate.uuid(source, key, value)


def _mac(source: Source, key: str, value: str) -> None:
    validate.mac(source, key, value)


def _disk_size(source: Source, key: str, value: str) -> None:
    validate.disk_size(source, key, value)


def _port(source: Source, key: str, value: str) -> None:
    validate.tcp_port(source, key, value)


def _mtu(source: Source, key: str, value: str) -> None:
    validate.mtu(source, key, value)


def _vnc_password(source: Source, key: str, value: str) -> None:
    if "," in value or not value:
        raise ConfigError(source, key, value, "a VNC password cannot be empty or contain ','")


def _cpu_pin(source: Source, key: str, value: str) -> None:
    """``vcpu:hostcpu`` pairs for bhyve ``-p`` (a vCPU may be listed again to allow several host CPUs)."""
    for pair in value.split():
        match = re.fullmatch(r"([0-9]{1,5}):([0-9]{1,4})", pair)
        if not match or int(match.group(1)) > 65534 or int(match.group(2)) > 1023:
            raise ConfigError(source, key, value, f"expected space-separated vcpu:hostcpu pairs like '0:2 1:3' "
                                                  f"(host CPU 0-1023), not {pair!r}")
    if not value.split():
        raise ConfigError(source, key, value, "expected space-separated vcpu:hostcpu pairs like '0:2 1:3'")


LOADERS = ("bhyveload", "grub", "uefi", "uefi-csm", "uefi-devel", "uefi-custom")
DISK_TYPES = ("virtio-blk", "ahci-hd", "ahci-cd", "nvme", "virtio-scsi", "virtio-9p")
DISK_DEVS = ("file", "zvol", "sparse-zvol", "custom", "iscsi", "9p")
NIC_TYPES = ("virtio-net", "e1000")

KEYS: tuple[KeySpec, ...] = (
    KeySpec("loader", _choice(*LOADERS), "how the guest boots: bhyveload, grub, uefi, uefi-csm, uefi-devel, "
            "uefi-custom"),
    KeySpec("uefi_vars", _bool, "keep UEFI variables in NAME/uefi-vars.fd (a per-guest copy)", "no"),
    KeySpec("bhyveload_loader", _path, "path given to bhyveload -l"),
    KeySpec("bhyveload_args", _any, "extra bhyveload arguments (split at spaces)"),
    KeySpec("loader_timeout", _int(0, 3600), "seconds the boot loader menu waits", "3"),
    KeySpec("cpu", _cpu, "number of virtual CPUs"),
    KeySpec("cpu_sockets", _int(1, 65535), "CPU sockets (topology for -c)"),
    KeySpec("cpu_cores", _int(1, 65535), "cores per socket"),
    KeySpec("cpu_threads", _int(1, 65535), "threads per core"),
    KeySpec("memory", _mem, "guest memory (512M, 2G; a bare number is MiB)"),
    KeySpec("wired_memory", _bool, "wire guest memory (-S); forced by passthru", "no"),
    KeySpec("hostbridge", _choice("standard", "amd", "none", "no"), "PCI host bridge model at slot 0",
            "standard"),
    KeySpec("fwcfg", _choice("bhyve", "qemu"), "firmware configuration interface flavour"),
    KeySpec("lpc_slot", _lpc_slot, "bhyve: the LPC bridge's slot on bus 0 (S or S:F) instead of 31, for guests "
            "imported with their own layout", hivectl=True),
    KeySpec("comports", _comports, "serial ports on nmdm devices, the first is the console", "com1"),
    KeySpec("utctime", _bool, "keep the guest RTC in UTC (-u)", "yes"),
    KeySpec("debug", _bool, "keep bhyve's stderr in NAME/bhyve.log", "no"),
    KeySpec("uuid", _uuid, "SMBIOS system UUID (-U); generated at create"),
    KeySpec("bhyve_options", _any, "raw extra bhyve options, split at spaces (escape hatch)"),
    KeySpec("ignore_bad_msr", _bool, "documented by vm-bhyve but never read; -w is always passed"),
    KeySpec("ignore_msr", _bool, "ignore unimplemented MSRs (an extra w)"),
    KeySpec("start_slot", _int(1, 30), "first PCI slot for disks", "4"),
    KeySpec("install_slot", _int(1, 30), "PCI slot of the install ISO", "3"),
    KeySpec("ahci_device_limit", _int(1, 32), "put up to this many ahci disks on one controller", "1"),
    KeySpec("diskN_type", _choice(*DISK_TYPES), "disk emulation"),
    KeySpec("diskN_name", _path, "disk file/zvol name in the guest directory, a full path for custom, "
            "share=/path for 9p"),
    KeySpec("diskN_dev", _choice(*DISK_DEVS), "what backs the disk", "file"),
    KeySpec("diskN_opts", _opts, "comma-separated disk options (nocache, direct, ro, sectorsize=...)"),
    KeySpec("diskN_size", _disk_size, "size for create (templates only; removed from the guest)", "20G",
            template_only=True),
    KeySpec("diskN_slot", _slot, "pinned PCI slot (S, S:F or B:S:F) so other devices never move it; "
            "ahci-hd/ahci-cd disks pinned to one address share one AHCI controller there", hivectl=True),
    KeySpec("networkN_type", _choice(*NIC_TYPES), "NIC emulation"),
    KeySpec("networkN_switch", _name, "virtual switch the NIC's tap joins"),
    KeySpec("networkN_device", _ifname, "use this existing interface instead of creating a tap"),
    KeySpec("networkN_name", _ifname, "stable name for the tap hivectl creates"),
    KeySpec("networkN_mac", _mac, "fixed MAC address; generated at create"),
    KeySpec("networkN_span", _bool, "attach the tap as a span (monitor) port", "no"),
    KeySpec("networkN_mtu", _mtu, "MTU of the NIC (default: the switch's)", hivectl=True),
    KeySpec("networkN_slot", _slot, "pinned PCI slot (S, S:F or B:S:F) so adding disks never moves the NIC",
            hivectl=True),
    KeySpec("passthruN", _passthru, "host PCI device bus/slot/function to pass through"),
    KeySpec("passthruN_options", _passthru_opts, "extra passthru options (rom=, bootindex=)"),
    KeySpec("virt_random", _bool, "add a virtio-rnd device", "no"),
    KeySpec("virt_random_slot", _slot, "pinned PCI slot of the virtio-rnd device (S, S:F or B:S:F)", hivectl=True),
    KeySpec("graphics", _bool, "VNC frame buffer (UEFI only)", "no"),
    KeySpec("graphics_port", _port, "fixed VNC port (default: first free from 5900)"),
    KeySpec("graphics_listen", _address, "VNC listen address", "127.0.0.1"),
    KeySpec("graphics_res", _resolution, "frame buffer resolution WxH"),
    KeySpec("graphics_wait", _choice("yes", "no", "auto"), "wait for a VNC client before booting "
            "(auto: only while installing)", "auto"),
    KeySpec("graphics_vga", _choice("io", "on", "off"), "VGA mode of the frame buffer"),
    KeySpec("graphics_slot", _slot, "pinned PCI slot of the frame buffer (S, S:F or B:S:F)", hivectl=True),
    KeySpec("vnc_password", _vnc_password, "VNC password (given to bhyve through a 0600 config file)"),
    KeySpec("xhci_mouse", _bool, "USB tablet for absolute mouse positioning", "no"),
    KeySpec("xhci_slot", _slot, "pinned PCI slot of the USB controller (S, S:F or B:S:F)", hivectl=True),
    KeySpec("sound", _bool, "HDA sound device", "no"),
    KeySpec("sound_play", _path, "sound playback device", "/dev/dsp0"),
    KeySpec("sound_rec", _path, "sound recording device"),
    KeySpec("sound_slot", _slot, "pinned PCI slot of the sound device (S, S:F or B:S:F)", hivectl=True),
    KeySpec("virt_consoleN", _any, "virtio-console port: yes for a numbered port, or a port name"),
    KeySpec("virt_console_slot", _slot, "pinned PCI slot of the virtio-console device (S, S:F or B:S:F)",
            hivectl=True),
    KeySpec("grub_installN", _any, "grub command for install boots"),
    KeySpec("grub_runN", _any, "grub command for normal boots"),
    KeySpec("grub_run_partition", _any, "grub root partition (1, msdos1, gpt2)", "1"),
    KeySpec("grub_run_no_partition", _bool, "grub root is the whole disk (hd0)"),
    KeySpec("grub_run_dir", _any, "directory holding the guest's grub.cfg"),
    KeySpec("grub_run_file", _any, "name of the guest's grub.cfg"),
    KeySpec("zfs_dataset_opts", _zfs_opts, "properties for the guest dataset (ZFS datastores)"),
    KeySpec("zfs_zvol_opts", _zfs_opts, "properties for zvol disks"),
    KeySpec("prestart", _path, "program run before every boot (args: NAME and the guest directory; cwd: the "
            "guest directory; its exit status is logged, not fatal)"),
    KeySpec("priority", _int(0, 20), "nice value of the hypervisor process"),
    KeySpec("limit_pcpu", _int(1, 100000), "vm-bhyve rctl CPU percent limit (not supported: ignored, with a warning)"),
    KeySpec("limit_rbps", _any, "vm-bhyve rctl read bytes/s (not supported: ignored, with a warning)"),
    KeySpec("limit_wbps", _any, "vm-bhyve rctl write bytes/s (not supported: ignored, with a warning)"),
    KeySpec("limit_riops", _any, "vm-bhyve rctl read operations/s (not supported: ignored, with a warning)"),
    KeySpec("limit_wiops", _any, "vm-bhyve rctl write operations/s (not supported: ignored, with a warning)"),
    KeySpec("on_restart", _choice("restart", "stop", "shutdown"), "what a guest reboot does", "restart"),
    KeySpec("on_fault", _choice("restart", "stop", "shutdown"), "what a crash (exit 3 and up) does",
            "shutdown"),
    KeySpec("fault_limit", _int(0, 1000), "restarts after faults within 60 s before the supervisor gives up", "5",
            hivectl=True),
    KeySpec("fault_backoff", _int(0, 300), "seconds before the first restart after a fault (doubles, max 30)",
            "1", hivectl=True),
    KeySpec("nulliso_fix", _bool, "attach an empty CD when not installing (uefi only)", "no"),
    KeySpec("tags", _tags, "space-separated tags"),
    KeySpec("cpu_pin", _cpu_pin, "pin vCPUs to host CPUs: space-separated vcpu:hostcpu pairs (-p)", hivectl=True),
    KeySpec("tpm", _choice("none", "swtpm", "passthru"), "TPM 2.0 device: swtpm (a software TPM's socket) or "
            "passthru (the host TPM); UEFI guests only", "none", hivectl=True),
    KeySpec("tpm_path", _path, "the swtpm socket (default NAME/swtpm.sock) or host TPM device (default /dev/tpm0)",
            hivectl=True),
    KeySpec("qemu_kernel", _path, "qemu driver only: boot this kernel directly (-kernel; relative to the guest "
            "directory)", hivectl=True),
    KeySpec("qemu_initrd", _path, "qemu driver only: initrd for qemu_kernel (-initrd)", hivectl=True),
    KeySpec("qemu_append", _any, "qemu driver only: kernel command line for qemu_kernel (-append)", hivectl=True),
)

# vm-bhyve keys that are read and validated (so configs round-trip and stay valid) but have no effect yet:
# starting a guest that sets one logs a warning instead of silently doing less than vm-bhyve did.
UNSUPPORTED = ("limit_pcpu", "limit_rbps", "limit_wbps", "limit_riops", "limit_wiops")

_EXACT = {spec.pattern: spec for spec in KEYS if "N" not in spec.pattern}
_NUMBERED = [(re.compile(re.escape(spec.pattern).replace("N", "([0-9]+)", 1)), spec)
             for spec in KEYS if "N" in spec.pattern]


def spec_for(key: str) -> KeySpec | None:
    """The spec for a concrete key (``disk3_type`` → ``diskN_type``), or None for unknown keys."""
    spec = _EXACT.get(key)
    if spec is not None:
        return spec
    for regex, numbered in _NUMBERED:
        if regex.fullmatch(key):
            return numbered
    return None


def check(source: Source, key: str, value: str) -> None:
    """Validate one key; unknown keys pass (they are kept, not judged) unless their value holds a NUL or a
    line break, which would make the file mean different keys to hivectl and to vm-bhyve's sh reader."""
    values.plain_text(source, key, value)
    spec = spec_for(key)
    if spec is not None:
        spec.check(source, key, value)
