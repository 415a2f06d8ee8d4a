"""``hivectl switch``: virtual switches, their ports, NAT, DHCP and port forwards."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hivectl.cli import render
from hivectl.cli.cmd_guests import DRY_RUN_HELP
from hivectl.cli.context import Context
from hivectl.errors import HivectlError, UsageError
from hivectl.net.switchtypes import registry

DESCRIPTION = """\
Virtual switches connect guests to each other and to the host's networks. They are kept in
vm_dir/.config/system.conf exactly as vm-bhyve keeps them, so either tool can manage a host.

  switch list [--json]                        NAME TYPE IFACE ADDRESS PRIVATE MTU VLAN PORTS
  switch info [--json] [NAME...]              configuration, bridge members and their guests, warnings
  switch create [-t TYPE] [-i IF] [-n VLAN] [-b BRIDGE] [-m MTU] [-a CIDR] [-p] [--nat] NAME
  switch destroy [-f] NAME                    tear down what the switch owns and forget it
  switch add NAME IF | remove NAME IF         physical member ports (standard switches)
  switch vlan NAME ID                         tag the physical ports with VLAN ID (0 clears it)
  switch address NAME CIDR|none               IPv4 or IPv6 address of the bridge ('none' removes both)
  switch private NAME on|off                  isolate guest ports from each other (from the next start)
  switch init                                 create every switch again after a host boot (idempotent)
  switch forward add NAME tcp|udp HOSTPORT GUEST:PORT
  switch forward list [--json] NAME | forward remove NAME tcp|udp HOSTPORT

types: standard (a bridge hivectl creates: vm-NAME), manual (an existing bridge, -b), vale (netmap VALE,
FreeBSD), netgraph (an ng_bridge node called NAME, FreeBSD), vxlan (-i parent interface, -n VNI).
--nat (standard switches): an address (default: a free 10.x.y.1/24), NAT to the uplink, a DHCP server
(dnsmasq) on the bridge and optional port forwards. On FreeBSD the rules go to the pf anchor
hivectl/NAME, on Linux to the nftables table inet hivectl_NAME; nothing else is touched.
Every command that changes something takes --dry-run."""


def _dry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)


def configure_switch(p: argparse.ArgumentParser) -> None:
    p.description = DESCRIPTION
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="list switches")
    lst.add_argument("--json", action="store_true", help="print a JSON array of objects")
    info = sub.add_parser("info", help="show switches in detail")
    info.add_argument("--json", action="store_true", help="print a JSON array of objects")
    info.add_argument("names", nargs="*", metavar="NAME")
    create = sub.add_parser("create", help="create a switch")
    create.add_argument("-t", dest="type", default="standard", metavar="TYPE",
                        help="standard (default), manual, vale, netgraph or vxlan")
    create.add_argument("-i", dest="interface", metavar="IF", help="physical port (vxlan: parent interface)")
    create.add_argument("-n", dest="vlan", metavar="VLAN", help="VLAN id 0-4094 for the ports (vxlan: the VNI)")
    create.add_argument("-b", dest="bridge", metavar="BRIDGE", help="existing bridge of a manual switch")
    create.add_argument("-m", dest="mtu", metavar="MTU", help="MTU of the bridge and its ports (576-9000)")
    create.add_argument("-a", dest="address", metavar="CIDR", help="bridge address, e.g. 10.0.0.1/24 or fd00::1/64")
    create.add_argument("-p", dest="private", action="store_true", help="private: guests cannot talk to each other")
    create.add_argument("--nat", action="store_true", help="NAT to the uplink, DHCP and port forwards")
    _dry(create)
    create.add_argument("name", metavar="NAME")
    destroy = sub.add_parser("destroy", help="remove a switch")
    destroy.add_argument("-f", dest="force", action="store_true", help="even if running guests are attached")
    _dry(destroy)
    destroy.add_argument("name", metavar="NAME")
    for verb, helptext in (("add", "add a physical port"), ("remove", "remove a physical port")):
        one = sub.add_parser(verb, help=helptext)
        _dry(one)
        one.add_argument("name", metavar="NAME")
        one.add_argument("interface", metavar="IF")
    vlan = sub.add_parser("vlan", help="set or clear (0) the VLAN of the physical ports")
    _dry(vlan)
    vlan.add_argument("name", metavar="NAME")
    vlan.add_argument("vlan", metavar="ID")
    address = sub.add_parser("address", help="set the bridge address, or 'none'")
    _dry(address)
    address.add_argument("name", metavar="NAME")
    address.add_argument("address", metavar="CIDR|none")
    private = sub.add_parser("private", help="private on|off")
    _dry(private)
    private.add_argument("name", metavar="NAME")
    private.add_argument("value", metavar="on|off")
    init = sub.add_parser("init", help="create all switches (run at boot; 'hivectl init' does it too)")
    _dry(init)
    forward = sub.add_parser("forward", help="port forwards of a NAT switch")
    fsub = forward.add_subparsers(dest="forward_action", metavar="add|list|remove", required=True)
    fadd = fsub.add_parser("add", help="forward a host port to a guest")
    _dry(fadd)
    fadd.add_argument("name", metavar="NAME")
    fadd.add_argument("proto", metavar="tcp|udp")
    fadd.add_argument("host_port", metavar="HOSTPORT")
    fadd.add_argument("target", metavar="GUEST:PORT")
    flist = fsub.add_parser("list", help="list the forwards")
    flist.add_argument("--json", action="store_true", help="print a JSON array")
    flist.add_argument("name", metavar="NAME")
    fremove = fsub.add_parser("remove", help="remove a forward")
    _dry(fremove)
    fremove.add_argument("name", metavar="NAME")
    fremove.add_argument("proto", metavar="tcp|udp")
    fremove.add_argument("host_port", metavar="HOSTPORT")


def _text(value: object) -> str:
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _list_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """vm-bhyve's columns; n/a where a switch type has no such setting, a second row for an IPv6 address."""
    table = []
    for r in rows:
        table += registry.get(r["type"]).list_rows(r, _text)  # the columns each type has (net/switchtypes/)
    return table


def _print_info(data: dict[str, Any]) -> None:
    out = sys.stdout
    out.write("------------------------\n")
    out.write(f"Virtual Switch: {data['name']}\n")
    out.write("------------------------\n")
    for key in ("type", "ident", "vlan", "physical-ports", "address", "address6", "mtu", "private", "nat"):
        out.write(f"  {key}: {_text(data[key])}\n")
    if "dhcp" in data:
        dhcp = data["dhcp"]
        state = f"running (pid {dhcp['pid']})" if dhcp["running"] else "not running"
        out.write(f"  dhcp: {state}, range {_text(dhcp['range'])}\n")
        out.write(f"  forwards: {_text(data['forwards'])}\n")
    for port in data["ports"]:
        out.write("\n  virtual-port\n" if port["kind"] == "guest" else "\n  member\n")
        out.write(f"    device: {port['device']}\n")
        if port["kind"] == "guest":
            out.write(f"    vm: {port['vm']}\n")
        if port["flags"]:
            out.write(f"    flags: {' '.join(port['flags'])}\n")
    out.write("\n")


def run_switch(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.net.ops import CreateRequest, SwitchOps

    action = args.action
    if action != "list" and action != "info":
        ctx.store.require_initialised()
        if not ctx.store.config_dir.is_dir():
            raise HivectlError(f"{ctx.store.config_dir} does not exist: run 'hivectl init' first")
    ops = SwitchOps(ctx.store, ctx.host)
    if action == "list":
        rows = ops.rows()
        if args.json:
            render.as_json(rows)
        else:
            render.table(["NAME", "TYPE", "IFACE", "ADDRESS", "PRIVATE", "MTU", "VLAN", "PORTS"], _list_rows(rows))
        return 0
    if action == "info":
        infos = ops.info(args.names)
        for data in infos:
            for warning in data["warnings"]:
                sys.stderr.write(f"hivectl: warning: switch {data['name']}: {warning}\n")
        if args.json:
            render.as_json(infos)
        else:
            for data in infos:
                _print_info(data)
        return 0
    if action == "create":
        plan = ops.plan_create(CreateRequest(args.name, args.type, args.interface, args.vlan, args.bridge, args.mtu,
                                             args.address, args.private, args.nat))
    elif action == "destroy":
        plan = ops.plan_destroy(args.name, args.force)
    elif action == "add":
        plan = ops.plan_add(args.name, args.interface)
    elif action == "remove":
        plan = ops.plan_remove(args.name, args.interface)
    elif action == "vlan":
        plan = ops.plan_vlan(args.name, args.vlan)
    elif action == "address":
        plan = ops.plan_address(args.name, args.address)
    elif action == "private":
        plan = ops.plan_private(args.name, args.value)
    elif action == "init":
        from hivectl.plan import Plan

        plan = Plan(ops.plan_init())
    elif action == "forward":
        if args.forward_action == "list":
            forwards = ops.forwards(args.name)
            if args.json:
                render.as_json([{"proto": f.proto, "host_port": f.host_port, "guest": str(f.guest),
                                 "guest_port": f.guest_port} for f in forwards])
            else:
                render.table(["PROTO", "HOSTPORT", "GUEST", "PORT"],
                             [[f.proto, f.host_port, f.guest, f.guest_port] for f in forwards])
            return 0
        if args.forward_action == "add":
            plan = ops.plan_forward_add(args.name, args.proto, args.host_port, args.target)
        else:
            plan = ops.plan_forward_remove(args.name, args.proto, args.host_port)
    else:  # argparse only lets known actions through
        raise UsageError(f"unknown switch action {action!r}")
    ctx.execute(plan, args.dry_run)
    return 0
