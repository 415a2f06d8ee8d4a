"""``hivectl import``: a guest made by hand (a bhyve command line, or a script running one) as a hivectl guest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hivectl.cli.context import Context

DRY_RUN_HELP = "show the config that would be written and every step, change nothing"


def configure_import(p: argparse.ArgumentParser) -> None:
    p.description = """\
Make a guest from the bhyve command line it runs today (and the bhyveload or grub-bhyve line before it),
or from a shell script that runs one (vmrun.sh's invocation, a vm-manage.sh). The config keeps every
device at its PCI slot, its disks where they are (custom paths, never copied), its NICs' interfaces and
MAC addresses, memory, CPUs and loader. Before anything is written the guest is planned as 'start' would
plan it and the command line compared with the given one; anything hivectl cannot represent is refused
with its position. What hivectl does differently on purpose (its consoles, -H -P -w) is printed as notes
on stderr and listed in docs/import.md."""
    p.epilog = """examples:
  hivectl import --loader 'bhyveload -m 4G -d /vm/instances/guest1.img guest1' \\
      --bhyve 'bhyve -A -H -P -c 2 -m 4G -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 \\
      -s 3:0,virtio-blk,/vm/instances/guest1.img -l com1,/dev/nmdm0A guest1'
  hivectl import --script vm-manage.sh web1
  hivectl import --script run.sh --line 42 --dry-run"""
    p.add_argument("--bhyve", metavar="'bhyve ... NAME'", help="the bhyve command line, as one argument")
    p.add_argument("--loader", metavar="'bhyveload ... NAME'",
                   help="with --bhyve: the bhyveload or grub-bhyve command line run before it")
    p.add_argument("--script", type=Path, metavar="FILE", help="a shell script that runs bhyve (not run: read)")
    p.add_argument("--line", type=int, metavar="N", help="with --script: the line of the bhyve command to import")
    p.add_argument("-d", dest="datastore", default="default", metavar="DATASTORE", help="datastore for the guest")
    p.add_argument("-C", dest="directory", type=Path, metavar="DIR",
                   help="bhyve's working directory, for relative paths (default: the script's directory, or the "
                        "current one)")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name", nargs="?", help="the guest's name (default: the VM name of the command line)")


def run_import(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.importer import ImportRequest, plan_import

    ctx.store.require_initialised()
    result = plan_import(ctx.host, ctx.store, ImportRequest(args.bhyve, args.loader, args.script, args.line,
                                                             args.name, args.datastore, args.directory))
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    ctx.execute(result.plan, args.dry_run)
    if not args.dry_run and result.install_media is not None:
        sys.stdout.write(f"imported {result.name}; this line boots an installer: run "
                         f"`hivectl install {result.name} {result.install_media}`\n")
    elif not args.dry_run:
        sys.stdout.write(f"imported {result.name}; 'hivectl start --dry-run {result.name}' shows its command line\n")
    return 0
