"""Suspend and resume commands: ``suspend NAME...``, ``resume [--discard] NAME``, ``suspendall``, ``resumeall``.

Only parsing and rendering: both are operations of ``hivectl/ops/suspend.py``.
"""

from __future__ import annotations

import sys

from hivectl.cli.context import Context
from hivectl.ops import suspend as ops

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse


def _print_plan(plan: list[list[str]], warnings: list[str]) -> None:
    import json

    for line in plan:
        sys.stdout.write(json.dumps(line) + "\n")
    for warning in warnings:
        sys.stderr.write(f"hivectl: {warning}\n")


def configure_suspend(p: argparse.ArgumentParser) -> None:
    p.description = """\
Save the state of running guests into their directories (NAME.save) and stop them; 'hivectl resume NAME'
or 'hivectl start NAME' continues each where it was. bhyve: needs a bhyve built with snapshot support
(WITH_BHYVE_SNAPSHOT and a kernel with options BHYVE_SNAPSHOT), checked before anything is done;
'bhyvectl --suspend' writes NAME.save, NAME.save.kern and NAME.save.meta. QEMU: the paused guest is
migrated into NAME.save. A record of the machine and its disks (NAME.save.hivectl) lets a resume refuse
a save that no longer fits. If the save fails the guest runs on."""
    p.add_argument("--timeout", type=float, default=ops.SUSPEND_TIMEOUT, metavar="S",
                   help=f"seconds for the save to complete (default {ops.SUSPEND_TIMEOUT:g})")
    p.add_argument("--dry-run", action="store_true", help="print the plan (JSON arrays) and change nothing")
    p.add_argument("names", nargs="+", metavar="NAME")


def run_suspend(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.suspend(ctx, ops.SuspendRequest(tuple(args.names), args.timeout, args.dry_run))
    return _report_suspended(result, args.dry_run)


def _report_suspended(result: ops.SuspendResult, dry_run: bool) -> int:
    """What suspend and suspendall print: the plan, or each save made and each guest that could not be."""
    if dry_run:
        _print_plan(result.plan, [])
        return 0
    for line in result.suspended:
        sys.stdout.write(f"{line.split(': ', 1)[0]}: suspended into {line.split(': ', 1)[1]}\n")
    for error in result.errors:
        sys.stderr.write(f"hivectl: {error}\n")
    return 1 if result.errors else 0


def configure_resume(p: argparse.ArgumentParser) -> None:
    p.description = """\
Continue a suspended guest from its save (the same as 'hivectl start NAME'). A save that no longer fits
is refused with the reason: the config changed since (disks, memory, CPUs, devices), or a disk was written
since (a snapshot rolled back, another program). --discard moves the save aside into
NAME.save.discarded-STAMP/ (nothing is deleted; remove it yourself) and boots the guest afresh, as
'start --discard-save' does."""
    p.add_argument("--discard", action="store_true", help="put the save aside and boot the guest afresh")
    p.add_argument("--dry-run", action="store_true", help="print the plan (JSON arrays) and change nothing")
    p.add_argument("name")


def run_resume(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.resume(ctx, ops.ResumeRequest(args.name, args.discard, args.dry_run))
    if args.dry_run:
        _print_plan(result.plan, result.warnings)
        return 0
    sys.stdout.write(f"{args.name}: {'started afresh' if args.discard else 'resumed'} (pid {result.pid})\n")
    return 0


def configure_suspendall(p: argparse.ArgumentParser) -> None:
    p.description = """\
Suspend every running guest, as 'hivectl suspend' does each (vm-bhyve's 'vm suspendall'): in stopall's
order, the guests not in vm_list first, then vm_list's in reverse. A guest that cannot be suspended is
reported and the others are still suspended (exit status 1). 'hivectl resumeall' continues them."""
    p.add_argument("--timeout", type=float, default=ops.SUSPEND_TIMEOUT, metavar="S",
                   help=f"seconds for each save to complete (default {ops.SUSPEND_TIMEOUT:g})")
    p.add_argument("--dry-run", action="store_true", help="print the plan (JSON arrays) and change nothing")


def run_suspendall(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.suspendall(ctx, args.timeout, args.dry_run)
    return _report_suspended(result, args.dry_run)


def configure_resumeall(p: argparse.ArgumentParser) -> None:
    p.description = """\
Resume every suspended guest from its save, as 'hivectl resume' does each: those in vm_list first, in its
order, then the others. A save that no longer fits is reported and the others are still resumed (exit
status 1); 'hivectl resume --discard NAME' boots such a guest afresh."""
    p.add_argument("--dry-run", action="store_true", help="print the plan (JSON arrays) and change nothing")


def run_resumeall(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.resumeall(ctx, args.dry_run)
    if args.dry_run:
        _print_plan(result.plan, result.warnings)
        return 0
    for one in result.resumed:
        sys.stdout.write(f"{one.name}: resumed (pid {one.pid})\n")
    for error in result.errors:
        sys.stderr.write(f"hivectl: {error}\n")
    return 1 if result.errors else 0
