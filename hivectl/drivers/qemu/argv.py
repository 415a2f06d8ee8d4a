"""One boot of one guest as a QEMU command line: pure planning from the config (golden-testable).

The order of the arguments is fixed (machine, firmware, kernel, control sockets, serial ports, PCI devices
in vm-bhyve's order, VNC), so the same config always renders the same command, and a diff between two
renderings shows exactly what changed.
"""

from __future__ import annotations

from pathlib import Path

from hivectl import validate
from hivectl.drivers import swtpm
from hivectl.drivers.base import BootPlan, BootRequest
from hivectl.drivers.qemu import accel as accel_mod
from hivectl.drivers.qemu import consoles, machine
from hivectl.drivers.qemu import tpm as tpm_mod
from hivectl.drivers.qemu.devices import registry
from hivectl.drivers.qemu.devices.base import DeviceContext
from hivectl.drivers.qemu.firmware import CopyOnce, Firmware, firmware_for
from hivectl.drivers.qemu.options import join
from hivectl.drivers.qemu.slots import PciDevice, place
from hivectl.errors import ConfigError, ValidationErrors
from hivectl.model.guest import GuestConfig
from hivectl.plan import Action, WriteFile
from hivectl.store import GuestRef

QEMU_BINARY = "qemu-system-x86_64"
BASE_OPTIONS = ["-nodefaults", "-no-user-config", "-display", "none",
                # A guest reboot ends QEMU (exit 0) instead of resetting in place, so the supervisor sees every
                # reboot as bhyve shows it; the QMP SHUTDOWN event's reason tells it from a power-off.
                "-action", "reboot=shutdown"]


def guest_path(ref: GuestRef, value: str) -> Path:
    """A path from the config: absolute as written, relative to the guest's directory otherwise."""
    path = Path(value)
    return path if path.is_absolute() else ref.directory / path


def kernel_args(ref: GuestRef, config: GuestConfig) -> list[str]:
    """Direct kernel boot (hivectl keys ``qemu_kernel``/``qemu_initrd``/``qemu_append``)."""
    kernel = config.get("qemu_kernel")
    if not kernel:
        for key in ("qemu_initrd", "qemu_append"):
            if config.get(key):
                raise ConfigError(config.path, key, config.get(key), "only meaningful together with qemu_kernel")
        return []
    args = ["-kernel", str(guest_path(ref, kernel))]
    if config.get("qemu_initrd"):
        args += ["-initrd", str(guest_path(ref, config.get("qemu_initrd")))]
    if config.get("qemu_append"):
        args += ["-append", config.get("qemu_append")]
    return args


def graphics_wait(config: GuestConfig, request: BootRequest) -> bool:
    """``graphics_wait``: yes always, auto only on the first boot of an install (vm-bhyve's rule)."""
    if not config.flag("graphics"):
        return False
    wait = config.get("graphics_wait") or "auto"
    return wait == "yes" or (wait == "auto" and request.install_media is not None and request.first_boot)


def _slot_setting(config: GuestConfig, key: str) -> int:
    return validate.integer(config.path, key, config.get(key), 1, 30)


def pci_devices(request: BootRequest, sockets: consoles.Sockets, problems: list[ConfigError]) -> list[PciDevice]:
    """Every PCI device of this boot, placed on the root bus."""
    config = request.config
    ctx = DeviceContext(request, sockets, problems)
    devices: list[PciDevice] = [d for kind in registry.KINDS for d in kind.devices(ctx)]
    try:
        first = _slot_setting(config, "start_slot")
        _slot_setting(config, "install_slot")
    except ConfigError as error:
        problems.append(error)
        return devices
    problems += place(devices, first, config.path)
    for kind in registry.KINDS:
        kind.placed(devices)
    return devices


def plan_boot(request: BootRequest, accel: str, ovmf_code: Path, ovmf_vars: Path,
              binary: str = QEMU_BINARY) -> BootPlan:
    """The whole boot: prepare actions, the QEMU argv, console lines and secrets.

    Every problem found in the config is collected and raised at once (``ValidationErrors``), each naming
    the file, the key and the value.
    """
    ref, config = request.ref, request.config
    problems: list[ConfigError] = []
    sockets = consoles.Sockets(ref.layout)
    result = BootPlan()
    argv = [binary]
    try:
        argv += machine.machine_args(config, ref.name)
    except ConfigError as error:
        problems.append(error)
    argv[1:1] = accel_mod.machine_args(accel)
    argv += BASE_OPTIONS
    firmware: Firmware = firmware_for(ref, config, ovmf_code, ovmf_vars)
    argv += firmware.argv()
    if firmware.vars is not None and firmware.vars_template is not None:
        result.prepare.append(CopyOnce(firmware.vars_template, firmware.vars))
    try:
        argv += kernel_args(ref, config)
    except ConfigError as error:
        problems.append(error)
    if graphics_wait(config, request):
        argv.append("-S")  # paused until a VNC client is in (the supervisor's QMP watcher sends "cont")
    argv += consoles.qmp_args(sockets)
    try:
        serial, result.console = consoles.serial_args(config, sockets, request.foreground)
        argv += serial
        if any(f"logfile={sockets.console_log}" in arg for arg in serial):
            result.prepare += consoles.private_log(sockets.console_log)
    except ConfigError as error:
        problems.append(error)
    for device in pci_devices(request, sockets, problems):
        argv += device.argv()
    tpm = tpm_mod.of(config, ref)
    if tpm is not None:
        argv += tpm_mod.argv(tpm)
        if tpm[0] == "swtpm":  # listening before QEMU starts (hivectl/drivers/swtpm.py)
            result.prepare.append(swtpm.StartSwtpm(ref.layout, tpm[1]))
    if config.flag("graphics"):
        try:
            vnc = consoles.vnc_for(config, sockets)
        except ConfigError as error:
            problems.append(error)
        else:
            if vnc.secret:
                result.prepare.append(_secret_action(sockets.vnc_secret, config.get("vnc_password")))
                result.secrets.append(sockets.vnc_secret)
                argv += ["-object", join("secret", [("id", "vncpass"), ("file", str(sockets.vnc_secret))])]
            argv += ["-vnc", vnc.option]
            result.console["vnc"] = vnc.line
    if problems:
        raise ValidationErrors(problems)
    result.hypervisor = argv
    return result


def _secret_action(path: Path, password: str) -> Action:
    """The VNC password in a 0600 file; the dry run shows where, never what."""
    return WriteFile(path, password, ["install", "-m", "600", "<vnc_password>", str(path)], mode=0o600)
