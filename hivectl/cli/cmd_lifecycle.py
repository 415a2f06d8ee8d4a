"""Lifecycle commands: start, install, stop, restart, reset, poweroff, console, startall, stopall.

Only parsing and rendering: every command is an operation of ``hivectl/ops/lifecycle.py``.
"""

from __future__ import annotations

import sys

from hivectl.cli.cmd_guests import _confirm
from hivectl.cli.context import Context
from hivectl.errors import HivectlError
from hivectl.host import process
from hivectl.ops import lifecycle as ops
from hivectl.runtime import GuestState

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse
    from pathlib import Path
    from typing import NoReturn

STOP_TIMEOUT = ops.STOP_TIMEOUT
DRY_RUN_STOP = ("print the plan (JSON arrays: the power buttons, the waits, then the escalation that follows a "
                "wait only for guests still running) and change nothing")


def _print_plan(plan: list[list[str]], warnings: list[str] | None = None) -> None:
    """A dry run's plan, one JSON array per line, then its warnings (or a run's notes) on stderr."""
    import json

    for line in plan:
        sys.stdout.write(json.dumps(line) + "\n")
    for warning in warnings or []:
        sys.stderr.write(f"hivectl: {warning}\n")


def configure_start(p: argparse.ArgumentParser) -> None:
    p.description = """\
Start guests. Each gets a detached supervisor that creates its taps, runs the loader (bhyveload,
grub-bhyve) if any, then the hypervisor, restarts it when the guest reboots (on_restart), applies on_fault
with a crash-loop limit, and cleans up taps, /dev/vmm/NAME and the lock on every exit path. With several
names, vm_delay seconds pass between starts. A guest whose supervisor died while it kept running is
adopted by a new supervisor instead of being started twice.

Before anything is done the host is checked, as vm-bhyve does: vmm loaded, VT-x/EPT or AMD-V/NPT,
unrestricted guest for UEFI/grub loaders and several vCPUs, the I/O MMU for passthru, memory within
hw.physmem (and vm.max_user_wired when wired); on Linux KVM when forced, IOMMU groups, MemTotal. Each
problem is one line naming the sysctl; vm_disable_host_checks="yes" in rc.conf skips them. --dry-run
shows them as warnings.

With 'hivectl set console=tmux' the supervisor runs in a detached tmux session named after the guest
('.' becomes '~'), whose terminal is com1; 'hivectl console NAME' attaches to it.

-f runs the supervisor in this process with com1 (and the boot loader) on this terminal. Ctrl-C, SIGTERM
or closing the terminal then stops the guest like 'stop' (ACPI, forced off after 30 s or a second signal)
and cleans up; the exit status is 0 when the guest ended normally, 1 when it crashed or failed."""
    p.epilog = """examples:
  hivectl start web1
  hivectl start --dry-run web1      print taps, loader and bhyve/qemu commands as JSON arrays
  hivectl start -f web1             foreground: console on this terminal"""
    p.add_argument("-f", dest="foreground", action="store_true", help="run in the foreground, console on stdio")
    p.add_argument("-i", dest="interactive", action="store_true", help="attach to the console after starting")
    p.add_argument("--dry-run", action="store_true", help="print the start plan (JSON arrays) and start nothing")
    p.add_argument("--discard-save", action="store_true",
                   help="a suspended guest: move its save aside (NAME.save.discarded-STAMP/) and boot afresh; "
                        "without it the guest is resumed from the save (hivectl resume)")
    p.add_argument("names", nargs="+", metavar="NAME")


def run_start(ctx: Context, args: argparse.Namespace) -> int:
    return _start(ctx, args.names, None, args.foreground, args.interactive, args.dry_run, args.discard_save)


def _start(ctx: Context, names: list[str], install: Path | None, foreground: bool, interactive: bool,
           dry_run: bool, discard_save: bool = False) -> int:
    def progress(name: str, outcome: ops.StartedGuest | HivectlError) -> None:
        if isinstance(outcome, HivectlError):
            sys.stderr.write(f"hivectl: {outcome}\n")
        else:
            sys.stdout.write(f"{name}: {'adopted' if outcome.adopted else 'started'} (pid {outcome.pid})\n")
            sys.stdout.flush()

    if foreground:
        sys.stdout.flush()
    result = ops.start(ctx, ops.StartRequest(tuple(names), install, foreground, dry_run, discard_save), progress)
    if dry_run:
        _print_plan(result.plan, result.warnings)
        return 0
    if foreground:
        for error in result.errors:
            sys.stderr.write(f"hivectl: {error}\n")
        return result.status
    if interactive and len(names) == 1 and not result.errors:
        return _console(ctx, names[0], None)
    return 1 if result.errors else 0


def configure_install(p: argparse.ArgumentParser) -> None:
    p.description = """\
Start a guest with install media attached (an ISO as a CD, bootindex 1). ISO is an absolute path, a file
in the current directory, or a file name in vm_dir/.iso or an ISO datastore. The media is attached for
the first boot only: when the installer reboots, the guest boots from its disk."""
    p.add_argument("-f", dest="foreground", action="store_true", help="run in the foreground")
    p.add_argument("-i", dest="interactive", action="store_true", help="attach to the console after starting")
    p.add_argument("--dry-run", action="store_true", help="print the start plan and start nothing")
    p.add_argument("name")
    p.add_argument("iso", metavar="ISO")


def run_install(ctx: Context, args: argparse.Namespace) -> int:
    media = ops.find_media(ctx, args.iso)
    return _start(ctx, [args.name], media, args.foreground, args.interactive, args.dry_run)


def configure_stop(p: argparse.ArgumentParser) -> None:
    p.description = """\
Stop guests: press the ACPI power button of each (all at once), wait up to --timeout seconds for them to
power off, then force the power off, then kill what is left. Returns when every guest has stopped. A
guest that is not running is reported (exit status 1); the others are still stopped."""
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="S",
                   help=f"seconds to wait for the guest to shut down (default {STOP_TIMEOUT:g})")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_STOP)
    p.add_argument("names", nargs="+", metavar="NAME")


def run_stop(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.stop(ctx, ops.StopRequest(tuple(args.names), args.timeout, args.dry_run))
    for line in result.not_running:
        sys.stderr.write(f"hivectl: {line}\n")
    _print_plan(result.plan, result.notes)
    return 1 if result.not_running else 0


def configure_restart(p: argparse.ArgumentParser) -> None:
    p.description = """\
Shut a guest down through ACPI and boot it again (its taps are kept; the loader runs again and the
configuration is read again). A guest that does not shut down within --timeout seconds is forced off and
booted again. Returns once the new boot runs."""
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="S",
                   help=f"seconds to wait for the guest to shut down (default {STOP_TIMEOUT:g})")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (flag, power button, wait, forced power-off if still running, then the "
                        "supervisor's next boot) and change nothing")
    p.add_argument("name")


def _report_boot(name: str, state: GuestState | None, what: str) -> int:
    if state is None:
        return 1
    if state.running:
        sys.stdout.write(f"{name}: {what} (pid {state.pid})\n")
        return 0
    sys.stderr.write(f"hivectl: {name}: {state.label().lower()} instead of booting again (see on_restart and "
                     "its vm-bhyve.log)\n")
    return 1


def run_restart(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.restart(ctx, ops.GuestRequest(args.name, args.timeout, args.dry_run))
    if args.dry_run:
        _print_plan(result.plan)
        return 0
    for note in result.notes:
        sys.stderr.write(f"hivectl: {note}\n")
    return _report_boot(args.name, result.state, "restarted")


def _confirmed(force: bool, question: str) -> bool:
    """-f, or a yes on a terminal; without a terminal and without -f it is a usage error (exit 2)."""
    return force or _confirm(question)


def configure_reset(p: argparse.ArgumentParser) -> None:
    p.description = """\
Reset a guest at once, like pressing its reset button (asks unless -f; without a terminal -f is
required). The supervisor boots it again; returns once the new boot runs."""
    p.add_argument("-f", dest="force", action="store_true", help="do not ask")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (the reset, then the supervisor's next boot) and change nothing")
    p.add_argument("name")


def run_reset(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    if args.dry_run:
        _print_plan(ops.reset(ctx, ops.GuestRequest(args.name, dry_run=True)).plan)
        return 0
    control.running_state(ctx.store.get(args.name))
    if not _confirmed(args.force, f"reset {args.name} now (unsaved data in the guest is lost)?"):
        return 1
    return _report_boot(args.name, ops.reset(ctx, ops.GuestRequest(args.name)).state, "reset")


def configure_poweroff(p: argparse.ArgumentParser) -> None:
    p.description = """\
Power a guest off at once, like pulling its plug (asks unless -f; without a terminal -f is required).
Works in the boot loader stage too. Returns once the guest is stopped and cleaned up."""
    p.add_argument("-f", dest="force", action="store_true", help="do not ask")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (forced power-off, wait, kill if still running) and change nothing")
    p.add_argument("name")


def run_poweroff(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    if args.dry_run:
        _print_plan(ops.poweroff(ctx, ops.GuestRequest(args.name, dry_run=True)).plan)
        return 0
    control.running_state(ctx.store.get(args.name))
    if not _confirmed(args.force, f"power {args.name} off now (unsaved data in the guest is lost)?"):
        return 1
    ops.poweroff(ctx, ops.GuestRequest(args.name))
    return 0


def configure_startall(p: argparse.ArgumentParser) -> None:
    p.description = """\
Start every guest in vm_list, in order, waiting vm_delay seconds between starts. Guests already running
are skipped; a guest that fails to start is reported and the rest are still started (exit status 1 if
any failed). Used by the rc.d script at host boot."""
    p.add_argument("--dry-run", action="store_true",
                   help="print every start plan, in order, with the vm_delay sleeps, and start nothing")


def run_startall(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.startall(ctx, ops.StartallRequest(args.dry_run))
    _print_plan(result.plan, result.warnings)
    for item in result.started:
        sys.stdout.write(f"{item.name}: started (pid {item.pid})\n")
    for error in result.errors:
        sys.stderr.write(f"hivectl: {error}\n")
    return 1 if result.errors else 0


def configure_stopall(p: argparse.ArgumentParser) -> None:
    p.description = """\
Stop every running guest in vm-bhyve's order: guests not in vm_list first (their ACPI power buttons
pressed together), then those in vm_list in reverse order, vm_delay seconds between their buttons. Then
wait up to --timeout seconds, force the rest off (and kill what still runs 10 s later). Returns when
every guest has stopped. Used by the rc.d script at host shutdown."""
    p.add_argument("-f", dest="force", action="store_true", help="accepted for vm-bhyve compatibility")
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="S",
                   help=f"seconds guests get to shut down before they are forced off (default {STOP_TIMEOUT:g})")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_STOP)


def run_stopall(ctx: Context, args: argparse.Namespace) -> int:
    result = ops.stopall(ctx, ops.StopallRequest(args.timeout, args.dry_run))
    _print_plan(result.plan, result.notes)
    return 0


def configure_console(p: argparse.ArgumentParser) -> None:
    p.description = """\
Attach to a guest's serial console: on FreeBSD 'cu -l' on the nmdm B side (type ~. to leave), with
console=tmux the guest's tmux session (detach with the tmux prefix key, then d), with the QEMU driver the
console socket (type ~. at the start of a line to leave; without a terminal, standard input is sent to
the guest and its output printed until input ends)."""
    p.add_argument("name")
    p.add_argument("port", nargs="?", help="com1..com4 (default: the first)")


def run_console(ctx: Context, args: argparse.Namespace) -> int:
    return _console(ctx, args.name, args.port)


def _console(ctx: Context, name: str, port: str | None) -> int:
    target = ops.console_target(ctx, name, port)
    from hivectl.journal.events import emit_quietly

    emit_quietly(str(ctx.store.config_dir), "console-opened", f"/guests/{name}", {"port": target.port})
    if target.kind == "socket":
        from pathlib import Path

        from hivectl.runner.console import relay

        return relay(Path(target.target))
    return _exec(ops.console_argv(target))


def _exec(argv: list[str]) -> NoReturn:
    """Replace this process with the console client (it owns the terminal from here on)."""
    process.replace(argv)
