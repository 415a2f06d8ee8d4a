"""``xhci_mouse=yes``: a USB 3 controller with a tablet, so the VNC pointer tracks (bhyve(8) ``xhci,tablet``).

bhyve_config(5) names the tablet as the device in the controller's USB slot 1.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import Placement, Rule, own_slot


class Xhci(DeviceKind):
    name = "xhci"
    slot_order = 70
    placements = ("xhci",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        if not boot.config.flag("xhci_mouse"):
            return None
        return own_slot(self.name, boot.config.path, "xhci_slot", boot.config.get("xhci_slot"))

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        return PciDevice(placement, "xhci", "tablet")

    def head_keys(self, device: PciDevice, node: str) -> Pairs:
        return [(f"{node}.slot.1.device", device.head or "")]


KIND = Xhci()
