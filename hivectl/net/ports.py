"""Guest ports: the host side of each NIC (a tap on a switch, or an existing interface).

``plan_ports`` decides the interface names up front (one ``ifconfig -l`` / ``ip -j addr show`` query), so that
the whole start can be shown by ``--dry-run`` with names real bhyve accepts, and returns the actions that
create and attach them and those that remove them again. The supervisor runs ``setup`` before the first
boot and ``teardown`` (plain argv, recorded in the guest's state file) on every exit path, so a crashed
run's taps can be removed by whoever cleans up after it.

Behaviour follows vm-bhyve's provisioning (``lib/vm-switch-standard``, ``lib/vm-run``) with its known holes closed:

- a NIC on a switch that does not exist is an error naming the file, key and value (vm-bhyve only logs it
  and starts the guest with an unattached tap);
- ``networkN_device`` without ``networkN_switch`` works (vm-bhyve drops the NIC: churchers#572);
- ``networkN_name`` gives bhyve ``<name>,type=tap`` (a renamed tap matches no backend prefix otherwise);
- a tap with the guest's own description left behind by a crashed run is removed before it is re-made.
"""

from __future__ import annotations

from hivectl.errors import ConfigError, Conflict, HivectlError
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig, Nic
from hivectl.net import names
from hivectl.net.port import Port as Port  # re-exported: the drivers and the runner import it from here
from hivectl.net.port import nic_mtu
from hivectl.net.switches import Switch, SwitchConfig, check_ifname
from hivectl.plan import Action, Run
from hivectl.store import GuestRef, Store

# Each platform's back-end is imported by the plan of that platform only: a start on Linux does not pay
# for the FreeBSD one (ifconfig parsing, bridge actions) nor the other way round (benchmarks/README.md).
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.net.freebsd import FreeBSDSwitches
    from hivectl.net.linux import LinuxSwitches


def _switch_for(nic: Nic, switches: SwitchConfig, conf: GuestConfig) -> Switch | None:
    if not nic.switch:
        return None
    if not switches.exists(nic.switch):
        known = ", ".join(switches.names()) or "none"
        raise ConfigError(conf.path, f"network{nic.index}_switch", nic.switch,
                          f"there is no such switch (known: {known}; see 'hivectl switch list')")
    return switches.get(nic.switch)


def plan_ports(host: Host, store: Store, ref: GuestRef, config: GuestConfig, platform: str) -> list[Port]:
    """The ports for every NIC of ``config``: names decided, setup and teardown planned, nothing changed."""
    switches = SwitchConfig.load(store.system_conf_path)
    if platform == "freebsd":
        from hivectl.net.freebsd import FreeBSDSwitches

        freebsd = FreeBSDSwitches(host)
        links: dict[str, set[int]] = {}  # netgraph hooks this plan hands out, per switch
        return [_freebsd_port(host, freebsd, nic, _switch_for(nic, switches, config), ref.name, config, links)
                for nic in config.nics]
    from hivectl.net.linux import LinuxSwitches

    linux = LinuxSwitches(host)
    return [_linux_port(linux, nic, _switch_for(nic, switches, config), ref.name, config) for nic in config.nics]


# -- FreeBSD ------------------------------------------------------------------------------------------------
def _freebsd_port(host: Host, planner: FreeBSDSwitches, nic: Nic, sw: Switch | None, guest: str,
                  conf: GuestConfig, links: dict[str, set[int]]) -> Port:
    key = f"network{nic.index}"
    own = sw.kind.freebsd_port(host, nic, sw, conf, links) if sw is not None else None
    if own is not None:
        return own  # a port of the switch type's own kind (VALE, netgraph)

    view = planner.view
    bridge = planner.bridge(sw) if sw is not None else None
    if sw is not None and bridge is None:
        raise HivectlError(f"switch {sw.name} has no bridge on this host; run 'hivectl switch init' "
                           f"(or 'hivectl init') first")
    bridge_info = view.info(bridge) if bridge else None
    setup: list[Action] = []
    teardown: list[Action] = []
    description = names.tap_description(guest, nic.index, sw.name if sw else "")
    if nic.device:
        ifname = check_ifname(conf.path, f"{key}_device", nic.device)
        if not view.exists(ifname):
            raise ConfigError(conf.path, f"{key}_device", ifname, "no such interface on this host")
        created, backend = False, ifname
    else:
        if nic.name:
            ifname = check_ifname(conf.path, f"{key}_name", nic.name)
            info = view.info(ifname)
            setup += _stale(info.description if info else None, ifname, guest, nic.index, conf, f"{key}_name",
                            ["ifconfig", ifname, "destroy"])
            view.reserve(ifname)
            # if_tuntap gives the new tap the lowest free unit and keeps that unit (and /dev/tapN) after the
            # rename, so a later NIC of this plan must not be handed the same tapN.
            view.free("tap")
            setup.append(Run(["ifconfig", "tap", "create", "name", ifname], undo_argv=["ifconfig", ifname, "destroy"]))
            backend = f"{ifname},type=tap"
        else:
            ifname = view.free("tap")
            setup.append(Run(["ifconfig", ifname, "create"], undo_argv=["ifconfig", ifname, "destroy"]))
            backend = ifname
        created = True
        teardown.append(Run(["ifconfig", ifname, "destroy"]))
    setup.append(Run(["ifconfig", ifname, "description", description, "group", names.PORT_GROUP]))
    mtu = nic_mtu(nic, conf, bridge_info.mtu if bridge_info else None)
    if mtu is not None:
        setup.append(Run(["ifconfig", ifname, "mtu", str(mtu)]))
    if bridge is not None and sw is not None:
        already = bridge_info is not None and ifname in bridge_info.members
        if not already:
            verb, unverb = ("span", "-span") if nic.span else ("addm", "deletem")
            setup.append(Run(["ifconfig", bridge, verb, ifname], undo_argv=["ifconfig", bridge, unverb, ifname]))
            if not created:
                teardown.append(Run(["ifconfig", bridge, unverb, ifname]))
        if sw.private and not nic.span:
            setup.append(Run(["ifconfig", bridge, "private", ifname]))
    setup.append(Run(["ifconfig", ifname, "up"]))
    return Port(nic.index, ifname, sw.name if sw else "", backend, mtu, created, setup, teardown, bridge or "")


def _stale(description: str | None, ifname: str, guest: str, index: int, conf: GuestConfig, key: str,
           remove: list[str]) -> list[Action]:
    """Removal of a same-named interface a crashed run of this guest left behind; anything else is refused.

    ``description`` is the existing interface's description (None when no such interface exists).
    """
    if description is None:
        return []
    owner = names.parse_tap_description(description)
    if owner is not None and owner[:2] == (guest, index):
        return [Run(remove)]
    raise Conflict(f"{conf.path}: {key}={ifname!r}: interface {ifname} already exists and is not a leftover "
                   f"of this guest's network{index}")


# -- Linux --------------------------------------------------------------------------------------------------
def _linux_port(planner: LinuxSwitches, nic: Nic, sw: Switch | None, guest: str, conf: GuestConfig) -> Port:
    key = f"network{nic.index}"
    if sw is not None and not sw.kind.linux:
        raise ConfigError(conf.path, f"{key}_switch", sw.name,
                          f"{sw.type} switches exist only on FreeBSD; use a standard switch on Linux")
    if nic.span:
        raise ConfigError(conf.path, f"{key}_span", "yes", "Linux bridges have no span ports")
    view = planner.view
    bridge = planner.bridge(sw) if sw is not None else None
    if sw is not None and bridge is None:
        raise HivectlError(f"switch {sw.name} has no bridge on this host; run 'hivectl switch init' "
                           f"(or 'hivectl init') first")
    bridge_link = view.link(bridge) if bridge else None
    setup: list[Action] = []
    teardown: list[Action] = []
    description = names.tap_description(guest, nic.index, sw.name if sw else "")
    if nic.device:
        ifname = check_ifname(conf.path, f"{key}_device", nic.device)
        existing = view.link(ifname)
        if existing is None:
            raise ConfigError(conf.path, f"{key}_device", ifname, "no such interface on this host")
        created = False
    else:
        ifname = check_ifname(conf.path, f"{key}_name", nic.name) if nic.name else \
            names.linux_tap_name(guest, nic.index)
        if ifname in view.reserved:
            raise ConfigError(conf.path, f"{key}_name", ifname, "two NICs of this guest would use this tap name")
        old = view.link(ifname)
        setup += _stale(old.alias if old else None, ifname, guest, nic.index, conf, f"{key}_name",
                        ["ip", "link", "del", "dev", ifname])
        view.reserve(ifname)
        existing = None
        setup.append(Run(["ip", "tuntap", "add", "dev", ifname, "mode", "tap"],
                         undo_argv=["ip", "link", "del", "dev", ifname]))
        created = True
        teardown.append(Run(["ip", "link", "del", "dev", ifname]))
    setup.append(Run(["ip", "link", "set", "dev", ifname, "alias", description]))
    mtu = nic_mtu(nic, conf, bridge_link.mtu if bridge_link else None)
    if mtu is not None:
        setup.append(Run(["ip", "link", "set", "dev", ifname, "mtu", str(mtu)]))
    if bridge is not None and sw is not None:
        if existing is None or existing.master != bridge:
            setup.append(Run(["ip", "link", "set", "dev", ifname, "master", bridge],
                             undo_argv=["ip", "link", "set", "dev", ifname, "nomaster"]))
            if not created:
                teardown.append(Run(["ip", "link", "set", "dev", ifname, "nomaster"]))
        if sw.private:
            setup.append(Run(["ip", "link", "set", "dev", ifname, "type", "bridge_slave", "isolated", "on"]))
    setup.append(Run(["ip", "link", "set", "dev", ifname, "up"]))
    return Port(nic.index, ifname, sw.name if sw else "", ifname, mtu, created, setup, teardown, bridge or "")

