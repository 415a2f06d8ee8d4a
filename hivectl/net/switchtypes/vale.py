"""``vale``: a netmap VALE switch (FreeBSD only); nothing exists on the host until a guest attaches, each
NIC is a VALE port named from the switch and the NIC's MAC (vm-bhyve's ``lib/vm-switch-vale``)."""

from __future__ import annotations

from hivectl.errors import ConfigError
from hivectl.net import names
from hivectl.net.port import Port, nic_mtu
from hivectl.net.switchtypes.base import SwitchType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.host.base import Host
    from hivectl.model.guest import GuestConfig, Nic
    from hivectl.net.switches import Switch
    from hivectl.net.switchtypes.base import Planner


class Vale(SwitchType):
    name = "vale"
    order = 20
    linux = False

    def iface(self, sw: Switch, planner: Planner) -> str:
        return names.vale_switch(sw.name)

    def freebsd_port(self, host: Host, nic: Nic, sw: Switch, conf: GuestConfig,
                     links: dict[str, set[int]]) -> Port | None:
        key = f"network{nic.index}"
        if nic.span:
            raise ConfigError(conf.path, f"{key}_span", "yes", "VALE switches have no span ports")
        if not nic.mac:
            raise ConfigError(conf.path, f"{key}_mac", "", f"a NIC on VALE switch {sw.name} needs a fixed MAC "
                                                          "address (its VALE port name is derived from it)")
        backend = names.vale_backend(sw.name, nic.mac)
        return Port(nic.index, backend, sw.name, backend, nic_mtu(nic, conf, None), created=False)


TYPE = Vale()
