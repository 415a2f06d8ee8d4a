"""``virt_consoleN``: one virtio-console device whose ports are Unix sockets in the guest directory.

``yes``/``on``/``1`` numbers a port, other text names it (vm-bhyve's ``lib/vm-run``). bhyve binds the
sockets and never removes them, so they are removed before each start (``sockets``).
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs, numbered
from hivectl.drivers.bhyve.model import PciDevice, check_text
from hivectl.drivers.bhyve.slots import Placement, Rule, own_slot
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import VIRT_CONSOLE_PREFIX
from hivectl.patterns import Pattern
from hivectl.safety.values import bhyve_token

MAX_CONSOLE_PORTS = 16  # bhyve's virtio-console limit
SUN_PATH_MAX = 103  # FreeBSD's sockaddr_un path (104 bytes with the NUL)
_CONSOLE_NAME = Pattern(r"[A-Za-z0-9_.-]+")


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


class VirtioConsole(DeviceKind):
    name = "console"
    slot_order = 90
    placements = ("console",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        if not boot.config.values.get("virt_console0"):
            return None
        return own_slot(self.name, boot.config.path, "virt_console_slot", boot.config.get("virt_console_slot"))

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        return PciDevice(placement, "virtio-console", named=tuple(console_ports(ctx.config, ctx.ref.directory)))

    def conf(self, device: PciDevice) -> str:
        return ",".join(f"{bhyve_token(name)}={bhyve_token(path)}" for name, path in device.named)

    def keys(self, device: PciDevice, node: str) -> Pairs:
        pairs: Pairs = [(f"{node}.device", device.emulation)]
        for index, (name, path) in enumerate(device.named):
            pairs += [(f"{node}.port.{index}.name", name), (f"{node}.port.{index}.path", path)]
        return pairs

    def sockets(self, device: PciDevice) -> list[Path]:
        return [Path(path) for _name, path in device.named]


KIND = VirtioConsole()
