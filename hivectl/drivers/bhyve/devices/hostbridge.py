"""The PCI host bridge at bus 0 slot 0: ``hostbridge``, or AMD's IDs with ``hostbridge=amd``.

``hostbridge=none``/``no`` leaves the device out (vm-bhyve's ``lib/vm-run``), but slot 0 stays reserved
(``slots.allocate``). bhyve_config(5) has no ``amd_hostbridge`` device: it is the hostbridge device with
AMD's vendor and device IDs (bhyve's pci_hostbridge.c).
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import HOSTBRIDGE_SLOT, Fixed, PciAddr, Placement, Rule

AMD = "amd_hostbridge"


class HostBridge(DeviceKind):
    name = "hostbridge"
    slot_order = 0
    placements = ("hostbridge",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        if boot.config.get("hostbridge").startswith("no"):
            return None
        return Fixed(self.name, PciAddr(0, HOSTBRIDGE_SLOT), "0")

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        amd = ctx.config.get("hostbridge") == "amd"
        return PciDevice(placement, AMD if amd else "hostbridge")

    def keys(self, device: PciDevice, node: str) -> Pairs:
        if device.emulation == AMD:
            return [(f"{node}.device", "hostbridge"), (f"{node}.pcireg.vendor", "0x1022"),
                    (f"{node}.pcireg.device", "0x7432")]
        return super().keys(device, node)


KIND = HostBridge()
