"""vm-bhyve's smaller commands and users' asks: ``tags``, ``passthru``, ``autostart``."""

from __future__ import annotations

import argparse
import sys

from hivectl.cli import render
from hivectl.cli.cmd_guests import DRY_RUN_HELP
from hivectl.cli.context import Context

_RAW = argparse.RawDescriptionHelpFormatter


def _note(text: str) -> None:
    sys.stderr.write(f"hivectl: note: {text}\n")


# -- tags ---------------------------------------------------------------------------------------------------
def configure_tags(p: argparse.ArgumentParser) -> None:
    p.description = """\
Tags are labels for grouping guests, kept in the guest's config as the space-separated key 'tags' (as
vm-bhyve 1.8 keeps them, so both tools see the same tags). A tag follows the guest-name rules: letters,
digits, '.', '_' and '-', at most 63 characters. 'hivectl list -t TAG' lists the guests with a tag.

  tags add [--dry-run] NAME TAG...      add tags the guest does not have yet (after the ones it has)
  tags remove [--dry-run] NAME TAG...   remove tags (tags it does not have are noted and skipped)
  tags list [--json] NAME               the guest's tags, on one line
  tags find [--json] TAG                the guests with exactly this tag, on one line (--json: like list)

Changing tags is allowed while a guest runs: nothing but the config file is touched."""
    p.epilog = """examples:
  hivectl tags add web1 prod frontend
  hivectl tags remove web1 frontend
  hivectl tags list web1                     prod
  hivectl tags find prod                     db1 web1
  hivectl start $(hivectl tags find prod)
  hivectl tags add --dry-run web1 eu         ["sysrc", "-f", "/vm/web1/web1.conf", "tags=prod eu"]"""
    sub = p.add_subparsers(dest="action", metavar="add|remove|list|find", required=True)
    for verb, what in (("add", "add tags to a guest"), ("remove", "remove tags from a guest")):
        one = sub.add_parser(verb, help=what, description=what[0].upper() + what[1:] + ".")
        one.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
        one.add_argument("name", metavar="NAME", help="the guest")
        one.add_argument("tags", nargs="+", metavar="TAG", help="one or more tags")
    show = sub.add_parser("list", help="show a guest's tags", description="Show a guest's tags.")
    show.add_argument("--json", action="store_true", help="print a JSON array of strings")
    show.add_argument("name", metavar="NAME", help="the guest")
    find = sub.add_parser("find", help="the guests with a tag", description="Show the guests that have a tag.")
    find.add_argument("--json", action="store_true", help="print the rows of 'list --json' for these guests")
    find.add_argument("tag", metavar="TAG")


def run_tags(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops import tags

    if args.action == "find":
        rows = tags.find(ctx.store, args.tag)
        if args.json:
            render.json_rows([row.as_json() for row in rows])
        elif rows:
            sys.stdout.write(" ".join(row.name for row in rows) + "\n")
        return 0
    ref = ctx.store.get(args.name)
    if args.action == "list":
        current = tags.current(ref)
        if args.json:
            render.as_json(current)
        elif current:
            sys.stdout.write(" ".join(current) + "\n")
        return 0
    if args.action == "add":
        plan, already = tags.plan_add(ref, args.tags)
        if already:
            _note(f"{ref.name} already has {', '.join(already)}")
    else:
        plan, absent = tags.plan_remove(ref, args.tags)
        if absent:
            _note(f"{ref.name} has no tag {', '.join(absent)}")
    ctx.execute(plan, args.dry_run)
    return 0


# -- passthru -----------------------------------------------------------------------------------------------
def configure_passthru(p: argparse.ArgumentParser) -> None:
    p.description = """\
List the host's PCI devices and whether each is ready to be passed through to a guest, with vm-bhyve's
columns:

  DEVICE       FreeBSD: the driver and unit (ppt0, em0; none1 when no driver has it)
  BHYVE        bus/slot/function, the value a guest's passthruN key takes ('-' outside PCI domain 0,
               which bhyve cannot use)
  ID           vendor:device, in hex
  READY        Yes when the device is reserved for passthrough: FreeBSD: the ppt driver has it
               (pptdevs="B/S/F ..." in /boot/loader.conf, or 'devctl set driver -f pci0:B:S:F ppt');
               Linux: the vfio-pci driver has it
  DESCRIPTION  the device's name (pciconf -lv; on Linux from pci.ids, else its class)

On Linux the devices are read from /sys/bus/pci/devices; DEVICE is the PCI address (0000:01:00.0) and a
DRIVER column shows the driver that has the device. FreeBSD runs pciconf -lv once."""
    p.epilog = """examples:
  hivectl passthru
  hivectl passthru --json | jq -r '.[] | select(.ready) | .bhyve'
  hivectl configure web1                     then add passthru0="2/0/0" (bhyve wires the guest's memory)"""
    p.add_argument("--json", action="store_true", help="print one JSON array of objects (with vendor, class, "
                                                       "driver and, on Linux, the IOMMU group)")


def run_passthru(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.passthru import host_devices

    devices = host_devices(ctx.host)
    if args.json:
        render.json_rows([device.as_json() for device in devices])
        return 0
    linux = ctx.host.platform != "freebsd"
    headers = ["DEVICE", *(["DRIVER"] if linux else []), "BHYVE", "ID", "READY", "DESCRIPTION"]
    rows = [[d.device, *([d.driver or "-"] if linux else []), d.bhyve or "-", d.pci_id, "Yes" if d.ready else "No",
             d.description or "-"] for d in devices]
    render.table(headers, rows)
    return 0


# -- autostart ----------------------------------------------------------------------------------------------
def configure_autostart(p: argparse.ArgumentParser) -> None:
    p.description = """\
Choose which guests start at boot and in what order. At boot (rc.d script, or 'hivectl startall') the
guests of vm_list start in its order, vm_delay seconds apart; vm-bhyve reads the same vm_list. It is kept
where it is set: on FreeBSD the last of /etc/rc.conf, /etc/rc.conf.local, /etc/rc.conf.d/vm and
/usr/local/etc/rc.conf.d/vm that sets it (the one that wins, as vm-bhyve reads them), else /etc/rc.conf;
/etc/hivectl.conf on Linux; or the files HIVECTL_RC_CONF names.

  autostart list [--json]                            ORDER NAME DATASTORE STATE, then vm_delay
  autostart add [--position N] [--dry-run] NAME...   append guests, or insert them from position N on
                                                     (moving them if they are listed already)
  autostart remove [--dry-run] NAME...               take guests off the list (every occurrence)

The file is edited in place like sysrc does it: only the vm_list line changes (its comment stays), the
file is replaced atomically and keeps its mode. hivectl refuses rather than guesses when vm_list is set
more than once in that file or built from other values (${...}, +=).
'remove' accepts names that are no longer guests, so stale entries can be cleaned up."""
    p.epilog = """examples:
  hivectl autostart add db1 web1             start db1, then web1, at boot
  hivectl autostart add --position 1 dns     dns first
  hivectl autostart list
  hivectl autostart remove web1
  hivectl autostart add --dry-run web2       ["sysrc", "-f", "/etc/rc.conf", "vm_list=dns db1 web2"]"""
    sub = p.add_subparsers(dest="action", metavar="list|add|remove", required=True)
    show = sub.add_parser("list", help="show the guests that start at boot",
                          description="Show the guests that start at boot, in order, and vm_delay.")
    show.add_argument("--json", action="store_true", help="print a JSON object (file, vm_delay, guests)")
    add = sub.add_parser("add", help="start guests at boot", formatter_class=_RAW,
                         description="Add guests to vm_list: at the end, or from position N on.")
    add.add_argument("--position", metavar="N", help="1-based place in vm_list for the first NAME")
    add.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    add.add_argument("names", nargs="+", metavar="NAME", help="guests to add, in order")
    remove = sub.add_parser("remove", help="stop starting guests at boot",
                            description="Remove guests from vm_list.")
    remove.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    remove.add_argument("names", nargs="+", metavar="NAME", help="guests to remove")


def run_autostart(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops import autostart

    if args.action == "list":
        entries = autostart.entries(ctx.store)
        delay = ctx.settings.vm_delay
        if args.json:
            render.as_json({"file": str(autostart.kept_in()), "vm_delay": delay,
                            "guests": [entry.as_json() for entry in entries]})
            return 0
        render.table(["ORDER", "NAME", "DATASTORE", "STATE"],
                     [[e.order, e.name, e.datastore or "-", e.state] for e in entries])
        sys.stdout.write(f"vm_delay: {delay} seconds between starts (vm_list is kept in {autostart.kept_in()})\n")
        return 0
    if args.action == "add":
        plan, kept = autostart.plan_add(ctx.store, args.names, args.position)
        if kept:
            _note(f"{', '.join(kept)} already in vm_list; use --position to move")
    else:
        plan, absent = autostart.plan_remove(args.names)
        if absent:
            _note(f"{', '.join(absent)} not in vm_list")
    ctx.execute(plan, args.dry_run)
    return 0
