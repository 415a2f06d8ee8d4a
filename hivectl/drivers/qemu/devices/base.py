"""What every QEMU device kind answers, and the context one boot's devices are built in.

A kind is one module of this package with ``KIND``: the ``PciDevice`` list it adds for the config
(``devices``), and anything it must finish once every device has its address (``placed``).
``registry.KINDS`` holds the kinds the package's modules declare, sorted by ``slot_order`` into vm-bhyve's
device order, which ``argv.pci_devices`` walks; the addresses themselves come from ``slots.place``. The
config keys a kind reads are declared in its device's module of hivectl/model/devices/.
"""

from __future__ import annotations

from hivectl.drivers.base import BootRequest
from hivectl.drivers.qemu.consoles import Sockets
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError
from hivectl.records import record


@record
class DeviceContext:
    """One boot's request, its socket names, and the list every kind reports config problems into."""

    request: BootRequest
    sockets: Sockets
    problems: list[ConfigError]


class QemuDeviceKind:
    """One kind of QEMU device, built from vm-bhyve's keys (docs/qemu.md lists the mapping).

    ``slot_order``: where the kind's devices go on the command line and in the automatic slot order
    (install medium 0, disks 10, NICs 20, RNG 30, passthrough 40, graphics 50, USB tablet 60, sound 70,
    virtio consoles 80: vm-bhyve's order of the bhyve counterparts); a new kind takes a free number
    where vm-bhyve would place its bhyve counterpart, or after 80.
    """

    name = ""
    slot_order = -1

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        """This kind's devices for the boot, in config order; invalid ones are reported and left out."""
        raise NotImplementedError

    def placed(self, devices: list[PciDevice]) -> None:
        """Called with every device of the boot once each has its PCI address."""
