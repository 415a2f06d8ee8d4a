"""``netgraph``: an ng_bridge(4) node named after the switch (FreeBSD only, made by the administrator);
each NIC gets the first free ``linkN`` hook of it (vm-bhyve's ``lib/vm-switch-netgraph``)."""

from __future__ import annotations

from hivectl.errors import ConfigError, HivectlError
from hivectl.net import names
from hivectl.net.port import Port, nic_mtu
from hivectl.net.switchtypes.base import SwitchType
from hivectl.patterns import Pattern

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.host.base import Host
    from hivectl.model.guest import GuestConfig, Nic
    from hivectl.net.switches import Switch
    from hivectl.net.switchtypes.base import Planner

_NG_HOOK = Pattern(r"link([0-9]+)$")


def free_link(host: Host, switch: str, taken: set[int]) -> int:
    """The first ``linkN`` (N ≥ 2, as vm-bhyve counts) that the switch's ng_bridge node does not use yet."""
    result = host.run(["ngctl", "show", f"{switch}:"], check=False)
    if result.status != 0:
        raise HivectlError(f"netgraph switch {switch}: there is no netgraph node '{switch}:' (create an "
                           "ng_bridge node with that name first)")
    used = set(taken)
    for line in result.stdout.splitlines():
        words = line.split()
        match = _NG_HOOK.match(words[0]) if words else None
        if match:
            used.add(int(match.group(1)))
    number = 2
    while number in used:
        number += 1
    taken.add(number)
    return number


class Netgraph(SwitchType):
    name = "netgraph"
    order = 30
    linux = False

    def iface(self, sw: Switch, planner: Planner) -> str:
        return f"{sw.name}:"

    def freebsd_port(self, host: Host, nic: Nic, sw: Switch, conf: GuestConfig,
                     links: dict[str, set[int]]) -> Port | None:
        if nic.span:
            raise ConfigError(conf.path, f"network{nic.index}_span", "yes", "netgraph switches have no span ports")
        taken = links.setdefault(sw.name, set())
        backend = names.netgraph_backend(sw.name, free_link(host, sw.name, taken))
        return Port(nic.index, backend, sw.name, backend, nic_mtu(nic, conf, None), created=False)


TYPE = Netgraph()
