"""The ``switch`` operations: validate at the edge, plan host actions, then change ``system.conf`` last.

Each ``plan_*`` function checks every value first (errors name the option or key and the value), plans
the host changes with the platform's planner (``FreeBSDSwitches`` or ``LinuxSwitches``) and NAT with
``NatPlanner``, and ends the plan with the ``system.conf`` rewrite. Because the file is written last and
host actions undo themselves when a later one fails, a failed command leaves both the host and the file
as they were. Listing functions return plain data; the CLI renders it.

Each change of the file is recorded as a function of a ``SwitchConfig`` (``_change``): applied once to the
file as read, to plan and render, and once more, under the file's lock, to the file as it is when the plan
is applied (``hivectl.plan.EditFile``). So two ``switch create`` at once both end in ``system.conf``, and a
name taken meanwhile is refused then (docs/reliability.md, "Concurrent edits").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from hivectl import validate
from hivectl.errors import ConfigError, Conflict, NotFound, UsageError
from hivectl.host.base import Host
from hivectl.net import names
from hivectl.net.freebsd import FreeBSDSwitches
from hivectl.net.linux import LinuxSwitches
from hivectl.net.nat import NatPlanner, choose_subnet, dhcp_range, running_pid
from hivectl.net.switches import (
    Forward,
    Switch,
    SwitchConfig,
    check_address,
    check_forward,
    check_ifname,
    check_mtu,
    check_name,
    check_type,
    check_vlan,
)
from hivectl.net.switchtypes import registry
from hivectl.plan import Action, Plan, config_edit
from hivectl.rcfile import RcFile, parse_text
from hivectl.records import record, replace
from hivectl.store import Store

Planner = FreeBSDSwitches | LinuxSwitches


def planner_for(host: Host) -> Planner:
    return FreeBSDSwitches(host) if host.platform == "freebsd" else LinuxSwitches(host)


@record
class CreateRequest:
    """``switch create`` as typed on the command line (raw text: validated by ``plan_create``)."""

    name: str
    type: str = "standard"
    interface: str | None = None
    vlan: str | None = None
    bridge: str | None = None
    mtu: str | None = None
    address: str | None = None
    private: bool = False
    nat: bool = False


class SwitchOps:
    """One command's view of the switches: the file, the platform planner, the NAT planner."""

    def __init__(self, store: Store, host: Host) -> None:
        self.store = store
        self.host = host
        self.config = SwitchConfig.load(store.system_conf_path)
        self.before = dict(self.config.rc.values)
        self._changes: list[Callable[[SwitchConfig], None]] = []
        self.planner: Planner = planner_for(host)
        self.nat = NatPlanner(host, host.platform, store.config_dir)

    # -- helpers ----------------------------------------------------------------------------------------
    def _change(self, change: Callable[[SwitchConfig], None]) -> None:
        """Make a change of the file now (to plan) and record it to redo when the plan is applied."""
        change(self.config)
        self._changes.append(change)

    def save(self) -> list[Action]:
        """Write ``system.conf`` (shown as the ``sysrc`` commands an administrator would type): the recorded
        changes redone on the file as it is under its lock."""
        after = parse_text(self.config.text())
        path = str(self.config.path)
        sets = [f"{k}={v}" for k, v in after.items() if self.before.get(k) != v]
        gone = [k for k in self.before if k not in after]
        shown: list[list[str]] = []
        if sets or not gone:
            shown.append(["sysrc", "-f", path, *sets])
        if gone:
            shown.append(["sysrc", "-f", path, "-x", *gone])
        changes = list(self._changes)

        def apply(rc: RcFile) -> None:
            config = SwitchConfig(rc)
            for change in changes:
                change(config)

        return [config_edit(self.config.path, apply, shown)]

    def plan(self, actions: list[Action]) -> Plan:
        return Plan([*actions, *self.save()])

    def _nat_start(self, sw: Switch) -> list[Action]:
        bridge = self.planner.bridge_after_init(sw)
        if bridge is None:
            raise NotFound(f"switch {sw.name} has no bridge on this host")
        return self.nat.start(sw, bridge)

    # -- create / destroy -------------------------------------------------------------------------------
    def plan_create(self, req: CreateRequest) -> Plan:
        name = check_name(None, "name", req.name)
        if not name.replace("_", "").isalnum() or not name.isascii():
            raise ConfigError(None, "name", name, "a switch name may contain only letters, digits and '_' "
                                                  "(it becomes part of system.conf keys such as type_NAME)")
        kind = check_type(None, "-t", req.type)
        if self.config.exists(name):
            raise Conflict(f"switch {name} already exists")
        ports = (check_ifname(None, "-i", req.interface),) if req.interface else ()
        vlan = check_vlan(None, "-n", req.vlan) if req.vlan is not None else None
        mtu = check_mtu(None, "-m", req.mtu) if req.mtu is not None else None
        address = check_address(None, "-a", req.address) if req.address is not None else None
        bridge = check_ifname(None, "-b", req.bridge) if req.bridge is not None else ""
        given = {"-i": req.interface, "-n": req.vlan, "-m": req.mtu, "-a": req.address, "-b": req.bridge,
                 "-p": "yes" if req.private else None, "--nat": "yes" if req.nat else None}
        switch_type = registry.get(kind)
        for option, value in given.items():
            if value is not None and option not in switch_type.create_options:
                raise UsageError(f"option {option} does not apply to {kind} switches")
        switch_type.check_request(ports, vlan, bridge)
        if req.nat and self.host.platform == "freebsd" and names.freebsd_bridge_name(name) is None:
            raise ConfigError(None, "name", name, "a NAT switch name has at most 12 characters on FreeBSD, so "
                                                  "that its bridge has the fixed name vm-NAME pf and dnsmasq use")
        if req.nat and ports:
            raise UsageError("a NAT switch routes to the uplink; it cannot also bridge a physical port (-i)")
        if req.nat and isinstance(address, ipaddress.IPv6Interface):
            raise ConfigError(None, "-a", str(req.address), "NAT needs an IPv4 address on the switch")
        if req.nat and address is None:
            taken = self.planner.host_networks() + [str(s.addr) for s in self.config.all() if s.addr]
            address = choose_subnet(name, taken)
        sw = Switch(name, kind, ports, vlan or None, address if isinstance(address, ipaddress.IPv4Interface) else None,
                    address if isinstance(address, ipaddress.IPv6Interface) else None, mtu, req.private, bridge,
                    req.nat)
        self.planner.check_create(sw)
        if switch_type.claims_existing_bridge:
            for other in self.config.all():
                if other.has_bridge and self.planner.bridge(other) == bridge:
                    raise Conflict(f"{bridge} is already the bridge of switch {other.name}")
        actions = self.planner.init(sw)
        if sw.nat:
            if sw.addr is not None:
                dhcp_range(sw.addr)  # a subnet too small for DHCP is refused before anything runs
            actions += self._nat_start(sw)
        self._change(lambda config: config.add_new(sw))  # refuses a name taken meanwhile
        return self.plan(actions)

    def plan_destroy(self, name: str, force: bool = False) -> Plan:
        sw = self.config.get(check_name(None, "name", name))
        attached = self.planner.guests_attached(sw) if sw.has_bridge else []
        if attached and not force:
            who = ", ".join(sorted({f"{m.guest} ({m.ifname})" for m in attached}))
            raise Conflict(f"switch {sw.name} still has running guests attached: {who}; stop them first or use -f")
        actions: list[Action] = []
        if sw.nat:
            actions += self.nat.stop(sw)
        actions += self.planner.destroy(sw)
        self._change(lambda config: config.remove(sw.name))
        return self.plan(actions)

    # -- changes ----------------------------------------------------------------------------------------
    def plan_add(self, name: str, interface: str) -> Plan:
        sw = self.config.get(check_name(None, "name", name))
        port = check_ifname(None, "interface", interface)
        self.planner.require_standard(sw, "member interfaces")
        if sw.nat:
            raise UsageError(f"switch {sw.name} does NAT; it cannot also bridge a physical port")
        if port in sw.ports:
            raise Conflict(f"{port} is already a port of switch {sw.name}")
        new = replace(sw, ports=(*sw.ports, port))
        actions = self.planner.add_port(new, port)

        def add(config: SwitchConfig) -> None:
            now = config.get(sw.name)
            if port not in now.ports:
                config.put(replace(now, ports=(*now.ports, port)))

        self._change(add)
        return self.plan(actions)

    def plan_remove(self, name: str, interface: str) -> Plan:
        sw = self.config.get(check_name(None, "name", name))
        port = check_ifname(None, "interface", interface)
        self.planner.require_standard(sw, "member interfaces")
        if port not in sw.ports:
            raise NotFound(f"{port} is not a port of switch {sw.name} (ports: {' '.join(sw.ports) or 'none'})")
        actions = self.planner.remove_port(sw, port)

        def remove(config: SwitchConfig) -> None:
            now = config.get(sw.name)
            config.put(replace(now, ports=tuple(p for p in now.ports if p != port)))

        self._change(remove)
        return self.plan(actions)

    def plan_vlan(self, name: str, vlan: str) -> Plan:
        sw = self.config.get(check_name(None, "name", name))
        new = replace(sw, vlan=check_vlan(None, "vlan", vlan) or None)
        actions = self.planner.change_vlan(sw, new)
        self._change(lambda config: config.put(replace(config.get(sw.name), vlan=new.vlan)))
        return self.plan(actions)

    def plan_address(self, name: str, address: str) -> Plan:
        sw = self.config.get(check_name(None, "name", name))
        if address == "none":
            if sw.addr is None and sw.addr6 is None:
                raise NotFound(f"switch {sw.name} has no address to remove")
            if sw.nat:
                raise UsageError(f"switch {sw.name} does NAT and needs its IPv4 address; destroy it instead")
            new = replace(sw, addr=None, addr6=None)
        else:
            iface = check_address(None, "address", address)
            if iface in (sw.addr, sw.addr6):
                raise Conflict(f"{iface} is already the address of switch {sw.name}")
            if isinstance(iface, ipaddress.IPv4Interface):
                new = replace(sw, addr=iface)
            else:
                new = replace(sw, addr6=iface)
            if new.nat and new.addr is not None:
                dhcp_range(new.addr)
        actions = self.planner.change_address(sw, new)
        if sw.nat and new.addr != sw.addr and self.planner.bridge(sw) is not None:
            actions = [*self.nat.stop(sw), *actions, *self._nat_start(new)]
        self._change(lambda config: config.put(replace(config.get(sw.name), addr=new.addr, addr6=new.addr6)))
        return self.plan(actions)

    def plan_private(self, name: str, value: str) -> Plan:
        sw = self.config.get(check_name(None, "name", name))
        self.planner.check_private(sw)
        private = validate.boolean(None, "private", value)
        self._change(lambda config: config.put(replace(config.get(sw.name), private=private)))
        return self.plan([])

    def plan_init(self) -> list[Action]:
        """Every switch brought to its configured state (``switch init`` and ``hivectl init``)."""
        actions: list[Action] = []
        for sw in self.config.all():
            actions += self.planner.init(sw)
            if sw.nat:
                actions += self._nat_start(sw)
        return actions

    # -- port forwards ----------------------------------------------------------------------------------
    def _nat_switch(self, name: str) -> Switch:
        sw = self.config.get(check_name(None, "name", name))
        if not sw.nat:
            raise UsageError(f"switch {sw.name} does not do NAT (create one with 'switch create --nat')")
        return sw

    def _edit_then_reload(self, sw: Switch) -> Plan:
        """The ``system.conf`` edit first, then the rules reloaded from the file as edited (not from the
        switch as it was at plan time): a refused edit loads nothing, a failed load undoes the edit, and
        concurrent forward edits end with every forward loaded (``hivectl.net.nat.ReloadRules``)."""
        bridge = self.planner.bridge(sw)
        reload = [self.nat.reload_from(self.config.path, sw, bridge)] if bridge is not None else []
        return Plan([*self.save(), *reload])

    def plan_forward_add(self, name: str, proto: str, host_port: str, target: str) -> Plan:
        sw = self._nat_switch(name)
        guest, sep, guest_port = target.rpartition(":")
        if not sep:
            raise ConfigError(None, "target", target, "expected GUEST-ADDRESS:PORT, like 10.0.5.10:80")
        fwd = check_forward(None, "forward", f"{proto}:{host_port}:{guest}:{guest_port}")
        if sw.addr is not None and fwd.guest not in sw.addr.network:
            raise ConfigError(None, "target", target, f"{fwd.guest} is not on switch {sw.name}'s network "
                                                      f"{sw.addr.network}")
        if any((f.proto, f.host_port) == (fwd.proto, fwd.host_port) for f in sw.forwards):
            raise Conflict(f"{fwd.proto} port {fwd.host_port} is already forwarded on switch {sw.name}")
        new = replace(sw, forwards=(*sw.forwards, fwd))

        def add(config: SwitchConfig) -> None:
            now = config.get(sw.name)
            if any((f.proto, f.host_port) == (fwd.proto, fwd.host_port) for f in now.forwards):
                raise Conflict(f"{fwd.proto} port {fwd.host_port} is already forwarded on switch {sw.name}")
            config.put(replace(now, forwards=(*now.forwards, fwd)))

        self._change(add)
        return self._edit_then_reload(new)

    def plan_forward_remove(self, name: str, proto: str, host_port: str) -> Plan:
        sw = self._nat_switch(name)
        validate.choice(None, "proto", proto, ("tcp", "udp"))
        port = validate.tcp_port(None, "port", host_port)
        kept = tuple(f for f in sw.forwards if (f.proto, f.host_port) != (proto, port))
        if len(kept) == len(sw.forwards):
            raise NotFound(f"switch {sw.name} has no {proto} forward on port {port}")
        new = replace(sw, forwards=kept)

        def remove(config: SwitchConfig) -> None:
            now = config.get(sw.name)
            config.put(replace(now, forwards=tuple(f for f in now.forwards if (f.proto, f.host_port) != (proto, port))))

        self._change(remove)
        return self._edit_then_reload(new)

    def forwards(self, name: str) -> list[Forward]:
        return list(self._nat_switch(name).forwards)

    # -- listing ----------------------------------------------------------------------------------------
    def iface(self, sw: Switch) -> str:
        return sw.kind.iface(sw, self.planner)

    def rows(self) -> list[dict[str, Any]]:
        """One object per switch, the data behind vm-bhyve's ``switch list`` columns."""
        result = []
        for sw in self.config.all():
            result.append({
                "name": sw.name, "type": sw.type, "iface": self.iface(sw),
                "address": str(sw.addr) if sw.addr else None, "address6": str(sw.addr6) if sw.addr6 else None,
                "private": sw.kind.private_setting(sw),
                "mtu": sw.mtu, "vlan": sw.vlan, "ports": list(sw.ports), "bridge": sw.bridge or None,
                "nat": sw.nat, "forwards": [f.text() for f in sw.forwards],
            })
        return result

    def info(self, wanted: list[str]) -> list[dict[str, Any]]:
        """Per switch: configuration, bridge, members with their guests, DHCP state and warnings."""
        switches = [self.config.get(check_name(None, "name", n)) for n in wanted] if wanted else self.config.all()
        result = []
        for sw in switches:
            members = self.planner.members(sw) if sw.has_bridge else []
            data: dict[str, Any] = {
                "name": sw.name, "type": sw.type, "ident": self.iface(sw),
                "vlan": sw.vlan, "physical-ports": list(sw.ports),
                "address": str(sw.addr) if sw.addr else None, "address6": str(sw.addr6) if sw.addr6 else None,
                "mtu": sw.mtu, "private": sw.private, "nat": sw.nat,
                "ports": [{"device": m.ifname, "kind": m.kind, "vm": m.guest or None, "nic": m.nic,
                           "flags": sorted(m.flags)} for m in members],
                "warnings": self.planner.host_address_warnings(sw) if sw.has_bridge else [],
            }
            if sw.nat:
                pid = running_pid(self.nat.pidfile(sw.name))
                low, high = dhcp_range(sw.addr) if sw.addr else (None, None)
                data["dhcp"] = {"running": pid is not None, "pid": pid, "range": f"{low}-{high}" if low else None,
                                "leases": str(self.nat.leasefile(sw.name))}
                data["forwards"] = [f.text() for f in sw.forwards]
                if pid is None and self.planner.bridge(sw) is not None:
                    data["warnings"].append(f"the DHCP server of switch {sw.name} is not running; "
                                            "run 'hivectl switch init'")
                if self.host.platform == "freebsd" and self.nat.pf_enabled() is not True:
                    data["warnings"].append("pf is not enabled, so NAT is not applied (enable pf and add the "
                                            "hivectl anchors to /etc/pf.conf; see docs/networking.md)")
            result.append(data)
        return result


def plan_switch_init(store: Store, host: Host) -> list[Action]:
    """The actions ``hivectl init`` adds so every switch exists after a host boot (none without switches)."""
    if not store.system_conf_path.exists():
        return []
    ops = SwitchOps(store, host)
    if not ops.config.names():
        return []
    return ops.plan_init()
