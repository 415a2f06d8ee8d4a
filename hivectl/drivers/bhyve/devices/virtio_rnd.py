"""``virt_random=yes``: a virtio-rnd device feeding the guest from the host's random source (bhyve(8))."""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import Placement, Rule, own_slot


class VirtioRnd(DeviceKind):
    name = "rnd"
    slot_order = 40
    placements = ("rnd",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        if not boot.config.flag("virt_random"):
            return None
        return own_slot(self.name, boot.config.path, "virt_random_slot", boot.config.get("virt_random_slot"))

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        return PciDevice(placement, "virtio-rnd")


KIND = VirtioRnd()
