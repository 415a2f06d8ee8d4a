"""Storage commands: disk, snapshot, rollback, clone, iso, img, image, backup, restore."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hivectl.cli import render
from hivectl.cli.cmd_guests import DRY_RUN_HELP
from hivectl.cli.context import Context
from hivectl.errors import UsageError

_VERIFY_HELP = """\
verification (optional, recommended):
  --sha256 HEX        the expected SHA-256 of the downloaded file
  --sums URL|FILE     a SHA256SUMS file (GNU 'HASH  name' or BSD 'SHA256 (name) = HASH' lines)"""


# -- iso / img ----------------------------------------------------------------------------------------
def _configure_media(p: argparse.ArgumentParser, kind: str) -> None:
    what = "installer ISOs" if kind == "iso" else "cloud images"
    p.description = f"""\
Without URL: list the {what} in every {kind} store as DATASTORE FILENAME.
With URL (http or https): download into vm_dir/.{kind} (or the {kind}: datastore given with -d). A progress
bar is shown on a terminal; an interrupted download is kept as FILE.part and the same command resumes it.
.xz, .gz, .bz2 and .zst files are decompressed in-process (zst needs the Python module zstandard); no
external program is run.

{_VERIFY_HELP}"""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-d", dest="datastore", metavar="DATASTORE", help=f"{kind} datastore to download into")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the downloaded file")
    group.add_argument("--sums", metavar="URL|FILE", help="SHA256SUMS file to verify against")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("--dry-run", action="store_true",
                   help="with URL: print the download (fetch -o FILE URL), one JSON array per line; change nothing")
    p.add_argument("url", nargs="?", metavar="URL")


def _run_media(ctx: Context, args: argparse.Namespace, kind: str) -> int:
    from hivectl.storage import download, media

    if args.url is None:
        if args.sha256 or args.sums or args.datastore:
            raise UsageError("-d, --sha256 and --sums need a URL to download")
        files = media.list_media(ctx.store, kind)
        if args.json:
            render.as_json([{"datastore": f.datastore, "filename": f.name, "size": f.size} for f in files])
        else:
            render.table(["DATASTORE", "FILENAME"], [[f.datastore, f.name] for f in files])
        return 0
    if args.dry_run:
        from hivectl.ops.media import DownloadRequest, plan_download
        from hivectl.plan import render as render_argvs

        lines = plan_download(ctx.store, DownloadRequest(kind, args.url, args.datastore, args.sha256, args.sums))
        sys.stdout.write("".join(line + "\n" for line in render_argvs(lines)))
        return 0
    target = media.target_store(ctx.store, kind, args.datastore)
    fetched = download.fetch(args.url, target.path, sha256=args.sha256, sums=args.sums)
    verified = " (SHA-256 verified)" if args.sha256 or args.sums else ""
    sys.stderr.write(f"{fetched.path}{verified}\n")
    return 0


def configure_iso(p: argparse.ArgumentParser) -> None:
    _configure_media(p, "iso")


def run_iso(ctx: Context, args: argparse.Namespace) -> int:
    return _run_media(ctx, args, "iso")


def configure_img(p: argparse.ArgumentParser) -> None:
    _configure_media(p, "img")


def run_img(ctx: Context, args: argparse.Namespace) -> int:
    return _run_media(ctx, args, "img")


# -- disk ---------------------------------------------------------------------------------------------
def configure_disk(p: argparse.ArgumentParser) -> None:
    p.description = """\
'disk list NAME' shows a guest's disks. 'disk resize NAME DISK SIZE' grows a stopped guest's disk to SIZE
(or by +SIZE): sparse files are extended (nothing is written), zvols get 'zfs set volsize='. DISK is a key
(disk0), an index (0) or a disk name (disk0.img). Disks never shrink. Grow the partition and file system
inside the guest afterwards (cloud images do it at the next boot)."""
    p.epilog = "examples:\n  hivectl disk resize web disk0 40G\n  hivectl disk resize db 1 +10G"
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("action", choices=("list", "resize"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("disk", nargs="?", metavar="DISK")
    p.add_argument("size", nargs="?", metavar="SIZE")


def run_disk(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.validate import format_size

    if args.action == "list":
        if args.disk or args.size:
            raise UsageError("disk list takes only NAME")
        from hivectl.ops.listing import guest_info

        disks = guest_info(ctx.store, ctx.store.get(args.name))["disks"]
        if args.json:
            render.as_json(disks)
        else:
            render.table(["DISK", "NAME", "TYPE", "DEV", "SIZE", "USED", "PATH"],
                         [[f"disk{d['index']}", d["name"], d["type"], d["dev"],
                           format_size(d["size"]) if d["size"] is not None else "-",
                           format_size(d["used"]) if d["used"] is not None else "-", d["path"]] for d in disks])
        return 0
    if not args.disk or not args.size:
        raise UsageError("usage: hivectl disk resize NAME DISK SIZE")
    from hivectl.storage.resize import plan_resize

    result = plan_resize(ctx.store, args.name, args.disk, args.size)
    if not result.plan.actions:
        sys.stderr.write(f"{result.disk.key} is already {format_size(result.new)}\n")
        return 0
    ctx.execute(result.plan, args.dry_run)
    if not args.dry_run:
        sys.stderr.write(f"{args.name} {result.disk.key}: {format_size(result.old)} -> {format_size(result.new)}; "
                         "grow the partition and file system inside the guest\n")
    return 0


# -- snapshot / rollback / clone ----------------------------------------------------------------------
def configure_snapshot(p: argparse.ArgumentParser) -> None:
    from hivectl.cli.cmd_retention import POLICY_HELP, add_policy_options

    p.description = """\
Take a recursive ZFS snapshot of a guest (its dataset and every zvol): zfs snapshot -r DATASET@SNAP.
The default name is the current time, YYYY-MM-DD-HH:MM:SS. The guest must be stopped unless -f is given
(then the snapshot is crash-consistent, like pulling the power). Needs a ZFS datastore.

'snapshot prune NAME... --keep-...' destroys the snapshots of each guest that a retention policy does not
keep (zfs destroy -r), newest first, and shows every decision with the option that kept each snapshot
('hivectl retention explain' shows the same without changing anything).

""" + POLICY_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = """examples:
  hivectl snapshot web@before-upgrade
  hivectl snapshot prune web --keep-daily 30          the cookbook's vm-backup.sh: 30 days of snapshots
  hivectl snapshot prune --dry-run web db --policy keep-last=3,keep-weekly=8"""
    p.add_argument("-f", dest="force", action="store_true", help="snapshot a running guest")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("--json", action="store_true", help="prune: the decisions as JSON")
    add_policy_options(p)
    p.add_argument("spec", metavar="NAME[@SNAP] | prune")
    p.add_argument("names", nargs="*", metavar="NAME", help=argparse.SUPPRESS)
    p.intermixed = True  # type: ignore[attr-defined]  # options may come between the names (cli/main.py)


def run_snapshot(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.retention import RULES

    if args.spec == "prune" and args.names:
        return _run_prune(ctx, args)
    if args.names:
        raise UsageError(f"snapshot takes one NAME[@SNAP] (got {len(args.names) + 1}); "
                         "to prune: snapshot prune NAME...")
    if args.policy is not None or any(getattr(args, f"keep_{rule}") is not None for rule in RULES) or args.json:
        raise UsageError("--keep-*, --policy and --json belong to 'snapshot prune NAME...'")
    from hivectl.storage.snapshots import plan_snapshot

    plan, snap = plan_snapshot(ctx.store, args.spec, args.force)
    ctx.execute(plan, args.dry_run)
    if not args.dry_run:
        sys.stdout.write(f"{args.spec.split('@')[0]}@{snap}\n")
    return 0


def _run_prune(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.cli.cmd_retention import policy_of, show_decisions
    from hivectl.ops.retention import prune

    if args.force:
        raise UsageError("-f belongs to taking a snapshot, not to 'snapshot prune'")
    policy = policy_of(args)
    for name in args.names:
        result = prune(ctx, name, policy, args.dry_run)
        if args.dry_run:
            import json

            sys.stdout.write("".join(json.dumps(argv) + "\n" for argv in result.plan))
        else:
            if len(args.names) > 1 and not args.json:
                sys.stdout.write(f"{name}:\n")
            show_decisions(result.decisions, args.json)
    return 0


def configure_rollback(p: argparse.ArgumentParser) -> None:
    p.description = """\
Roll a stopped guest back to a snapshot: every filesystem and zvol of the guest (zfs rollback). Snapshots
newer than SNAP are an error unless -r is given, which destroys them. Needs a ZFS datastore."""
    p.add_argument("-r", dest="recursive", action="store_true", help="destroy newer snapshots")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("spec", metavar="NAME@SNAP")


def run_rollback(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.storage.snapshots import plan_rollback

    ctx.execute(plan_rollback(ctx.store, args.spec, args.recursive), args.dry_run)
    return 0


def configure_clone(p: argparse.ArgumentParser) -> None:
    p.description = """\
Make guest NEW from NAME in the same datastore. On ZFS: zfs clone of every dataset and zvol, from SNAP or
from a snapshot taken now (NAME must then be stopped); the clone depends on that snapshot. On a directory
datastore: a sparse-aware copy of the stopped guest (no @SNAP). The copy gets a new uuid and new MAC
addresses, and its cloud-init seed is rebuilt with them."""
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("spec", metavar="NAME[@SNAP]")
    p.add_argument("new", metavar="NEW")


def run_clone(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.storage.clone import plan_clone

    ctx.execute(plan_clone(ctx.store, args.spec, args.new), args.dry_run)
    return 0


# -- backup / restore ---------------------------------------------------------------------------------
def configure_backup(p: argparse.ArgumentParser) -> None:
    p.description = """\
Write a guest to one compressed tar stream with a manifest and checksums: NAME.STAMP.backup.tar.gz in
DIR (default vm_dir/.backups) plus FILE.sha256, or to standard output with '--to -'. Disks are stored
sparse: holes are neither read nor written. A guest on a directory datastore must be stopped; a ZFS guest
is backed up from a recursive snapshot with 'zfs send', incrementally to the previous backup in DIR.
--keep N deletes older backups of the guest in DIR, keeping every backup a kept one needs; with --keep a
new full backup starts after N-1 incremental ones. --policy P instead of --keep (the grammar of 'snapshot
prune --policy', Proxmox's keep-last/hourly/daily/weekly/monthly/yearly: keep-daily=7,keep-weekly=4) keeps
what it selects and every backup those need; a new full backup starts once a chain is as long as the
policy's counts added up."""
    p.add_argument("--to", metavar="DIR|-", help="target directory, or - for standard output")
    p.add_argument("--keep", type=int, metavar="N", help="keep the newest N backups of this guest in DIR")
    p.add_argument("--policy", metavar="P", help="prune by a retention policy instead: keep-daily=7,keep-weekly=4 "
                   "(Proxmox's options; see 'hivectl retention --help')")
    p.add_argument("--compress", default="gz", choices=("gz", "xz", "zst", "bz2", "none"),
                   help="compression (default gz; zst needs the Python module zstandard)")
    p.add_argument("--full", action="store_true", help="ZFS: a full backup even if an incremental one is possible")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name", metavar="NAME")


def run_backup(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.storage.backup import BackupRequest, plan_backup

    plan, written = plan_backup(ctx.store, BackupRequest(args.name, args.to, args.keep, args.compress, args.full,
                                                         args.policy))
    if args.dry_run:
        ctx.execute(plan, True)
        return 0
    ctx.execute(plan, False)
    for skipped in written.skipped:
        sys.stderr.write(f"hivectl: note: {skipped} is not stored by hivectl and was not backed up\n")
    if written.path is not None:
        sys.stdout.write(f"{written.path}\n")
    return 0


def configure_restore(p: argparse.ArgumentParser) -> None:
    p.description = """\
Recreate a guest from a backup (a file, or - for standard input) in DATASTORE (default: default), under
its own name or NAME. Every checksum is verified and the guest is only put in place when all of them
match; an incremental ZFS backup is restored with the backups it builds on (found in the same directory).
The guest keeps its uuid and MAC addresses."""
    p.add_argument("-d", dest="datastore", metavar="DATASTORE", help="datastore to restore into")
    p.add_argument("--dry-run", action="store_true",
                   help="check the backup's header, the datastore and the name, print what would be restored "
                        "(one JSON array per line) and change nothing")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("name", nargs="?", metavar="NAME")


def run_restore(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.storage.backup import restore

    if args.dry_run:
        from hivectl.ops.media import RestoreRequest, plan_restore
        from hivectl.plan import render as render_argvs

        lines = plan_restore(ctx.store, RestoreRequest(str(args.file), args.name, args.datastore))
        sys.stdout.write("".join(line + "\n" for line in render_argvs(lines)))
        return 0

    result = restore(ctx.store, args.file, args.datastore, args.name)
    sys.stderr.write(f"restored {result.ref.name} into {result.ref.directory}\n")
    return 0


# -- image --------------------------------------------------------------------------------------------
def configure_image(p: argparse.ArgumentParser) -> None:
    p.description = """\
Guest images on ZFS (the default datastore must be ZFS), kept in vm_dir/images as UUID.zfs[.xz] plus
UUID.manifest (vm-bhyve's format):
  image list                                 UUID NAME CREATED DESCRIPTION
  image create [-d DESC] [-u] [--compress K] NAME   zfs send -R of a snapshot of NAME (xz by default)
  image provision [-d DATASTORE] UUID NEW    a new guest from the image (new uuid and MACs)
  image destroy UUID                         remove the image
Compression is handled in-process; a manifest's 'decompress' command is never run."""
    sub = p.add_subparsers(dest="action", required=True, metavar="list|create|provision|destroy")
    listing = sub.add_parser("list", help="list images")
    listing.add_argument("--json", action="store_true", help="print JSON")
    create = sub.add_parser("create", help="make an image of a ZFS guest")
    create.add_argument("-d", dest="description", default="", metavar="DESC", help="description")
    create.add_argument("-u", dest="uncompressed", action="store_true", help="do not compress")
    create.add_argument("--compress", choices=("xz", "gz", "zst", "none"), help="compression (default xz)")
    create.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    create.add_argument("name", metavar="NAME")
    provision = sub.add_parser("provision", help="make a new guest from an image")
    provision.add_argument("-d", dest="datastore", default="default", metavar="DATASTORE", help="ZFS datastore")
    provision.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    provision.add_argument("uuid", metavar="UUID")
    provision.add_argument("new", metavar="NEW")
    destroy = sub.add_parser("destroy", help="remove an image")
    destroy.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    destroy.add_argument("uuid", metavar="UUID")


def run_image(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.storage import images

    if args.action == "list":
        found = images.list_images(ctx.store)
        if args.json:
            render.as_json([vars(i) for i in found])
        else:
            render.table(["UUID", "NAME", "CREATED", "DESCRIPTION"],
                         [[i.uuid, i.name, i.created, i.description] for i in found])
        return 0
    if args.action == "create":
        compress = "none" if args.uncompressed else args.compress or "xz"
        plan, uuid = images.plan_create(ctx.store, args.name, args.description, compress)
        ctx.execute(plan, args.dry_run)
        if not args.dry_run:
            sys.stdout.write(uuid + "\n")
        return 0
    if args.action == "provision":
        ctx.execute(images.plan_provision(ctx.store, args.uuid, args.new, args.datastore), args.dry_run)
        return 0
    ctx.execute(images.plan_destroy(ctx.store, args.uuid), args.dry_run)
    return 0


__all__ = ["Path"]
