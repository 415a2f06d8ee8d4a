"""PCI passthrough (``passthruN=B/S/F[=S2:F2]``, ``passthruN_options``): a host device handed to the guest.

Placement is vm-bhyve's (``lib/vm-run``): ``=S2:F2`` puts the device exactly at slot S2 function F2 (on the
bus the counter is on); the others share one guest slot while their host *bus* stays the same. The guest's
memory must be wired (bhyve(8) ``-S``), and the host device must be reserved for ppt(4).
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs, numbered
from hivectl.drivers.bhyve.model import PciDevice, parse_opts
from hivectl.drivers.bhyve.slots import Grouped, GroupItem, Placement, Rule
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig
from hivectl.safety import values


def requests(config: GuestConfig) -> list[GroupItem]:
    """``passthruN`` grouped by host bus, with the fixed guest ``(slot, func)`` if ``=S:F`` was given."""
    result = []
    for index, value in numbered(config, "passthru"):
        host, _, fixed = value.partition("=")
        pos = None
        if fixed:
            slot, func = fixed.split(":")
            if int(slot) > 31 or int(slot) in (0, 31):
                raise ConfigError(config.path, f"passthru{index}", value,
                                  "the guest slot after '=' must be 1-30 (0 and 31 are the host and LPC bridges)")
            pos = (int(slot), int(func))
        result.append(GroupItem(f"passthru{index}", host.split("/")[0], pos))
    return result


class Passthru(DeviceKind):
    name = "passthru"
    slot_order = 50
    placements = ("passthru",)
    wires_memory = True

    def rule(self, boot: LayoutInput) -> Rule | None:
        return Grouped(self.name, tuple(requests(boot.config)))

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        key = placement.members[0]
        host = ctx.config.values[key].partition("=")[0]
        text = ctx.config.values.get(f"{key}_options", "")
        values.passthru_options(ctx.config.path, f"{key}_options", text)  # never bus/slot/func/pptdev
        return PciDevice(placement, "passthru", host, parse_opts(ctx.config.path, f"{key}_options", text))

    def head_keys(self, device: PciDevice, node: str) -> Pairs:
        bus, slot, func = (device.head or "").split("/")
        return [(f"{node}.bus", bus), (f"{node}.slot", slot), (f"{node}.func", func)]

    def opts_key(self, device: PciDevice) -> str:
        return f"{device.placement.members[0]}_options"


KIND = Passthru()
