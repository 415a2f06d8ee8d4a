"""``virt_random=yes``: ``virtio-rng-pci`` fed by ``/dev/urandom`` (bhyve's virtio-rnd)."""

from __future__ import annotations

from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import join
from hivectl.drivers.qemu.slots import PciDevice


class Rng(QemuDeviceKind):
    name = "rng"
    slot_order = 30

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        if not ctx.request.config.flag("virt_random"):
            return []
        return [PciDevice("virt_random", "virtio-rng-pci", [("rng", "rng0")],
                          before=["-object", join("rng-random", [("id", "rng0"), ("filename", "/dev/urandom")])])]


KIND = Rng()
