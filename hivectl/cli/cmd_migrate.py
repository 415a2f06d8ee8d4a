"""``hivectl migrate``: the sending end (the receiving end is ``hivectl _stream``, hivectl/cli/stream.py)."""

from __future__ import annotations

import argparse
import sys

from hivectl.cli import render
from hivectl.cli.context import Context


def configure_migrate(p: argparse.ArgumentParser) -> None:
    p.description = """\
Move guest NAME to another host (docs/migration.md). REMOTE is ssh://[USER@]HOST[:PORT] (hivectl on the far
side of ssh), local:VM_DIR (another vm_dir of this machine), exec:COMMAND (a command that runs hivectl
there, e.g. 'exec:jexec web hivectl') or a remote added with 'hivectl remote add'.
Both hosts are checked first and every problem is listed (switches, datastore, firmware, CPUs, memory,
passthru devices, the name). Cold (default): stop, send the guest directory (disks sparse-aware, the config,
UEFI vars, TPM state, cloud-init seed), start it there if it was running, then remove it here. --warm: send
while the guest runs, in rounds of changed blocks, until one round fits --max-downtime; then stop, send the
last changes and start there; the downtime is measured and printed. An interrupted migration leaves the
guest here (running again if it was) and nothing of it on the target."""
    p.add_argument("--warm", action="store_true", help="copy while the guest runs; stop only for the last delta")
    p.add_argument("--max-downtime", type=float, default=5.0, metavar="S",
                   help="warm: the downtime to aim for, in seconds (default 5)")
    p.add_argument("--rename", metavar="NEW", help="the guest's name on the target")
    p.add_argument("--datastore", "-d", metavar="DS", help="the target's datastore (default: same name as here)")
    p.add_argument("--keep-source", action="store_true", help="keep the (stopped) guest here afterwards")
    p.add_argument("--to-vm-bhyve", action="store_true",
                   help="the target runs vm-bhyve: send in its protocol (ZFS; REMOTE ssh:// or exec:)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--dry-run", action="store_true",
                   help="run the preflight on both hosts; print the steps and what it found")
    p.add_argument("name", metavar="NAME")
    p.add_argument("remote", metavar="REMOTE")


def run_migrate(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.migrate.transport import connect
    from hivectl.ops.migrate import MigrateRequest, migrate

    request = MigrateRequest(args.name, args.remote, args.warm, args.max_downtime, args.rename, args.keep_source,
                             args.datastore, args.dry_run, args.to_vm_bhyve)
    quiet = args.json

    def say(line: str) -> None:
        if not quiet:
            sys.stdout.write(f"  * {line}\n")
            sys.stdout.flush()

    result = migrate(ctx, None if args.to_vm_bhyve else connect(args.remote, ctx), request, say)
    if args.json:
        render.as_json(result.as_json())
    elif args.dry_run:
        sys.stdout.write("".join(f"{step}\n" for step in result.plan))
        sys.stdout.write("".join(f"warning: {problem}\n" for problem in result.problems))
    else:
        shown = f"; downtime {result.downtime:.2f} s" if result.downtime is not None else ""
        sys.stdout.write(f"{result.name} migrated to {result.remote} as {result.target} ({result.mode}{shown})\n")
    return 0
