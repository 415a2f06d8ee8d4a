"""Host commands: init, get, set, datastore, template, version."""

from __future__ import annotations

import argparse
import sys

from hivectl import __version__
from hivectl.cli import render
from hivectl.cli.cmd_guests import DRY_RUN_HELP
from hivectl.cli.context import Context
from hivectl.errors import UsageError
from hivectl.model.guest import GuestConfig


def configure_init(p: argparse.ArgumentParser) -> None:
    p.description = """\
Prepare vm_dir (.config, .templates with the shipped sample templates, .iso, .img, .config/null.iso)
and the host: on FreeBSD load vmm, nmdm, if_bridge and if_tuntap and set net.link.tap.up_on_open=1.
Safe to run again: what exists is left alone (templates you edited are never overwritten). The samples
are copied when .templates is created; later runs bring back only default.conf if it is missing (as
vm-bhyve's init does), never a sample you deleted."""
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)


def run_init(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.system import plan_init

    ctx.execute(plan_init(ctx.store, ctx.host), args.dry_run)
    return 0


def configure_get(p: argparse.ArgumentParser) -> None:
    p.description = "Show system settings (console, compress, decompress, suspend); '-' means unset."
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("names", nargs="*", metavar="SETTING", help="settings to show, or 'all' (default)")


def run_get(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.system import get_settings

    pairs = get_settings(ctx.store, args.names)
    if args.json:
        render.as_json({k: (None if v == "-" else v) for k, v in pairs})
    else:
        render.table(["SETTING", "VALUE"], pairs)
    return 0


def configure_set(p: argparse.ArgumentParser) -> None:
    p.description = """\
Change system settings in vm_dir/.config/system.conf:
  console=nmdm|tmux     how 'console' attaches to guests
  compress=COMMAND      vm-bhyve's compressor for 'image create'
  decompress=COMMAND    vm-bhyve's decompressor for 'image provision'
  suspend=yes|no        vm-bhyve's switch for suspend (needs a bhyve built with BHYVE_SNAPSHOT)
compress, decompress and suspend are kept for vm-bhyve sharing this vm_dir; hivectl itself never runs a
compress or decompress command (it compresses in-process: 'image create --compress') and does not suspend."""
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("assignments", nargs="+", metavar="SETTING=VALUE")


def run_set(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.system import plan_set_settings

    ctx.execute(plan_set_settings(ctx.store, args.assignments), args.dry_run)
    return 0


def configure_datastore(p: argparse.ArgumentParser) -> None:
    p.description = """\
Datastores are extra places for guests: a directory or a mounted ZFS dataset (zfs:pool/dataset). ISO and
image stores hold install media and cloud images. 'remove' only forgets a datastore; no data is deleted.

  datastore list [--json]
  datastore add NAME /path | zfs:pool/dataset
  datastore iso NAME /path          add an ISO store
  datastore img NAME /path          add a cloud-image store
  datastore remove NAME"""
    p.add_argument("action", choices=("list", "add", "remove", "iso", "img"))
    p.add_argument("args", nargs="*", metavar="ARG")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)


def run_datastore(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops import system

    store = ctx.store
    if args.action == "list":
        rows = [{"name": d.name, "type": d.kind, "path": str(d.path), "zfs": d.dataset is not None,
                 "dataset": d.dataset} for d in store.datastores()]
        if args.json:
            render.as_json(rows)
        else:
            render.table(["NAME", "TYPE", "PATH", "ZFS", "DATASET"],
                         [[r["name"], r["type"], r["path"], "yes" if r["zfs"] else "no", r["dataset"] or "-"]
                          for r in rows])
        return 0
    if args.action == "remove":
        if len(args.args) != 1:
            raise UsageError("usage: hivectl datastore remove NAME")
        ctx.execute(system.plan_datastore_remove(store, args.args[0]), args.dry_run)
        return 0
    if len(args.args) != 2:
        raise UsageError(f"usage: hivectl datastore {args.action} NAME PATH")
    kind = "" if args.action == "add" else args.action
    ctx.execute(system.plan_datastore_add(store, args.args[0], args.args[1], kind), args.dry_run)
    return 0


def configure_template(p: argparse.ArgumentParser) -> None:
    p.description = """\
Templates live in vm_dir/.templates/NAME.conf, in vm-bhyve's format; 'create -t NAME' copies one.
  template list [--json]     name, loader, cpu, memory and disks of each template
  template show NAME         print a template"""
    p.add_argument("action", choices=("list", "show"))
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="with list: print a JSON array")


def run_template(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.store
    if args.action == "show":
        if not args.name:
            raise UsageError("usage: hivectl template show NAME")
        sys.stdout.write(store.template_path(args.name).read_text())
        return 0
    rows = []
    for name in store.templates():
        config = GuestConfig.load(store.templates_dir / f"{name}.conf", name)
        disks = [f"{d.type}:{config.get(f'disk{d.index}_size') or '20G'}" for d in config.disks]
        rows.append({"name": name, "loader": config.loader or "none", "cpu": config.cpu,
                     "memory": config.memory, "disks": " ".join(disks) or "-", "networks": len(config.nics)})
    if args.json:
        render.as_json(rows)
    else:
        render.table(["NAME", "LOADER", "CPU", "MEMORY", "DISKS", "NICS"],
                     [[r["name"], r["loader"], r["cpu"], r["memory"], r["disks"], r["networks"]]
                      for r in rows])
    return 0


def configure_version(p: argparse.ArgumentParser) -> None:
    p.description = "Print hivectl's version."


def run_version(ctx: Context, args: argparse.Namespace) -> int:
    sys.stdout.write(f"hivectl: bhyve virtual machine management v{__version__}\n")
    return 0
