"""What every switch type answers: its settings, its host objects on each platform, how guests attach.

A switch type is one module of this package holding ``TYPE``; ``registry.TYPES`` finds them by scanning
the package and sorts them by ``order`` (the ``type_S`` values vm-bhyve writes to system.conf, the
``switch create -t`` choices, in vm-bhyve's order). The platform planners
(``net/freebsd.py``: ifconfig; ``net/linux.py``: iproute2) provide the host mechanics and ask the type
which of them a switch needs, so no other module tests a switch type by name
(``tests/net/test_switch_types.py`` keeps it that way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hivectl.errors import UsageError
from hivectl.plan import Action

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any, Protocol

    from hivectl.host.base import Host
    from hivectl.model.guest import GuestConfig, Nic
    from hivectl.net.port import Port
    from hivectl.net.switches import Switch


if TYPE_CHECKING:  # a Protocol for mypy only: defining it at run time would import typing
    class Planner(Protocol):
        """The host mechanics a platform planner offers the switch types (FreeBSDSwitches, LinuxSwitches)."""

        platform: str

        def own_bridge(self, sw: Switch) -> str | None: ...
        def existing_bridge(self, sw: Switch) -> str | None: ...
        def check_ports(self, sw: Switch) -> None: ...
        def check_manual_bridge(self, sw: Switch) -> None: ...
        def check_vxlan_parent(self, sw: Switch) -> None: ...
        def init_standard(self, sw: Switch) -> list[Action]: ...
        def init_manual(self, sw: Switch) -> list[Action]: ...
        def init_vxlan(self, sw: Switch) -> list[Action]: ...
        def destroy_standard(self, sw: Switch) -> list[Action]: ...
        def destroy_manual(self, sw: Switch) -> list[Action]: ...
        def destroy_vxlan(self, sw: Switch) -> list[Action]: ...


class SwitchType:
    """One switch type. The defaults fit a type with no host objects of its own (vale, netgraph).

    ``has_bridge``: a bridge interface carries it on the host (members, private mode, MTU, addresses).
    ``create_options``: the ``switch create`` options that apply. ``linux``: the type exists on Linux.
    ``claims_existing_bridge``: the switch names an existing bridge, which no other switch may use.
    ``order``: the type's place in ``switch create -t``'s list (standard 0, manual 10, vale 20, netgraph
    30, vxlan 40, as vm-bhyve's vm.8 lists them).
    """

    name = ""
    order = -1
    has_bridge = False
    create_options: frozenset[str] = frozenset()
    linux = True
    claims_existing_bridge = False  # names a bridge that exists already, which no other switch may use

    # -- configuration --------------------------------------------------------------------------------
    def check_request(self, ports: tuple[str, ...], vlan: int | None, bridge: str) -> None:
        """Options ``switch create`` needs for this type, beyond the ones it accepts."""

    def check_editable(self, sw: Switch, what: str, platform: str) -> None:
        """Refuse changing member interfaces, VLAN or address where the type has no such setting."""
        raise UsageError(f"switch {sw.name} is a {sw.type} switch; {what} can only be changed on standard "
                         "switches")

    def iface(self, sw: Switch, planner: Planner) -> str:
        """What ``switch list`` shows in the IDENT column."""
        return self.bridge(sw, planner) or "-"

    def list_rows(self, r: Mapping[str, Any], text: Callable[[Any], str]) -> list[list[str]]:
        """vm-bhyve's ``switch list`` columns NAME TYPE IDENT ADDRESS PRIVATE MTU VLAN PORTS; n/a where the
        type has no such setting (``text`` formats a value)."""
        return [[r["name"], self.name, r["iface"], "n/a", "n/a", "n/a", "n/a", "n/a"]]

    def private_setting(self, sw: Switch) -> bool | None:
        """The private flag as ``switch list --json`` reports it (None where the type has no bridge)."""
        return sw.private if self.has_bridge else None

    def check_private(self, sw: Switch) -> None:
        if not self.has_bridge:
            raise UsageError(f"switch {sw.name} is a {sw.type} switch; private mode needs a bridge")

    # -- the host -------------------------------------------------------------------------------------
    def bridge(self, sw: Switch, planner: Planner) -> str | None:
        """The bridge interface carrying ``sw`` on this host, or None."""
        return None

    def wanted_members(self, sw: Switch) -> list[str]:
        """The interfaces the switch itself puts on its bridge (physical ports, VLAN children, vxlan)."""
        return []

    def check_create(self, sw: Switch, planner: Planner) -> None:
        """Refusals that depend on the host."""
        if not self.linux and planner.platform == "linux":
            raise UsageError(f"{sw.type} switches are a FreeBSD kernel feature; on Linux use a standard switch")

    def init(self, sw: Switch, planner: Planner) -> list[Action]:
        """Bring the switch to its configured state (nothing lives on the host for vale/netgraph)."""
        return []

    def destroy(self, sw: Switch, planner: Planner) -> list[Action]:
        return []

    # -- guests ---------------------------------------------------------------------------------------
    def freebsd_port(self, host: Host, nic: Nic, sw: Switch, conf: GuestConfig,
                     links: dict[str, set[int]]) -> Port | None:
        """A guest port of the type's own kind on FreeBSD, or None for a tap on the switch's bridge."""
        return None


def bridged_rows(name: str, r: Mapping[str, Any], text: Callable[[Any], str], mtu: str) -> list[list[str]]:
    """The ``switch list`` rows of a bridge hivectl made: a second row for an IPv6 address next to IPv4."""
    first = r["address"] or r["address6"]
    rows = [[r["name"], name, r["iface"], text(first), text(r["private"]), mtu, text(r["vlan"]), text(r["ports"])]]
    if r["address"] and r["address6"]:
        rows.append(["", "", "", r["address6"], "", "", "", ""])
    return rows
