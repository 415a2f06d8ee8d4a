"""What every QEMU device kind answers, and the context one boot's devices are built in.

A kind is one module of this package with ``KIND``: the ``PciDevice`` list it adds for the config
(``devices``), and anything it must finish once every device has its address (``placed``).
``registry.KINDS`` lists the kinds in vm-bhyve's device order, which ``argv.pci_devices`` walks; the
addresses themselves come from ``slots.place``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hivectl.drivers.base import BootRequest
from hivectl.drivers.qemu.consoles import Sockets
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError


@dataclass
class DeviceContext:
    """One boot's request, its socket names, and the list every kind reports config problems into."""

    request: BootRequest
    sockets: Sockets
    problems: list[ConfigError]


class QemuDeviceKind:
    """One kind of QEMU device, built from vm-bhyve's keys (docs/qemu.md lists the mapping)."""

    name = ""

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        """This kind's devices for the boot, in config order; invalid ones are reported and left out."""
        raise NotImplementedError

    def placed(self, devices: list[PciDevice]) -> None:
        """Called with every device of the boot once each has its PCI address."""
