"""``BhyveDriver``: the bhyve planner behind the supervisor's ``Driver`` interface.

The supervisor owns the loop (lock, ports, loader, bhyve, exit policy, cleanup); this class answers its
questions: is the host ready (``preflight``), what to run for one boot (``plan_boot``), what an exit
status means (``classify``), and how to stop or reset a running guest.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path

from hivectl.drivers import hostchecks, swtpm
from hivectl.drivers.base import BootPlan, BootRequest, Driver, Outcome, Problem, unsupported_keys
from hivectl.drivers.bhyve import checkpoint, devices, graphics, jail, loaders, options, planner
from hivectl.drivers.bhyve.actions import RemoveFiles
from hivectl.drivers.bhyve.devices import disk as disk_rules
from hivectl.drivers.bhyve.devices import nic as nic_rules
from hivectl.drivers.bhyve.devices import tpm as tpm_rules
from hivectl.drivers.bhyve.model import parse_opts
from hivectl.drivers.bhyve.slots import allocate
from hivectl.errors import ConfigError
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import VIRT_CONSOLE_PREFIX
from hivectl.plan import Action
from hivectl.store import GuestRef, Store

# bhyve(8) exit statuses (amd64/vmexit.c). Everything else is ERROR: 64 (EX_USAGE, a bad -c/-m/-p/-l
# value), 71 (EX_OSERR), 100 (unknown suspend reason) and 134 (abort() after an unhandled VM exit) are bhyve
# giving up, not the guest's choice. 128+n only appears when a shell reports a signal; hivectl never runs
# bhyve through a shell, so a signal arrives as a negative status (KILLED).
VM_MAX_NAMELEN = 229  # SPECNAMELEN 255 - 10 - 15 - 1 (sys/amd64/include/vmm.h, FreeBSD 13 and later)
EXIT_OUTCOMES = {0: Outcome.REBOOT, 1: Outcome.POWEROFF, 2: Outcome.HALT, 3: Outcome.FAULT, 4: Outcome.ERROR}


class BhyveDriver(Driver):
    name = "bhyve"

    def __init__(self, host: Host, store: Store, vnc_ports: graphics.VncPortFinder | None = None) -> None:
        super().__init__(host, store)
        self.vnc_ports: graphics.VncPortFinder = vnc_ports or graphics.SockstatPorts(host)

    # -- readiness ---------------------------------------------------------------------------------------
    def preflight(self, ref: GuestRef, config: GuestConfig) -> list[str]:
        problems: list[str] = [Problem(str(e)) for e in config.errors()]
        if problems:
            return problems  # the checks below assume valid values
        problems += [Problem(str(e)) for e in config_problems(ref, config)]
        if len(ref.name.encode()) > VM_MAX_NAMELEN:  # vm-bhyve allows 231 characters; the kernel does not
            problems.append(Problem(f"the guest name has {len(ref.name.encode())} characters, but bhyve's VM names "
                                    f"are at most {VM_MAX_NAMELEN} (VM_MAX_NAMELEN, sys/amd64/include/vmm.h): "
                                    "rename the guest"))
        if not self.store.settings.disable_host_checks:  # vm-bhyve's vm_disable_host_checks
            problems += hostchecks.bhyve(self.host, config)
        for tool in ("bhyve", "bhyvectl"):
            if self.host.which(tool) is None:
                problems.append(Problem(f"{tool} is not installed or not on PATH"))
        problems += self._loader_problems(ref, config)
        problems += self._cpu_problems(config)
        problems += self._passthru_problems(config)
        problems += self._tpm_problems(ref, config)
        problems += jail.problems(self.host, config)
        problems += warnings(config)
        problems += unsupported_keys(config)
        return problems

    def _loader_problems(self, ref: GuestRef, config: GuestConfig) -> list[str]:
        if config.is_uefi:
            found: list[str] = []
            rom = loaders.firmware(config, ref)
            local = Path(rom) if config.loader == "uefi-custom" else self.host.devpath(rom)
            if not local.is_file():
                found.append(Problem(f"UEFI firmware {rom} is missing (install sysutils/edk2 or bhyve-firmware"
                                     + (", or put your firmware there" if config.loader == "uefi-custom" else "")
                                     + f"; loader={config.loader})"))
            if config.flag("uefi_vars") and not loaders.vars_path(ref).exists() \
                    and not self.host.devpath(loaders.VARS_TEMPLATE).is_file():
                found.append(Problem(f"uefi_vars=yes but the UEFI variable template {loaders.VARS_TEMPLATE} is "
                                     "missing (install sysutils/edk2)"))
            return found
        found = []
        if not config.disks:
            found.append(Problem(f"loader={config.loader} boots from disk0, but the guest has no disk0"))
        elif config.loader == "grub" and disk_rules.is_share(config.disks[0]):
            found.append(Problem("grub-bhyve cannot boot from a virtio-9p share (disk0); use bhyveload or UEFI"))
        tool = "grub-bhyve" if config.loader == "grub" else "bhyveload"
        if self.host.which(tool) is None:
            hint = " (pkg install grub2-bhyve)" if tool == "grub-bhyve" else ""
            found.append(Problem(f"loader={config.loader} needs {tool}, which is not on PATH{hint}"))
        return found

    def _cpu_problems(self, config: GuestConfig) -> list[str]:
        result = self.host.run(["sysctl", "-n", "hw.vmm.maxcpu"], check=False)
        text = result.stdout.strip()
        if result.status != 0 or not text.isdigit():
            return []  # vmm not loaded is reported already
        if int(config.cpu) > int(text):
            return [Problem(f"cpu={config.cpu} but this host allows at most {text} vCPUs per guest "
                            "(sysctl hw.vmm.maxcpu)")]
        return []

    def _passthru_problems(self, config: GuestConfig) -> list[str]:
        wanted = [(r.key, config.values[r.key].partition("=")[0]) for r in devices.passthru_requests(config)]
        if not wanted:
            return []
        listing = self.host.run(["pciconf", "-l"], check=False).stdout
        drivers: dict[str, str] = {}
        for line in listing.splitlines():
            head = line.split("\t", 1)[0].split()[0] if line.strip() else ""
            driver, _, where = head.partition("@pci")
            parts = where.rstrip(":").split(":")
            if len(parts) == 4:
                drivers["/".join(str(int(p)) for p in parts[1:])] = driver.rstrip("0123456789")
        problems: list[str] = []
        for key, host_dev in wanted:
            normalised = "/".join(str(int(p)) for p in host_dev.split("/"))
            attached = drivers.get(normalised)
            if attached is None:
                problems.append(Problem(f"{key}={host_dev}: the host has no PCI device {host_dev} (pciconf -l)"))
            elif attached != "ppt":
                problems.append(Problem(f"{key}={host_dev}: the device is attached to {attached}, not ppt(4); "
                                        f"reserve it with pptdevs=\"{host_dev}\" in /boot/loader.conf"))
        return problems

    def _tpm_problems(self, ref: GuestRef, config: GuestConfig) -> list[str]:
        tpm = tpm_rules.of(config, ref)
        if tpm and tpm_rules.needs_host_device(tpm) and not self.host.devpath(tpm[1]).exists():
            return [Problem(f"tpm=passthru but {tpm[1]} does not exist on this host")]
        return []

    # -- one boot -----------------------------------------------------------------------------------------
    def plan(self, request: BootRequest) -> planner.Planned:
        return planner.plan(self.host, self.store.config_dir / "null.iso", request, self.vnc_ports)

    def plan_boot(self, request: BootRequest) -> BootPlan:
        boot = self.plan(request).boot
        if request.restore is not None:
            boot.hypervisor = checkpoint.restore_argv(boot.hypervisor, request.restore)
            boot.restore = request.restore
        return boot

    def classify(self, status: int, ref: GuestRef) -> Outcome:
        if status < 0:
            return Outcome.KILLED
        return EXIT_OUTCOMES.get(status, Outcome.ERROR)

    # -- a running guest ----------------------------------------------------------------------------------
    def request_shutdown(self, ref: GuestRef, pid: int) -> None:
        """SIGTERM: once the guest has enabled ACPI, bhyve turns it into a power-button press."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def _bhyvectl(self, ref: GuestRef, action: str) -> None:
        if planner.vmm_exists(self.host, ref.name):
            self.host.run(["bhyvectl", f"--vm={ref.name}", action])

    def force_poweroff(self, ref: GuestRef, pid: int | None) -> None:
        self._bhyvectl(ref, "--force-poweroff")

    def force_reset(self, ref: GuestRef, pid: int | None) -> None:
        self._bhyvectl(ref, "--force-reset")

    def control_argv(self, ref: GuestRef, request: str, pid: int | None) -> list[str]:
        """SIGTERM to bhyve for the power button; bhyvectl(8) for the forced power-off and reset."""
        if request == "shutdown":
            return ["kill", "-TERM", str(pid)]
        return ["bhyvectl", f"--vm={ref.name}", "--force-poweroff" if request == "poweroff" else "--force-reset"]

    # -- suspend and resume (hivectl/drivers/bhyve/checkpoint.py) -----------------------------------------
    def checkpoint_problem(self) -> str | None:
        return checkpoint.support_problem(self.host)

    def suspend_argv(self, ref: GuestRef, pid: int | None) -> list[list[str]]:
        return [checkpoint.suspend_argv(ref)]

    def suspend(self, ref: GuestRef, pid: int, timeout: float) -> None:
        checkpoint.suspend(self.host, ref)

    def cleanup(self, ref: GuestRef) -> list[Action]:
        """Destroy the VM (bhyve never does) and remove the virtio-console sockets bhyve leaves behind.

        The ``-k`` file (it may hold the VNC password) goes too: the supervisor removes it after a normal
        boot, but a boot that failed part-way, a stop before bhyve ran, or a run cleaned up by ``stop`` or an
        adopting supervisor never reaches that step.
        """
        actions: list[Action] = []
        if planner.vmm_exists(self.host, ref.name):
            actions.append(planner.destroy_vmm(ref.name))
        layout = ref.layout
        leftovers = sorted(ref.directory.glob(f"{VIRT_CONSOLE_PREFIX}*"))
        if layout.bhyve_config.exists():
            leftovers.append(layout.bhyve_config)
        if leftovers:
            actions.append(RemoveFiles(leftovers))
        return actions + swtpm.stop_action(layout, _tpm_socket(ref))

    def leftover_vm(self, ref: GuestRef) -> str | None:
        """``/dev/vmm/NAME``: vmm(4) keeps a VM until ``bhyvectl --destroy`` (bhyvectl(8)), whoever made it."""
        return f"/dev/vmm/{ref.name}" if planner.vmm_exists(self.host, ref.name) else None

    def clear_hint(self, ref: GuestRef) -> str:
        return f"bhyvectl --destroy --vm={ref.name}"


def _tpm_socket(ref: GuestRef) -> Path:
    """The swtpm socket of the guest's config (the default one when the config cannot be read)."""
    try:
        tpm = tpm_rules.of(ref.config(), ref)
    except (OSError, ConfigError):
        tpm = None
    return Path(tpm[1]) if tpm is not None and tpm_rules.is_software(tpm) else ref.layout.swtpm_socket


def config_problems(ref: GuestRef, config: GuestConfig) -> list[ConfigError]:
    """Every cross-key problem the planner would raise, found without the host or the guest's ports."""
    found: list[ConfigError] = []

    def attempt(check: Callable[[], object]) -> None:
        try:
            check()
        except ConfigError as error:
            if str(error) not in (str(e) for e in found):
                found.append(error)

    attempt(lambda: options.pins(config, int(options.topology(config).cpus)))
    attempt(lambda: allocate(devices.layout_request(config, install=False,
                                                    fbuf=config.is_uefi and config.flag("graphics"))))
    attempt(lambda: devices.console_ports(config, ref.directory))
    attempt(lambda: options.raw_options(config, "bhyve_options"))
    attempt(lambda: options.raw_options(config, "bhyveload_args"))
    attempt(lambda: tpm_rules.of(config, ref))
    for disk in config.disks:
        attempt(partial(disk_rules.disk_path, ref, config, disk))
        attempt(partial(disk_rules.disk_opts, config, disk))
    for index, _value in devices.numbered(config, "passthru"):
        key = f"passthru{index}_options"
        attempt(partial(parse_opts, config.path, key, config.values.get(key, "")))
    return found


def warnings(config: GuestConfig) -> list[str]:
    """Settings that are accepted but cannot do what they say with this config."""
    found: list[str] = []
    if config.flag("graphics") and not config.is_uefi:
        found.append(Problem(f"graphics=yes is ignored with loader={config.loader}: bhyve's frame buffer needs "
                             "UEFI firmware, so this guest has no VNC console (vm-bhyve ignores this silently, "
                             "churchers#578)", "warning"))
    if config.get("tpm") not in ("", "none") and not config.is_uefi:
        found.append(Problem(f"tpm={config.get('tpm')} with loader={config.loader}: only UEFI firmware uses a TPM",
                             "warning"))
    for nic in config.nics:
        if nic.mtu and not nic_rules.tells_mtu(nic):
            found.append(Problem(f"{nic.key}_mtu={nic.mtu} is ignored: only virtio-net tells the guest its MTU "
                                 f"({nic.key}_type={nic.type})", "warning"))
    return found
