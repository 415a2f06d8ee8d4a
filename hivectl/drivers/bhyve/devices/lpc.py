"""The LPC bridge at bus 0 slot 31, always present: it carries the COM ports, the boot ROM and fwcfg.

Windows insists on slot 31 (bhyve(8), ``-s 31,lpc``), so the slot is reserved even for pins.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import LPC_SLOT, Fixed, PciAddr, Placement, Rule


class Lpc(DeviceKind):
    name = "lpc"
    placements = ("lpc",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        return Fixed(self.name, PciAddr(0, LPC_SLOT), "31")

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        return PciDevice(placement, "lpc")


KIND = Lpc()
