"""Every QEMU device kind, found in this package and sorted into the order vm-bhyve places bhyve's
(``lib/vm-run``): the install medium, disks, NICs, the RNG, passthrough, graphics, the USB tablet, sound,
virtio consoles.

The order is the command-line order and the order automatic PCI slots are handed out in. A kind is a
module of this package with ``KIND``; ``discover`` sorts them by ``slot_order`` (devices/base.py), so a
new kind adds no line here.
"""

from __future__ import annotations

import sys

from hivectl.drivers.qemu.devices.base import QemuDeviceKind
from hivectl.model.modules import entries

_PACKAGE = __name__.rpartition(".")[0]


def discover() -> tuple[QemuDeviceKind, ...]:
    """The ``KIND`` of every module of the package (helpers have none), in ``slot_order``; two kinds with
    one ``slot_order`` would leave the order to chance and are refused."""
    return entries(_PACKAGE, sys.modules[_PACKAGE].__path__, "KIND", QemuDeviceKind, lambda k: k.slot_order,
                   lambda k: k.name, "QEMU device kinds")


KINDS: tuple[QemuDeviceKind, ...] = discover()
