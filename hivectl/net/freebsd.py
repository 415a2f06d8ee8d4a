"""Switches on FreeBSD: if_bridge (standard, manual, vxlan), VALE and netgraph, as vm-bhyve builds them.

Pure planning: every method returns ``Run`` actions holding ``ifconfig``/``route`` argv (with the argv that
undoes them where they create something), and only asks the host read-only questions through
``FreeBSDView``. The objects and names are vm-bhyve's (``lib/vm-switch-*``), so a host can move between
the two tools: bridge ``vm-<switch>`` (or ``bridgeN`` + ``descr vm/<switch>`` for names over 12
characters), groups ``vm-switch`` and ``viid-<md5>@``, VLAN children ``<port>.<vlan>`` in group
``vm-vlan``, ``vxlan<vni>`` + multicast route for vxlan switches.

Unlike vm-bhyve, ``init`` reconciles instead of skipping an existing bridge: an address or member that
``service netif restart`` wiped (churchers#435, #568) is put back, and running it twice plans nothing the
second time.
"""

from __future__ import annotations

from hivectl.errors import Conflict, HivectlError, NotFound
from hivectl.host.base import Host
from hivectl.net import names
from hivectl.net.ifactions import CreateBridge, IfName, ifconfig, on
from hivectl.net.ifconfig import FreeBSDView, IfInfo
from hivectl.net.switches import Member, Switch
from hivectl.plan import Action, Run

DEFAULT_MTU = 1500


class FreeBSDSwitches:
    """Planner for FreeBSD switches."""

    platform = "freebsd"

    def __init__(self, host: Host, view: FreeBSDView | None = None) -> None:
        self.host = host
        self.view = view or FreeBSDView(host)
        self.planned: dict[str, str] = {}  # switch -> bridge that init found or will create

    # -- lookups ----------------------------------------------------------------------------------------
    def bridge(self, sw: Switch) -> str | None:
        """The bridge interface carrying ``sw`` on this host, or None (the switch type decides which)."""
        return sw.kind.bridge(sw, self)

    def own_bridge(self, sw: Switch) -> str | None:
        """The bridge hivectl made for ``sw``: the one in the switch's lookup group."""
        found = self.view.group(names.viid(sw.name))
        return found[0] if found else None

    def existing_bridge(self, sw: Switch) -> str | None:
        """The administrator's bridge ``bridge_S``, if it exists."""
        return sw.bridge if sw.bridge and self.view.exists(sw.bridge) else None

    def bridge_after_init(self, sw: Switch) -> str | None:
        """The bridge ``sw`` has once the actions ``init`` planned have run."""
        return self.planned.get(sw.name) or self.bridge(sw)

    def bridge_mtu(self, bridge: str) -> int:
        info = self.view.info(bridge)
        return info.mtu if info is not None else DEFAULT_MTU

    def members(self, sw: Switch) -> list[Member]:
        """Members of the switch's bridge, guests recognised from their tap description."""
        bridge = self.bridge(sw)
        info = self.view.info(bridge) if bridge else None
        if info is None:
            return []
        result = []
        for member, flags in info.members.items():
            detail = self.view.info(member)
            owner = names.parse_tap_description(detail.description) if detail else None
            if owner is not None:
                result.append(Member(member, "guest", owner[0], owner[1], flags))
            elif member in self._wanted_members(sw) or (detail and names.VLAN_GROUP in detail.groups):
                result.append(Member(member, "port", flags=flags))
            else:
                result.append(Member(member, "other", flags=flags))
        return result

    def _wanted_members(self, sw: Switch) -> list[str]:
        return sw.kind.wanted_members(sw)

    def host_address_warnings(self, sw: Switch) -> list[str]:
        """Physical members that still hold the host's address, which belongs on the bridge.

        Once ``em0`` is a bridge member, packets for the host arrive on the bridge: an address left on the
        member keeps working only by accident (and not at all for traffic between guests and the host),
        which is how hosts "lose" their network when a switch is created on the uplink.
        """
        bridge = self.bridge(sw)
        warnings = []
        for member in self._wanted_members(sw):
            info = self.view.info(member)
            if info is None:
                continue
            held = [str(a) for a in info.routable()]
            if held:
                warnings.append(f"{member} is a member of {bridge or 'the switch bridge'} but still holds "
                                f"{', '.join(held)}; move the address to the bridge "
                                f"(hivectl switch address {sw.name} ADDRESS) or the host may be unreachable "
                                f"through {member}")
        return warnings

    # -- create / init ----------------------------------------------------------------------------------
    def check_create(self, sw: Switch) -> None:
        """Refusals that depend on the host, as the switch type asks for them."""
        sw.kind.check_create(sw, self)

    def check_manual_bridge(self, sw: Switch) -> None:
        """A manual switch's bridge must exist and be a bridge."""
        info = self.view.info(sw.bridge)
        if info is None:
            raise NotFound(f"bridge {sw.bridge} does not exist (create it in /etc/rc.conf: "
                           f"cloned_interfaces=\"{sw.bridge}\")")
        if not info.is_bridge:
            raise Conflict(f"{sw.bridge} is not a bridge interface")

    def check_vxlan_parent(self, sw: Switch) -> None:
        if sw.ports:
            port = sw.ports[0]
            if not self.view.exists(port):
                raise NotFound(f"interface {port} does not exist")

    def check_ports(self, sw: Switch) -> None:
        for port in sw.ports:
            if not self.view.exists(port):
                raise NotFound(f"interface {port} does not exist (see ifconfig -l)")

    def init(self, sw: Switch) -> list[Action]:
        """Bring ``sw`` to its configured state: create what is missing, fix what drifted (idempotent)."""
        return sw.kind.init(sw, self)

    def _new_bridge(self, sw: Switch) -> tuple[IfName, list[Action]]:
        """Create the bridge for a standard/vxlan switch: tagged with its lookup group first, named, up.

        A name of at most 12 characters gives ``vm-<switch>``; a longer one keeps the kernel's ``bridgeN``,
        which is only known once ``ifconfig bridge create`` has printed it (a renamed bridge keeps its unit,
        so the unit cannot be predicted from ``ifconfig -l``).
        """
        lookup = names.viid(sw.name)
        wanted = names.freebsd_bridge_name(sw.name)
        if wanted is not None:
            if self.view.exists(wanted) or wanted in self.view.reserved:
                raise Conflict(f"interface {wanted} exists but is not tagged as switch {sw.name}'s bridge "
                               f"(group {lookup}); destroy it, or adopt it with "
                               f"'hivectl switch create -t manual -b {wanted} NAME'")
            self.view.reserve(wanted)
            bridge = IfName("bridge", wanted)
            words = ["name", wanted]
        else:
            bridge = IfName(f"<bridge of {sw.name}>")
            words = ["descr", names.bridge_description(sw.name)]
        create = CreateBridge(["ifconfig", "bridge", "create", "group", lookup, *words, "group", names.SWITCH_GROUP,
                               "up"], bridge, lookup)
        if bridge.value:
            self.planned[sw.name] = bridge.value
        return bridge, [create, on(bridge, "link", "random")]

    def _address_actions(self, sw: Switch, bridge: IfName, info: IfInfo | None) -> list[Action]:
        actions: list[Action] = []
        if sw.addr is not None and (info is None or sw.addr not in info.inet):
            actions.append(on(bridge, "inet", str(sw.addr)))
        if sw.addr6 is not None and (info is None or sw.addr6 not in info.inet6):
            actions.append(on(bridge, "inet6", str(sw.addr6), "auto_linklocal"))
        return actions

    def init_standard(self, sw: Switch) -> list[Action]:
        found = self.bridge(sw)
        actions: list[Action] = []
        info = None
        if found is None:
            bridge, actions = self._new_bridge(sw)
        else:
            bridge = IfName(found, found)
            info = self.view.info(found)
            if info is not None:
                if names.SWITCH_GROUP not in info.groups:
                    actions.append(ifconfig(found, "group", names.SWITCH_GROUP))
                if not info.up:
                    actions.append(ifconfig(found, "up"))
        actions += self._address_actions(sw, bridge, info)
        if sw.mtu is not None and (info is None or info.mtu != sw.mtu):
            actions.append(on(bridge, "mtu", str(sw.mtu)))
        for port in sw.ports:
            actions += self._configure_port(sw, bridge, info, port, sw.vlan)
        return actions

    def _configure_port(self, sw: Switch, bridge: IfName, bridge_info: IfInfo | None, port: str,
                        vlan: int | None) -> list[Action]:
        """Put a physical port (or its VLAN child) on the bridge, with the switch MTU (vm-bhyve's order)."""
        actions: list[Action] = []
        port_info = self.view.info(port)
        if port_info is None and port not in self.view.reserved:
            raise NotFound(f"switch {sw.name}: port {port} does not exist on this host")
        if sw.mtu is not None and (port_info is None or port_info.mtu != sw.mtu):
            actions.append(ifconfig(port, "mtu", str(sw.mtu)))
        member = port
        if vlan:
            member = names.vlan_child(port, vlan)
            if not self.view.exists(member) and member not in self.view.reserved:
                self.view.reserve(member)
                actions.append(ifconfig("vlan", "create", "vlandev", port, "vlan", str(vlan), "descr",
                                        names.vlan_description(sw.name, port, vlan), "name", member,
                                        "group", names.VLAN_GROUP, "up", undo=["ifconfig", member, "destroy"]))
                actions.append(ifconfig(member, "group", names.viid(member)))
        if bridge_info is None or member not in bridge_info.members:
            actions.append(on(bridge, "addm", member, undo=["deletem", member]))
        return actions

    def _unconfigure_port(self, bridge: str | None, bridge_info: IfInfo | None, port: str,
                          vlan: int | None) -> list[Action]:
        """Take a port off the bridge; a VLAN child is destroyed (which also removes it from the bridge)."""
        if vlan:
            child = names.vlan_child(port, vlan)
            return [ifconfig(child, "destroy")] if self.view.exists(child) else []
        if bridge is not None and bridge_info is not None and port in bridge_info.members:
            return [ifconfig(bridge, "deletem", port, undo=["ifconfig", bridge, "addm", port])]
        return []

    def init_manual(self, sw: Switch) -> list[Action]:
        info = self.view.info(sw.bridge)
        if info is None:
            raise NotFound(f"switch {sw.name}: bridge {sw.bridge} does not exist (manual switches use a bridge "
                           "created in /etc/rc.conf)")
        actions: list[Action] = []
        if names.SWITCH_GROUP not in info.groups:
            actions.append(ifconfig(sw.bridge, "group", names.SWITCH_GROUP))
        if not info.up:
            actions.append(ifconfig(sw.bridge, "up"))
        if names.viid(sw.name) not in info.groups:
            actions.append(ifconfig(sw.bridge, "group", names.viid(sw.name)))
        return actions

    def init_vxlan(self, sw: Switch) -> list[Action]:
        if sw.vlan is None or not sw.ports:
            raise HivectlError(f"switch {sw.name}: a vxlan switch needs vlan_{sw.name} (the VNI) and "
                               f"ports_{sw.name} (the parent interface)")
        parent = sw.ports[0]
        vxlan = names.vxlan_interface(sw.vlan)
        group = names.vxlan_multicast(sw.name)
        actions: list[Action] = []
        found = self.bridge(sw)
        info = self.view.info(found) if found else None
        if not self.view.exists(vxlan) and vxlan not in self.view.reserved:
            parent_info = self.view.info(parent)
            if parent_info is None or not parent_info.inet:
                raise HivectlError(f"switch {sw.name}: {parent} has no IPv4 address to send vxlan traffic from")
            self.view.reserve(vxlan)
            actions.append(ifconfig(vxlan, "create", "vxlanid", str(sw.vlan), "vxlanlocal",
                                    str(parent_info.inet[0].ip), "vxlangroup", group, "vxlandev", parent,
                                    "descr", f"vm-vxlan/{sw.name}", "group", names.VLAN_GROUP, "up",
                                    undo=["ifconfig", vxlan, "destroy"]))
        if found is None:
            bridge, created = self._new_bridge(sw)
            actions += created
            actions.append(Run(["route", "add", "-net", f"{group}/32", "-iface", parent],
                               undo_argv=["route", "delete", "-net", f"{group}/32"]))
        else:
            bridge = IfName(found, found)
        if info is None or vxlan not in info.members:
            actions.append(on(bridge, "addm", vxlan, undo=["deletem", vxlan]))
        if sw.mtu is not None and (info is None or info.mtu != sw.mtu):
            actions.append(on(bridge, "mtu", str(sw.mtu)))
        actions += self._address_actions(sw, bridge, info)
        return actions

    # -- destroy ----------------------------------------------------------------------------------------
    def guests_attached(self, sw: Switch) -> list[Member]:
        return [m for m in self.members(sw) if m.kind == "guest"]

    def destroy(self, sw: Switch) -> list[Action]:
        """Tear down what the switch owns on the host, as its type says."""
        return sw.kind.destroy(sw, self)

    def destroy_manual(self, sw: Switch) -> list[Action]:
        """A manual switch's bridge is the administrator's: only untagged."""
        info = self.view.info(sw.bridge)
        if info is None:
            return []
        drop = [g for g in (names.SWITCH_GROUP, names.viid(sw.name)) if g in info.groups]
        args: list[str] = []
        for group in drop:
            args += ["-group", group]
        return [ifconfig(sw.bridge, *args)] if args else []

    def destroy_vxlan(self, sw: Switch) -> list[Action]:
        bridge = self.bridge(sw)
        actions: list[Action] = []
        if bridge is not None:
            actions.append(Run(["route", "delete", "-net", f"{names.vxlan_multicast(sw.name)}/32"]))
            actions.append(ifconfig(bridge, "destroy"))
        if sw.vlan is not None and self.view.exists(names.vxlan_interface(sw.vlan)):
            actions.append(ifconfig(names.vxlan_interface(sw.vlan), "destroy"))
        return actions

    def destroy_standard(self, sw: Switch) -> list[Action]:
        bridge = self.bridge(sw)
        if bridge is None:
            return []
        info = self.view.info(bridge)
        actions: list[Action] = []
        for port in sw.ports:
            actions += self._unconfigure_port(bridge, info, port, sw.vlan)
        actions.append(ifconfig(bridge, "destroy"))
        return actions

    # -- changes ----------------------------------------------------------------------------------------
    def require_standard(self, sw: Switch, what: str) -> None:
        sw.kind.check_editable(sw, what, self.platform)

    def add_port(self, sw: Switch, port: str) -> list[Action]:
        self.require_standard(sw, "member interfaces")
        bridge = self.bridge(sw)
        if bridge is None:
            if not self.view.exists(port):
                raise NotFound(f"interface {port} does not exist (see ifconfig -l)")
            return []  # not created on this host yet: 'switch init' adds it
        return self._configure_port(sw, IfName(bridge, bridge), self.view.info(bridge), port, sw.vlan)

    def remove_port(self, sw: Switch, port: str) -> list[Action]:
        self.require_standard(sw, "member interfaces")
        bridge = self.bridge(sw)
        return self._unconfigure_port(bridge, self.view.info(bridge) if bridge else None, port, sw.vlan)

    def change_vlan(self, old: Switch, new: Switch) -> list[Action]:
        """Take every port off with the old VLAN and put it back with the new one (vm-bhyve's way)."""
        self.require_standard(old, "VLAN")
        bridge = self.bridge(old)
        if bridge is None:
            return []
        info = self.view.info(bridge)
        actions: list[Action] = []
        for port in old.ports:
            actions += self._unconfigure_port(bridge, info, port, old.vlan)
        after = None if info is None else IfInfo(info.name, info.flags, info.mtu, info.description, info.groups,
                                                 info.ether, info.inet, info.inet6,
                                                 {m: f for m, f in info.members.items()
                                                  if m not in self._wanted_members(old)})
        for port in new.ports:
            actions += self._configure_port(new, IfName(bridge, bridge), after, port, new.vlan)
        return actions

    def change_address(self, old: Switch, new: Switch) -> list[Action]:
        self.require_standard(old, "address")
        bridge = self.bridge(old)
        if bridge is None:
            return []
        actions: list[Action] = []
        if old.addr is not None and old.addr != new.addr:
            actions.append(ifconfig(bridge, "inet", str(old.addr.ip), "delete"))
        if new.addr is not None and new.addr != old.addr:
            actions.append(ifconfig(bridge, "inet", str(new.addr)))
        if new.addr6 is not None and new.addr6 != old.addr6:
            actions.append(ifconfig(bridge, "inet6", str(new.addr6), "auto_linklocal"))
        if old.addr6 is not None and old.addr6 != new.addr6:
            actions.append(ifconfig(bridge, "inet6", str(old.addr6.ip), "delete"))
        return actions

    def check_private(self, sw: Switch) -> None:
        sw.kind.check_private(sw)

    # -- host facts -------------------------------------------------------------------------------------
    def host_networks(self) -> list[str]:
        """Every address configured on the host, as CIDR text (to keep NAT subnets clear of them)."""
        return [str(a) for info in self.view.all() for a in info.routable()]
