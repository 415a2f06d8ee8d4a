"""The LPC bridge, always present: it carries the COM ports, the boot ROM and fwcfg.

It sits at bus 0 slot 31 as in vm-bhyve (Windows insists on 31, bhyve(8) ``-s 31,lpc``), so slot 31 is
reserved even for pins. ``lpc_slot`` moves it to another slot of bus 0 (bhyve refuses an LPC bridge on
any other bus, pci_lpc.c) for guests made by hand with ``-s 1,lpc`` that ``hivectl import`` keeps as they
were; that slot is then stepped over by the counted devices.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import HOSTBRIDGE_SLOT, LPC_SLOT, Fixed, PciAddr, Placement, Rule, parse_pin
from hivectl.errors import ConfigError


class Lpc(DeviceKind):
    name = "lpc"
    slot_order = 10
    placements = ("lpc",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        value = boot.config.get("lpc_slot")
        if not value:
            return Fixed(self.name, PciAddr(0, LPC_SLOT), "31")
        addr = parse_pin(boot.config.path, "lpc_slot", value)
        if addr.bus != 0 or addr.slot == HOSTBRIDGE_SLOT:
            raise ConfigError(boot.config.path, "lpc_slot", value, "the LPC bridge must be on bus 0, not at slot 0 "
                                                                   "(the host bridge)")
        if addr.slot == LPC_SLOT:
            return Fixed(self.name, addr, "31" if addr.func == 0 else str(addr))
        return Fixed(self.name, addr, str(addr), reserve=True)

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        return PciDevice(placement, "lpc")


KIND = Lpc()
