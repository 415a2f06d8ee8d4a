"""NICs (``networkN_*``): functions 0-7 of a slot after the disks, the host port as backend, ``mac=``/``mtu=``.

The backend is the host port ``hivectl.net.ports`` planned for the NIC (a tap, a vale port, a netgraph
hook). A renamed tap needs ``type=tap`` because bhyve matches backends by name prefix (bhyve(8),
net_backends.c), so that one head token carries its own option; bhyve_config(5) names it ``backend``.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs, generic_pairs
from hivectl.drivers.bhyve.model import Opt, PciDevice
from hivectl.drivers.bhyve.slots import Functions, Item, Placement, Rule, parse_pin
from hivectl.errors import HivectlError
from hivectl.model.guest import Nic
from hivectl.net.ports import Port
from hivectl.safety.values import bhyve_token


def tells_mtu(nic: Nic) -> bool:
    """Only virtio-net tells the guest an MTU (``mtu=``); e1000 has no such option."""
    return nic.type == "virtio-net"


def backend(port: Port) -> str:
    """The backend text bhyve gets; a renamed tap needs ``type=tap`` (bhyve matches backends by name prefix)."""
    if port.backend:
        return port.backend
    if port.ifname.startswith(("tap", "vmnet")):
        return port.ifname
    return f"{port.ifname},type=tap"


class NicKind(DeviceKind):
    name = "nic"
    slot_order = 30
    placements = ("nic",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        source = boot.config.path
        items = tuple(Item(n.key, parse_pin(source, f"{n.key}_slot", n.slot) if n.slot else None)
                      for n in boot.config.nics)
        return Functions(self.name, items)

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        nic = next(n for n in ctx.config.nics if n.key == placement.members[0])
        port = ctx.ports.get(nic.index)
        if port is None:
            raise HivectlError(f"{nic.key} has no host port (the network planner returned none for it)")
        text = backend(port)
        for part in text.split(","):
            if "\\" in part or "%" in part or not part:
                raise HivectlError(f"{nic.key}: backend {text!r} cannot be given to bhyve")
        opts: list[Opt] = []
        if nic.mac:
            opts.append(Opt("mac", nic.mac))
        if tells_mtu(nic):
            mtu = nic.mtu or (str(port.mtu) if port.mtu and port.mtu != 1500 else "")
            if mtu:
                opts.append(Opt("mtu", mtu))
        return PciDevice(placement, nic.type, text, tuple(opts))

    def head_text(self, device: PciDevice, head: str) -> str:
        """The backend with its own options (``,type=tap``), each item checked."""
        for part in head.split(","):
            bhyve_token(part)
        return head

    def head_keys(self, device: PciDevice, node: str) -> Pairs:
        name, _, rest = (device.head or "").partition(",")
        return [(f"{node}.backend", name), *(generic_pairs(node, rest) if rest else [])]


KIND = NicKind()
