"""Every QEMU device kind, in the order vm-bhyve places bhyve's (``lib/vm-run``): the install medium, disks,
NICs, the RNG, passthrough, graphics, the USB tablet, sound, virtio consoles.

The order is the command-line order and the order automatic PCI slots are handed out in, so a new kind
goes where vm-bhyve would place its bhyve counterpart, or last if it has none.
"""

from __future__ import annotations

from hivectl.drivers.qemu.devices import (
    disk,
    graphics,
    install,
    nic,
    passthru,
    rng,
    sound,
    usb,
    virt_console,
)
from hivectl.drivers.qemu.devices.base import QemuDeviceKind

KINDS: tuple[QemuDeviceKind, ...] = (
    install.KIND, disk.KIND, nic.KIND, rng.KIND, passthru.KIND, graphics.KIND, usb.KIND, sound.KIND,
    virt_console.KIND,
)
