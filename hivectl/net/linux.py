"""Switches on Linux: kernel bridges, VLAN and vxlan links, planned as iproute2 argv.

The QEMU driver runs guests on Linux, and the tests run every network path for real there (inside
network namespaces). The model is the FreeBSD one translated: a standard switch is a bridge called
``vm-<switch>`` (cut and hashed past 15 characters, because Linux has no named interface groups to find
it by), physical ports or their ``<port>.<vlan>`` children are bridge ports, the switch address goes on
the bridge, and ``private`` becomes bridge port isolation. A manual switch is an existing bridge. VALE
and netgraph are FreeBSD kernel features and are refused here with a clear message.

The host's state is read once per plan with ``ip -j -d addr show`` (JSON, so nothing is guessed from text).
"""

from __future__ import annotations

import ipaddress
import json

from hivectl.errors import Conflict, HivectlError, NotFound
from hivectl.host.base import Host
from hivectl.net import names
from hivectl.net.switches import Member, Switch
from hivectl.plan import Action, Run
from hivectl.records import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_MTU = 1500
VXLAN_PORT = "4789"


def ip(*args: str, undo: list[str] | None = None) -> Run:
    return Run(["ip", *args], undo_argv=undo)


@record
class Link:
    """One link from ``ip -j -d addr show``."""

    name: str
    kind: str = ""  # bridge, vlan, vxlan, tun, veth, "" for physical
    mtu: int = DEFAULT_MTU
    up: bool = False
    master: str = ""
    alias: str = ""
    isolated: bool = False
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = field(default_factory=list)

    def routable(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        return [a for a in self.addresses if not a.ip.is_link_local]


def parse_links(text: str) -> dict[str, Link]:
    links: dict[str, Link] = {}
    data: list[dict[str, Any]] = json.loads(text or "[]")
    for item in data:
        name = str(item.get("ifname", ""))
        if not name:
            continue
        info = item.get("linkinfo") or {}
        slave = info.get("info_slave_data") or {}
        addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
        for addr in item.get("addr_info") or []:
            try:
                addresses.append(ipaddress.ip_interface(f"{addr['local']}/{addr['prefixlen']}"))
            except (KeyError, ValueError):
                continue
        links[name] = Link(name, str(info.get("info_kind", "")), int(item.get("mtu", DEFAULT_MTU)),
                           "UP" in (item.get("flags") or []), str(item.get("master", "")),
                           str(item.get("ifalias", "")), bool(slave.get("isolated", False)), addresses)
    return links


class LinuxView:
    """Cached, read-only picture of the host's links, plus the names a plan reserves."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._links: dict[str, Link] | None = None
        self.reserved: set[str] = set()

    def links(self) -> dict[str, Link]:
        if self._links is None:
            self._links = parse_links(self.host.run(["ip", "-j", "-d", "addr", "show"]).stdout)
        return self._links

    def link(self, name: str) -> Link | None:
        return self.links().get(name)

    def exists(self, name: str) -> bool:
        return name in self.links()

    def reserve(self, name: str) -> None:
        self.reserved.add(name)


class LinuxSwitches:
    """Planner for Linux bridges (same interface as ``FreeBSDSwitches``)."""

    platform = "linux"

    def __init__(self, host: Host, view: LinuxView | None = None) -> None:
        self.host = host
        self.view = view or LinuxView(host)
        self.planned: dict[str, str] = {}  # switch -> bridge that init found or will create

    # -- lookups ----------------------------------------------------------------------------------------
    def bridge(self, sw: Switch) -> str | None:
        """The bridge carrying ``sw`` on this host, or None (the switch type decides which)."""
        return sw.kind.bridge(sw, self)

    def own_bridge(self, sw: Switch) -> str | None:
        name = names.linux_bridge_name(sw.name)
        return name if self.view.exists(name) else None

    def existing_bridge(self, sw: Switch) -> str | None:
        return sw.bridge if self.view.exists(sw.bridge) else None

    def bridge_after_init(self, sw: Switch) -> str | None:
        """The bridge ``sw`` has once the actions ``init`` planned have run."""
        return self.planned.get(sw.name) or self.bridge(sw)

    def bridge_mtu(self, bridge: str) -> int:
        link = self.view.link(bridge)
        return link.mtu if link else DEFAULT_MTU

    def _wanted_members(self, sw: Switch) -> list[str]:
        return sw.kind.wanted_members(sw)

    def members(self, sw: Switch) -> list[Member]:
        bridge = self.bridge(sw)
        if bridge is None:
            return []
        result = []
        wanted = self._wanted_members(sw)
        for link in self.view.links().values():
            if link.master != bridge:
                continue
            flags = frozenset({"PRIVATE"} if link.isolated else set())
            owner = names.parse_tap_description(link.alias)
            if owner is not None:
                result.append(Member(link.name, "guest", owner[0], owner[1], flags))
            else:
                result.append(Member(link.name, "port" if link.name in wanted else "other", flags=flags))
        return result

    def guests_attached(self, sw: Switch) -> list[Member]:
        return [m for m in self.members(sw) if m.kind == "guest"]

    def host_address_warnings(self, sw: Switch) -> list[str]:
        bridge = self.bridge(sw)
        warnings = []
        for member in self._wanted_members(sw):
            link = self.view.link(member)
            if link is None:
                continue
            held = [str(a) for a in link.routable()]
            if held:
                warnings.append(f"{member} is a port of {bridge or 'the switch bridge'} but still holds "
                                f"{', '.join(held)}; move the address to the bridge "
                                f"(hivectl switch address {sw.name} ADDRESS) or the host may be unreachable "
                                f"through {member}")
        return warnings

    def host_networks(self) -> list[str]:
        return [str(a) for link in self.view.links().values() for a in link.routable()]

    # -- create / init ----------------------------------------------------------------------------------
    def check_create(self, sw: Switch) -> None:
        """Refusals that depend on the host, as the switch type asks for them."""
        sw.kind.check_create(sw, self)

    def check_manual_bridge(self, sw: Switch) -> None:
        link = self.view.link(sw.bridge)
        if link is None:
            raise NotFound(f"bridge {sw.bridge} does not exist")
        if link.kind != "bridge":
            raise Conflict(f"{sw.bridge} is not a bridge interface")

    def check_ports(self, sw: Switch) -> None:
        for port in sw.ports:
            if not self.view.exists(port):
                raise NotFound(f"interface {port} does not exist (see ip link)")

    def check_vxlan_parent(self, sw: Switch) -> None:
        self.check_ports(sw)

    def init(self, sw: Switch) -> list[Action]:
        return sw.kind.init(sw, self)

    def init_manual(self, sw: Switch) -> list[Action]:
        link = self.view.link(sw.bridge)
        if link is None:
            raise NotFound(f"switch {sw.name}: bridge {sw.bridge} does not exist")
        return [] if link.up else [ip("link", "set", "dev", sw.bridge, "up")]

    def _new_bridge(self, sw: Switch) -> tuple[str, list[Action]]:
        bridge = names.linux_bridge_name(sw.name)
        if self.view.exists(bridge) or bridge in self.view.reserved:
            raise Conflict(f"interface {bridge} already exists")
        self.view.reserve(bridge)
        self.planned[sw.name] = bridge
        return bridge, [ip("link", "add", "name", bridge, "type", "bridge", undo=["ip", "link", "del", "dev", bridge]),
                        ip("link", "set", "dev", bridge, "alias", names.bridge_description(sw.name))]

    def _settle_bridge(self, sw: Switch, bridge: str, link: Link | None) -> list[Action]:
        """MTU, addresses and up state of an existing or planned bridge."""
        actions: list[Action] = []
        if sw.mtu is not None and (link is None or link.mtu != sw.mtu):
            actions.append(ip("link", "set", "dev", bridge, "mtu", str(sw.mtu)))
        have = link.addresses if link else []
        for addr in (sw.addr, sw.addr6):
            if addr is not None and addr not in have:
                actions.append(ip("addr", "add", str(addr), "dev", bridge))
        if link is None or not link.up:
            actions.append(ip("link", "set", "dev", bridge, "up"))
        return actions

    def init_standard(self, sw: Switch) -> list[Action]:
        bridge = self.bridge(sw)
        actions: list[Action] = []
        link = None
        if bridge is None:
            bridge, actions = self._new_bridge(sw)
        else:
            link = self.view.link(bridge)
        actions += self._settle_bridge(sw, bridge, link)
        for port in sw.ports:
            actions += self._configure_port(sw, bridge, port, sw.vlan)
        return actions

    def _configure_port(self, sw: Switch, bridge: str, port: str, vlan: int | None) -> list[Action]:
        actions: list[Action] = []
        port_link = self.view.link(port)
        if port_link is None:
            raise NotFound(f"switch {sw.name}: port {port} does not exist on this host")
        if sw.mtu is not None and port_link.mtu != sw.mtu:
            actions.append(ip("link", "set", "dev", port, "mtu", str(sw.mtu)))
        member = port
        member_link: Link | None = port_link
        if vlan:
            member = names.vlan_child(port, vlan)
            if len(member) > names.IFNAMSIZ:
                raise HivectlError(f"switch {sw.name}: VLAN interface name {member} is longer than 15 characters")
            member_link = self.view.link(member)
            if member_link is None and member not in self.view.reserved:
                self.view.reserve(member)
                actions.append(ip("link", "add", "link", port, "name", member, "type", "vlan", "id", str(vlan),
                                  undo=["ip", "link", "del", "dev", member]))
            if not port_link.up:
                actions.append(ip("link", "set", "dev", port, "up"))
        if member_link is None or member_link.master != bridge:
            actions.append(ip("link", "set", "dev", member, "master", bridge,
                              undo=["ip", "link", "set", "dev", member, "nomaster"]))
        if member_link is None or not member_link.up:
            actions.append(ip("link", "set", "dev", member, "up"))
        return actions

    def _unconfigure_port(self, bridge: str | None, port: str, vlan: int | None) -> list[Action]:
        if vlan:
            child = names.vlan_child(port, vlan)
            return [ip("link", "del", "dev", child)] if self.view.exists(child) else []
        link = self.view.link(port)
        if bridge is not None and link is not None and link.master == bridge:
            return [ip("link", "set", "dev", port, "nomaster", undo=["ip", "link", "set", "dev", port, "master",
                                                                      bridge])]
        return []

    def init_vxlan(self, sw: Switch) -> list[Action]:
        if sw.vlan is None or not sw.ports:
            raise HivectlError(f"switch {sw.name}: a vxlan switch needs vlan_{sw.name} (the VNI) and "
                               f"ports_{sw.name} (the parent interface)")
        parent = sw.ports[0]
        vxlan = names.vxlan_interface(sw.vlan)
        actions: list[Action] = []
        bridge = self.bridge(sw)
        link = self.view.link(bridge) if bridge else None
        if bridge is None:
            bridge, actions = self._new_bridge(sw)
        vx = self.view.link(vxlan)
        if vx is None:
            actions.append(ip("link", "add", vxlan, "type", "vxlan", "id", str(sw.vlan), "group",
                              names.vxlan_multicast(sw.name), "dev", parent, "dstport", VXLAN_PORT,
                              undo=["ip", "link", "del", "dev", vxlan]))
        if vx is None or vx.master != bridge:
            actions.append(ip("link", "set", "dev", vxlan, "master", bridge))
        if vx is None or not vx.up:
            actions.append(ip("link", "set", "dev", vxlan, "up"))
        actions += self._settle_bridge(sw, bridge, link)
        return actions

    # -- destroy and changes ----------------------------------------------------------------------------
    def destroy(self, sw: Switch) -> list[Action]:
        return sw.kind.destroy(sw, self)

    def destroy_manual(self, sw: Switch) -> list[Action]:
        return []  # the administrator's bridge

    def destroy_standard(self, sw: Switch) -> list[Action]:
        bridge = self.bridge(sw)
        actions: list[Action] = []
        for port in sw.ports:
            actions += self._unconfigure_port(bridge, port, sw.vlan)
        if bridge is not None:
            actions.append(ip("link", "del", "dev", bridge))
        return actions

    def destroy_vxlan(self, sw: Switch) -> list[Action]:
        bridge = self.bridge(sw)
        actions: list[Action] = []
        if sw.vlan is not None and self.view.exists(names.vxlan_interface(sw.vlan)):
            actions.append(ip("link", "del", "dev", names.vxlan_interface(sw.vlan)))
        if bridge is not None:
            actions.append(ip("link", "del", "dev", bridge))
        return actions

    def require_standard(self, sw: Switch, what: str) -> None:
        sw.kind.check_editable(sw, what, self.platform)

    def add_port(self, sw: Switch, port: str) -> list[Action]:
        self.require_standard(sw, "member interfaces")
        if not self.view.exists(port):
            raise NotFound(f"interface {port} does not exist (see ip link)")
        bridge = self.bridge(sw)
        return [] if bridge is None else self._configure_port(sw, bridge, port, sw.vlan)

    def remove_port(self, sw: Switch, port: str) -> list[Action]:
        self.require_standard(sw, "member interfaces")
        return self._unconfigure_port(self.bridge(sw), port, sw.vlan)

    def change_vlan(self, old: Switch, new: Switch) -> list[Action]:
        self.require_standard(old, "VLAN")
        bridge = self.bridge(old)
        if bridge is None:
            return []
        actions: list[Action] = []
        for port in old.ports:
            actions += self._unconfigure_port(bridge, port, old.vlan)
        for port in new.ports:
            if not new.vlan:
                link = self.view.link(port)
                if link is not None and link.master == bridge:
                    continue
            actions += self._configure_port(new, bridge, port, new.vlan)
        return actions

    def change_address(self, old: Switch, new: Switch) -> list[Action]:
        self.require_standard(old, "address")
        bridge = self.bridge(old)
        if bridge is None:
            return []
        actions: list[Action] = []
        for before, after in ((old.addr, new.addr), (old.addr6, new.addr6)):
            if before is not None and before != after:
                actions.append(ip("addr", "del", str(before), "dev", bridge))
            if after is not None and after != before:
                actions.append(ip("addr", "add", str(after), "dev", bridge))
        return actions

    def check_private(self, sw: Switch) -> None:
        sw.kind.check_private(sw)
