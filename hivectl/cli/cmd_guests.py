"""Guest commands: create, list, info, configure/edit, rename, destroy, add."""

from __future__ import annotations

import os
import sys

from hivectl.cli import render
from hivectl.cli.context import Context
from hivectl.errors import HivectlError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: ``list`` needs neither it nor argparse
if TYPE_CHECKING:
    import argparse
    from pathlib import Path

DRY_RUN_HELP = "print the host commands this would run, one JSON array per line, and change nothing"


def _path(text: str) -> Path:
    """argparse's ``type=Path``, importing pathlib only when a command takes a path (``list`` takes none)."""
    from pathlib import Path

    return Path(text)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(f"{question} needs confirmation; use -f to confirm without a terminal")
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


# -- create -------------------------------------------------------------------------------------------
def configure_create(p: argparse.ArgumentParser) -> None:
    p.description = """\
Create a guest from a template (default: 'default'). The template is copied to NAME/NAME.conf with a new
uuid and a stable MAC address (58:9c:fc:0x:xx:xx); every diskN is created at diskN_size (20G if unset):
sparse files of mode 600 on directory datastores, zvols (volmode=dev) for zvol/sparse-zvol disks on ZFS
datastores. diskN_size is consumed. Nothing is left behind if a step fails."""
    p.epilog = """examples:
  hivectl create web1                        default template, 20G disk
  hivectl create -t debian -s 50G -c 2 -m 2G db1
  hivectl create -d fast -t freebsd-zvol builder
  hivectl create -t ubuntu -i noble.img -s 30G -C -k ~/.ssh/id_ed25519.pub web2
  hivectl create -C -n "ip=10.0.0.5/24;gateway4=10.0.0.1;nameservers=10.0.0.1" -u user.yaml db2"""
    p.add_argument("-d", dest="datastore", default="default", metavar="DATASTORE", help="datastore to create in")
    p.add_argument("-t", dest="template", default="default", metavar="TEMPLATE",
                   help="template name from vm_dir/.templates")
    p.add_argument("-s", dest="size", metavar="SIZE", help="size of disk0 (e.g. 50G); overrides the template")
    p.add_argument("-c", dest="cpu", metavar="CPUS", help="number of virtual CPUs")
    p.add_argument("-m", dest="memory", metavar="MEMORY", help="memory (e.g. 1G, 512M)")
    p.add_argument("-i", dest="image", metavar="IMAGE",
                   help="write this cloud image (raw, qcow2, vmdk; a path or a name in the image stores) onto disk0")
    p.add_argument("-C", dest="cloud_init", action="store_true",
                   help="add a cloud-init NoCloud seed (NAME/.cloud-init, seed.iso as the last disk)")
    p.add_argument("-k", dest="keyfile", type=_path, metavar="KEYFILE",
                   help="with -C: SSH public keys (authorized_keys format) for the default user")
    p.add_argument("-u", dest="userdata", type=_path, metavar="USER-DATA", help="with -C: user-data file, verbatim")
    p.add_argument("-n", dest="netconfig", action="append", default=[], metavar="KEY=VALUE;...",
                   help="with -C: network settings of the next NIC (repeat for network1, ...): interface, ip, "
                        "gateway4, gateway6, nameservers, searchdomains, hostname")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name", help="guest name: letters, digits, '.', '_', '-'; at most 202 characters")


def run_create(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.guests import CreateRequest, plan_create

    ctx.store.require_initialised()
    plan, _ = plan_create(ctx.store, CreateRequest(args.name, args.template, args.datastore, args.size,
                                                     args.cpu, args.memory, args.image, args.cloud_init,
                                                     args.keyfile, args.userdata, args.netconfig))
    ctx.execute(plan, args.dry_run)
    return 0


# -- list ---------------------------------------------------------------------------------------------
def configure_list(p: argparse.ArgumentParser) -> None:
    p.description = """\
List guests in every datastore with vm-bhyve 1.8's columns: NAME DATASTORE LOADER CPU MEMORY VNC AUTO STATE
TAGS. AUTO is 'Yes [n]' when the guest is the n-th entry of vm_list. STATE is Running (pid), Bootloader
(pid), Stopped, Suspended or Locked (host) for a guest another host (or a crashed run) holds. TAGS is the
guest's tags, comma-separated, or '-'."""
    p.epilog = """examples:
  hivectl list -o name,state,tags        only these columns, in this order
  hivectl list -o name,auto --json       JSON rows with only name, auto and auto_order"""
    p.add_argument("-r", dest="running", action="store_true", help="only guests that are not stopped")
    p.add_argument("-t", dest="tag", metavar="TAG", help="only guests with this tag")
    p.add_argument("-o", dest="columns", metavar="COLUMNS",
                   help="comma-separated columns to show: name, datastore, loader, cpu, memory, vnc, auto, "
                        "state, tags (--json keeps their keys only)")
    p.add_argument("--json", action="store_true", help="print one JSON array of objects")
    p.add_argument("--all-remotes", action="store_true",
                   help="this host's guests and every remote's, with a HOST column (hivectl remote)")


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.listing import COLUMNS, cells, json_columns, list_guests, select_columns

    if args.all_remotes:
        from hivectl.cli.cmd_remote import list_all_remotes

        return list_all_remotes(ctx, args)

    columns = select_columns(args.columns) if args.columns is not None else None
    rows = list_guests(ctx.store, args.running, args.tag)
    if args.json:
        if columns is None:
            render.json_rows([row.as_json() for row in rows])
        else:
            render.json_rows([json_columns(row, columns) for row in rows])
        return 0
    if columns is not None:
        render.table(columns, [cells(r, columns) for r in rows])
        return 0
    render.table(COLUMNS, [[r.name, r.datastore, r.loader, r.cpu, r.memory, r.vnc or "-", r.auto_label, r.state,
                            ",".join(r.tags) or "-"] for r in rows])
    return 0


# -- info ---------------------------------------------------------------------------------------------
def configure_info(p: argparse.ArgumentParser) -> None:
    p.description = "Show a guest's configuration, disks, NICs and state as YAML (or JSON with --json)."
    p.add_argument("--json", action="store_true", help="print JSON (an object, or an array for several guests)")
    p.add_argument("names", nargs="*", metavar="NAME", help="guests to show (default: all)")


def _accelerator(ctx: Context) -> str:
    """What guests run on: bhyve's vmm, or QEMU's KVM/TCG as the QEMU driver decides it (never guessed)."""
    if ctx.driver != "qemu":
        return "vmm"
    from hivectl.drivers.qemu.driver import QemuDriver

    return QemuDriver(ctx.host, ctx.store).accelerator()


def run_info(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.listing import guest_info
    from hivectl.storage.snapshots import snapshot_info

    refs = [ctx.store.get(n) for n in args.names] if args.names else list(ctx.store.iter_guests())
    platform = {"driver": ctx.driver, "accelerator": _accelerator(ctx)}
    infos = [{**guest_info(ctx.store, ref), **platform, "snapshots": snapshot_info(ctx.store, ref)}
             for ref in refs]
    if args.json:
        render.as_json(infos[0] if len(args.names) == 1 else infos)
    else:
        sys.stdout.write("\n---\n".join(render.yaml(info) for info in infos) + "\n")
    return 0


# -- configure / edit ---------------------------------------------------------------------------------
def configure_configure(p: argparse.ArgumentParser) -> None:
    p.description = """\
Open NAME/NAME.conf in $EDITOR (default vi). The edited file is validated before it replaces the old one
(atomically); if it is invalid you are told which key and value are wrong and may edit again.
With --dry-run the edited file is validated and the write is printed instead of done."""
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name")


configure_edit = configure_configure


def run_configure(ctx: Context, args: argparse.Namespace) -> int:
    # Imported here, not at the top: ``list`` and ``info`` share this module and need none of them.
    import shlex
    import tempfile
    from pathlib import Path

    from hivectl.errors import ConfigError, ValidationErrors
    from hivectl.host import process
    from hivectl.ops.guests import plan_configure

    ref = ctx.store.get(args.name)
    original = ref.conf_path.read_text()
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    try:
        # Split like a shell word list (EDITOR="emacs -nw" works, as in vm-bhyve) but never run a shell.
        editor_argv = shlex.split(editor)
    except ValueError as error:
        raise HivectlError(f"EDITOR={editor!r} cannot be split into words: {error}") from None
    if not editor_argv:
        raise HivectlError("EDITOR is blank; set it to an editor command such as vi")
    fd, tmp_name = tempfile.mkstemp(prefix=f"{ref.name}.", suffix=".conf")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(original)
        while True:
            try:
                status = process.interactive([*editor_argv, str(tmp)])
            except OSError as error:
                raise HivectlError(f"cannot run the editor {editor_argv[0]} (EDITOR={editor!r}): "
                                   f"{error.strerror}; {ref.conf_path} is unchanged") from None
            if status != 0:
                raise HivectlError(f"{editor} exited with status {status}; {ref.conf_path} is unchanged")
            text = tmp.read_text()
            if text == original:
                sys.stderr.write("no changes\n")
                return 0
            try:
                plan = plan_configure(ref, text, original)
            except ValidationErrors as invalid:
                problems = invalid.errors
            except ConfigError as invalid:  # a single problem is raised on its own, not in a list
                problems = [invalid]
            else:
                ctx.execute(plan, args.dry_run)
                return 0
            for problem in problems:
                sys.stderr.write(f"hivectl: {problem}\n")
            if not sys.stdin.isatty() or not _confirm("edit again?"):
                raise HivectlError(f"the edited configuration is invalid; {ref.conf_path} is unchanged")
    finally:
        tmp.unlink(missing_ok=True)


run_edit = run_configure


# -- rename -------------------------------------------------------------------------------------------
def configure_rename(p: argparse.ArgumentParser) -> None:
    p.description = "Rename a stopped guest: its directory (or dataset) and its config file."
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name")
    p.add_argument("new_name", metavar="NEW")


def run_rename(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.guests import plan_rename

    ctx.execute(plan_rename(ctx.store, args.name, args.new_name), args.dry_run)
    if not args.dry_run and args.name in ctx.settings.vm_list:
        sys.stderr.write(f"hivectl: note: {args.name} is in vm_list ({ctx.settings.source}); "
                         f"change it to {args.new_name} there to keep autostart\n")
    return 0


# -- destroy ------------------------------------------------------------------------------------------
def configure_destroy(p: argparse.ArgumentParser) -> None:
    p.description = """\
Remove a stopped guest completely: its directory, disks and (on ZFS) its dataset with all snapshots.
Asks for confirmation unless -f is given. Refuses a guest that is running or locked.
'destroy NAME@SNAP' destroys that ZFS snapshot of the guest instead (zfs destroy -r)."""
    p.add_argument("-f", dest="force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name")


def run_destroy(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.guests import plan_destroy

    if "@" in args.name:  # NAME@SNAP: destroy that ZFS snapshot (vm-bhyve's vm(8), ``destroy``)
        from hivectl.storage.snapshots import plan_destroy_snapshot

        ctx.execute(plan_destroy_snapshot(ctx.store, args.name), args.dry_run)
        return 0
    plan = plan_destroy(ctx.store, args.name)
    if args.dry_run:
        ctx.execute(plan, True)
        return 0
    ref = ctx.store.find(args.name)
    what = f"{args.name} and all its disks from {ref.directory}" if ref else f"what is left of {args.name}"
    if not args.force and not _confirm(f"remove {what}?"):
        sys.stderr.write("not removed\n")
        return 1
    ctx.execute(plan, False)
    return 0


# -- add ----------------------------------------------------------------------------------------------
def configure_add(p: argparse.ArgumentParser) -> None:
    p.description = """\
Add a device to a guest. '-d disk -s SIZE [-t file|zvol|sparse-zvol]' creates the next diskN with the
emulation of the last disk; '-d network -s SWITCH' adds the next networkN on that switch, with the
emulation of the last NIC and a new stable MAC address."""
    p.add_argument("-d", dest="device", required=True, choices=("disk", "network"), help="what to add")
    p.add_argument("-s", dest="spec", required=True, metavar="SIZE|SWITCH",
                   help="disk size (e.g. 10G) or switch name")
    from hivectl.model import backing  # here, not at the top: list shares this module and is timed

    p.add_argument("-t", dest="dev", default=backing.DEFAULT, choices=backing.MANAGED,
                   help="disk backing (default file)")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("name")


def run_add(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.guests import plan_add_disk, plan_add_network

    ref = ctx.store.get(args.name)
    if args.device == "disk":
        plan = plan_add_disk(ctx.store, ref, args.spec, args.dev)
    else:
        plan = plan_add_network(ctx.store, ref, args.spec)
    ctx.execute(plan, args.dry_run)
    return 0
