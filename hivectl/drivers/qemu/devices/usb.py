"""``xhci_mouse=yes``: ``qemu-xhci`` with a ``usb-tablet`` on its bus (bhyve's ``xhci,tablet``)."""

from __future__ import annotations

from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import join
from hivectl.drivers.qemu.slots import PciDevice


class Usb(QemuDeviceKind):
    name = "usb"
    slot_order = 60

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        if not ctx.request.config.flag("xhci_mouse"):
            return []
        return [PciDevice("xhci_mouse", "qemu-xhci", [("id", "xhci")],
                          after=["-device", join("usb-tablet", [("bus", "xhci.0")])])]


KIND = Usb()
