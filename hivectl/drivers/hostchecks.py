"""Host checks before a start: can this machine run this guest at all?

vm-bhyve makes these checks before every start (``util::check_bhyve_support``, ``util::check_bhyve_iommu``
in its ``lib/vm-util``, used by ``vm::run`` in ``lib/vm-run``) and skips them all when rc.conf says
``vm_disable_host_checks="yes"``; hivectl does the same, each refusal one line naming the sysctl or CPU
feature it read, so an administrator knows what to look at. Without them the guest's hypervisor fails
later with a less helpful message (bhyve: ``ROM boot failed: unrestricted guest capability not
available``; grub-bhyve: ``VM unrestricted guest capability required``) or, for passthru, at the device.

On FreeBSD (bhyve), in vm-bhyve's order:

1. vmm(4) is loaded and initialised (``kldstat -q -m vmm``);
2. the CPU can run guests: on Intel ``hw.vmm.vmx.initialized`` is 1 (vmx.c sets it only when VT-x with
   EPT is usable), on AMD ``hw.vmm.svm.features`` has the nested-paging bit (CPUID 8000000Ah EDX bit 0,
   svm.c); vm-bhyve tells the vendor by ``hw.model``, since vmx.c's sysctls also exist on AMD hosts;
3. a loader other than ``bhyveload`` (UEFI, grub-bhyve), or more than one vCPU, needs Intel's
   unrestricted guest mode, ``hw.vmm.vmx.cap.unrestricted_guest``; vm-bhyve then drops the guest to one
   vCPU with a warning, hivectl refuses instead (the guest would not be the one its config describes);
4. passthru needs an I/O MMU that vmm may use: ``hw.vmm.iommu.enable`` (a loader tunable) and the
   hardware: an ACPI DMAR table (Intel VT-d, ``acpidump -t``) or ``hw.vmm.amdvi.enable`` (AMD-Vi), as
   vm-bhyve tests;
5. the memory fits: ``memory`` no larger than the host's RAM (``hw.physmem``), and a wired guest
   (``wired_memory=yes``, or any passthru, which bhyve(8) requires ``-S`` for) within the system-wide limit
   on wired user memory, ``vm.max_user_wired`` pages of ``hw.pagesize`` bytes (vmm wires through the same
   accounting as mlock(2));
6. limits (``limit_*``, hivectl/model/limits.py) need ``kern.racct.enable=1``, or rctl(8) refuses every rule.

On Linux (QEMU) the equivalents: a forced ``HIVECTL_QEMU_ACCEL=kvm`` needs real KVM (``/dev/kvm`` and a
``vmx``/``svm`` CPU flag; otherwise hivectl picks TCG itself, see ``drivers/qemu/accel.py``), passthru needs
IOMMU groups (``/sys/kernel/iommu_groups``), ``memory`` must fit ``MemTotal`` of ``/proc/meminfo``, and limits
need their cgroup controllers.
"""

from __future__ import annotations

from pathlib import Path

from hivectl import patterns, validate
from hivectl.drivers.base import Problem
from hivectl.errors import ConfigError
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig
from hivectl.patterns import Pattern

DISABLE_KEY = "vm_disable_host_checks"
NP_BIT = 0x1  # CPUID 8000000Ah EDX bit 0: nested paging (AMD's NPT)
_DMAR = Pattern(r"(?m)^\s*DMAR: ")  # acpidump -t prints one "  NAME: Length=..." header per table


def _sysctl(host: Host, name: str) -> str | None:
    """``sysctl -n NAME``; None when the oid does not exist (sysctl(8) exits 1: "unknown oid")."""
    result = host.run(["sysctl", "-n", name], check=False)
    return result.stdout.strip() if result.status == 0 else None


def _number(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f}G" if size % (1 << 30) else f"{size >> 30}G"


def _vendor(model: str | None) -> str:
    model = model or ""
    return "intel" if "Intel" in model else "amd" if "AMD" in model else ""


def wants_passthru(config: GuestConfig) -> bool:
    return any(key.startswith("passthru") and key[8:].isdigit() and value
               for key, value in config.values.items())


def _memory(config: GuestConfig) -> int | None:
    try:
        return validate.memory(config.path, "memory", config.get("memory"))
    except ConfigError:  # reported by the config's own checks
        return None


def bhyve(host: Host, config: GuestConfig) -> list[str]:
    """The FreeBSD checks above, as fatal ``Problem`` lines (empty when the host can run the guest)."""
    if host.run(["kldstat", "-q", "-m", "vmm"], check=False).status != 0:
        return [Problem("the vmm kernel module is not loaded (kldload vmm, or vmm_load=\"YES\" in "
                        "/boot/loader.conf)")]
    found: list[str] = []
    vendor = _vendor(_sysctl(host, "hw.model"))
    if vendor == "intel" and _sysctl(host, "hw.vmm.vmx.initialized") != "1":
        return [Problem("this CPU cannot run bhyve guests: sysctl hw.vmm.vmx.initialized is not 1 (VT-x with "
                        "EPT missing, or disabled in the firmware)")]
    if vendor == "amd":
        features = _number(_sysctl(host, "hw.vmm.svm.features"))
        if features is None or not features & NP_BIT:
            return [Problem("this CPU cannot run bhyve guests: sysctl hw.vmm.svm.features has no nested paging "
                            "bit (AMD-V with NPT missing, or SVM disabled in the firmware)")]
    if vendor == "intel" and _sysctl(host, "hw.vmm.vmx.cap.unrestricted_guest") != "1":
        if config.loader != "bhyveload":
            found.append(Problem(f"loader={config.loader} needs unrestricted guest support, which this CPU lacks "
                                 "(sysctl hw.vmm.vmx.cap.unrestricted_guest is not 1); only loader=bhyveload "
                                 "guests with cpu=1 can run here"))
        elif config.cpu not in ("", "1"):
            found.append(Problem(f"cpu={config.cpu} needs unrestricted guest support to start the other vCPUs, "
                                 "which this CPU lacks (sysctl hw.vmm.vmx.cap.unrestricted_guest is not 1); "
                                 "set cpu=1"))
    passthru = wants_passthru(config)
    if passthru:
        found += _iommu(host, vendor)
    found += _bhyve_memory(host, config, passthru)
    found += _racct(host, config)
    return found


def _limits(config: GuestConfig) -> list[str]:
    """The ``limit_*`` keys the config sets (their values are checked by the key table)."""
    from hivectl.model.limits import KEYS

    return [f"{key}={config.values[key]}" for key in KEYS if config.values.get(key)]


def _racct(host: Host, config: GuestConfig) -> list[str]:
    """rctl(8) refuses every rule unless the kernel accounts resources: ``kern.racct.enable`` (a loader
    tunable, 0 by default on GENERIC kernels)."""
    wanted = _limits(config)
    if not wanted or _sysctl(host, "kern.racct.enable") == "1":
        return []
    return [Problem(f"{', '.join(wanted)} needs rctl, which this kernel does not enable (sysctl "
                    "kern.racct.enable is not 1: set kern.racct.enable=1 in /boot/loader.conf and reboot)")]


def _iommu(host: Host, vendor: str) -> list[str]:
    if _sysctl(host, "hw.vmm.iommu.enable") != "1":
        return [Problem("pci passthrough needs the I/O MMU, which vmm is told not to use (sysctl "
                        "hw.vmm.iommu.enable is not 1: set hw.vmm.iommu.enable=\"1\" in /boot/loader.conf)")]
    if _sysctl(host, "hw.vmm.amdvi.enable") == "1":
        return []
    if vendor == "amd":
        return [Problem("pci passthrough needs AMD-Vi, which vmm does not use (sysctl hw.vmm.amdvi.enable is "
                        "not 1: set hw.vmm.amdvi.enable=\"1\" in /boot/loader.conf)")]
    tables = host.run(["acpidump", "-t"], check=False)
    if tables.status != 0 or not _DMAR.search(tables.stdout):
        return [Problem("pci passthrough needs VT-d, but the firmware's ACPI tables have no DMAR table "
                        "(acpidump -t; enable VT-d in the firmware)")]
    return []


def _bhyve_memory(host: Host, config: GuestConfig, passthru: bool) -> list[str]:
    size = _memory(config)
    if size is None:
        return []
    physmem = _number(_sysctl(host, "hw.physmem"))
    if physmem and size > physmem:
        return [Problem(f"memory={config.get('memory')} is more than this host's RAM ({_gib(physmem)}, "
                        "sysctl hw.physmem)")]
    wired = validate.yesno(config.get("wired_memory")) or passthru
    pages, pagesize = _number(_sysctl(host, "vm.max_user_wired")), _number(_sysctl(host, "hw.pagesize"))
    if wired and pages is not None and pagesize and size > pages * pagesize:
        why = "wired_memory=yes" if validate.yesno(config.get("wired_memory")) else "passthru (it needs -S)"
        return [Problem(f"memory={config.get('memory')} wired ({why}) is more than the host lets be wired: "
                        f"sysctl vm.max_user_wired is {pages} pages of {pagesize} bytes "
                        f"({_gib(pages * pagesize)}); raise it or lower memory")]
    return []


def _under(root: Path, path: str) -> Path:
    return Path(str(root).rstrip("/") + path)


def qemu(host: Host, config: GuestConfig, accel: str) -> list[str]:
    """The Linux checks above; ``accel`` is what the guest would run on (``kvm`` or ``tcg``)."""
    from hivectl.drivers.qemu.accel import hardware_kvm

    found: list[str] = []
    if accel == "kvm" and not hardware_kvm(host.root):
        found.append(Problem("HIVECTL_QEMU_ACCEL=kvm, but this host has no hardware KVM (/dev/kvm missing, no "
                             "vmx/svm flag in /proc/cpuinfo, or PVM's kvm_pvm module); unset it to run under "
                             "TCG"))
    if wants_passthru(config):
        groups = _under(host.root, "/sys/kernel/iommu_groups")
        if not groups.is_dir() or not any(groups.iterdir()):
            found.append(Problem("pci passthrough needs an IOMMU, but /sys/kernel/iommu_groups is empty (enable "
                                 "VT-d/AMD-Vi in the firmware; intel_iommu=on on the kernel command line)"))
    size = _memory(config)
    total = _meminfo_total(_under(host.root, "/proc/meminfo"))
    if size is not None and total and size > total:
        found.append(Problem(f"memory={config.get('memory')} is more than this host's RAM ({_gib(total)}, "
                             "MemTotal in /proc/meminfo)"))
    found += _cgroups(host, config)
    return found


def _cgroups(host: Host, config: GuestConfig) -> list[str]:
    """Each limit needs its cgroup controller (v2 or v1) on the host (hivectl/host/cgroups.py)."""
    from hivectl.host.cgroups import groups
    from hivectl.model.limits import of

    wanted = _limits(config)
    if not wanted:
        return []
    try:
        limits = of(config.values, config.path)
    except ConfigError:
        return []  # reported by the config's own checks
    controllers = {name for name, on in (("cpu", limits.pcpu is not None), ("io", limits.io()),
                                         ("memory", limits.memory is not None)) if on}
    _found, missing = groups(host.root, config.name, controllers)
    if not missing:
        return []
    return [Problem(f"{', '.join(wanted)} needs the cgroup {' and '.join(missing)} controller, which this host "
                    "has in neither cgroup v2 (cgroup.controllers) nor cgroup v1 (/proc/self/mounts)")]


def _meminfo_total(path: Path) -> int | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    match = patterns.search(r"(?m)^MemTotal:\s+([0-9]+) kB", text)
    return int(match.group(1)) * 1024 if match else None
