"""The host side of one guest NIC, as every switch type and both hypervisor drivers see it."""

from __future__ import annotations

from hivectl import validate
from hivectl.model.guest import GuestConfig, Nic
from hivectl.plan import Action
from hivectl.records import field, record

DEFAULT_MTU = 1500


@record
class Port:
    """The host side of one guest NIC."""

    index: int  # networkN
    ifname: str  # tap name (or the existing device for networkN_device)
    switch: str = ""
    backend: str = ""  # what the hypervisor gets: bhyve "tap3" / "web1,type=tap" / "vale…:…" / netgraph…
    mtu: int | None = None
    created: bool = True  # False for networkN_device: never destroyed by us
    setup: list[Action] = field(default_factory=list)
    teardown: list[Action] = field(default_factory=list)
    bridge: str = ""  # the bridge the port joins ("" for none, VALE and netgraph)


def nic_mtu(nic: Nic, conf: GuestConfig, bridge_mtu: int | None) -> int | None:
    """``networkN_mtu`` if set, else the bridge's MTU when it is not the default (vm-bhyve copies it)."""
    if nic.mtu:
        return validate.mtu(conf.path, f"network{nic.index}_mtu", nic.mtu)
    if bridge_mtu is not None and bridge_mtu != DEFAULT_MTU:
        return bridge_mtu
    return None
