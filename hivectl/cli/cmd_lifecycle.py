"""Lifecycle commands: start, install, stop, restart, reset, poweroff, console, startall, stopall."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hivectl.cli.cmd_guests import _confirm
from hivectl.cli.context import Context
from hivectl.errors import HivectlError, NotFound, UsageError
from hivectl.host import process

if TYPE_CHECKING:
    from hivectl.runtime import GuestState

STOP_TIMEOUT = 90.0
COM_PORT = re.compile(r"com[1-4]")


def _driver(ctx: Context):  # type: ignore[no-untyped-def]
    from hivectl.drivers import get_driver

    return get_driver(ctx.driver, ctx.host, ctx.store)


def _print_start_plan(ctx: Context, name: str, install: Path | None) -> None:
    """``start --dry-run``: ports, prepare actions, loader and hypervisor, one JSON array per line."""
    from hivectl.drivers.base import BootRequest
    from hivectl.net.ports import plan_ports

    ref = ctx.store.get(name)
    config = ref.config()
    config.check()
    driver = _driver(ctx)
    ports = plan_ports(ctx.host, ctx.store, ref, config, ctx.host.platform)
    plan = driver.plan_boot(BootRequest(ref, config, ports, install, True, False))
    lines = [a.argv() for p in ports for a in p.setup] + [a.argv() for a in plan.prepare]
    if plan.loader:
        lines.append(plan.loader)
    lines.append(plan.hypervisor)
    for line in lines:
        sys.stdout.write(json.dumps(line) + "\n")
    for problem in driver.preflight(ref, config):
        # Problems are shown, not fatal, in a dry run; warnings already say so themselves.
        text = str(problem) if str(problem).startswith("warning: ") else f"warning: {problem}"
        sys.stderr.write(f"hivectl: {text}\n")


def configure_start(p: argparse.ArgumentParser) -> None:
    p.description = """\
Start guests. Each gets a detached supervisor that creates its taps, runs the loader (bhyveload,
grub-bhyve) if any, then the hypervisor, restarts it when the guest reboots (on_restart), applies on_fault
with a crash-loop limit, and cleans up taps, /dev/vmm/NAME and the lock on every exit path. With several
names, vm_delay seconds pass between starts. A guest whose supervisor died while it kept running is
adopted by a new supervisor instead of being started twice.

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
    p.add_argument("names", nargs="+", metavar="NAME")


def run_start(ctx: Context, args: argparse.Namespace) -> int:
    return _start(ctx, args.names, None, args.foreground, args.interactive, args.dry_run)


def _start(ctx: Context, names: list[str], install: Path | None, foreground: bool, interactive: bool,
           dry_run: bool) -> int:
    from hivectl.runner import control

    if dry_run:
        for name in names:
            _print_start_plan(ctx, name, install)
        return 0
    if foreground:
        if len(names) != 1:
            raise UsageError("-f takes exactly one guest")
        from hivectl.runner.supervisor import Supervisor

        ref = ctx.store.get(names[0])
        sys.stdout.flush()
        supervisor = Supervisor(ctx.host, ctx.store, _driver(ctx), ref, install, foreground=True)
        status = supervisor.run()
        if supervisor.failure:
            sys.stderr.write(f"hivectl: {ref.name}: {supervisor.failure}\n")
        return status
    console = control.console_mode(ctx.store)
    failures = 0
    for index, name in enumerate(names):
        try:
            ref = ctx.store.get(name)
            started = control.start(ref, ctx.driver, install, console=console)
            what = "adopted" if started.adopted else "started"
            sys.stdout.write(f"{name}: {what} (pid {started.pid})\n")
        except HivectlError as error:
            sys.stderr.write(f"hivectl: {error}\n")
            failures += 1
        if len(names) > 1 and index < len(names) - 1:
            import time

            time.sleep(ctx.settings.vm_delay)
    if interactive and len(names) == 1 and not failures:
        return _console(ctx, names[0], None)
    return 1 if failures else 0


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


def find_media(ctx: Context, name: str) -> Path:
    candidate = Path(name)
    if candidate.is_absolute():
        if candidate.is_file():
            return candidate
        raise NotFound(f"install media {name} does not exist")
    if "/" not in name and (Path.cwd() / name).is_file():
        return Path.cwd() / name
    if "/" in name or name in ("", ".", ".."):
        raise NotFound(f"install media {name} not found")
    for store in ctx.store.media_stores("iso"):
        if (store.path / name).is_file():
            return store.path / name
    raise NotFound(f"install media {name} not found in the current directory or any ISO store")


def run_install(ctx: Context, args: argparse.Namespace) -> int:
    media = find_media(ctx, args.iso)
    return _start(ctx, [args.name], media, args.foreground, args.interactive, args.dry_run)


def configure_stop(p: argparse.ArgumentParser) -> None:
    p.description = """\
Stop guests: press the ACPI power button of each (all at once), wait up to --timeout seconds for them to
power off, then force the power off, then kill what is left. Returns when every guest has stopped. A
guest that is not running is reported (exit status 1); the others are still stopped."""
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="S",
                   help=f"seconds to wait for the guest to shut down (default {STOP_TIMEOUT:g})")
    p.add_argument("names", nargs="+", metavar="NAME")


def _check_timeout(value: float) -> float:
    if not 0 < value <= 86400:
        raise UsageError(f"--timeout {value:g}: expected seconds between 0 and 86400")
    return value


def run_stop(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control
    from hivectl.runtime import guest_state

    timeout = _check_timeout(args.timeout)
    refs = [ctx.store.get(n) for n in args.names]
    # A guest that is not running is reported (exit 1) but does not keep the others from being stopped
    # the whole way, escalation included: vm-bhyve warns about it and goes on with the rest too.
    running = []
    for ref in refs:
        state = guest_state(ref.directory, ref.name)
        if state.running:
            running.append(ref)
        else:
            sys.stderr.write(f"hivectl: {ref.name} is not running ({state.label()})\n")
    notes = control.stop(ctx.host, _driver(ctx), running, timeout, only_running=True) if running else []
    for note in notes:
        sys.stderr.write(f"hivectl: {note}\n")
    return 0 if len(running) == len(refs) else 1


def configure_restart(p: argparse.ArgumentParser) -> None:
    p.description = """\
Shut a guest down through ACPI and boot it again (its taps are kept; the loader runs again and the
configuration is read again). A guest that does not shut down within --timeout seconds is forced off and
booted again. Returns once the new boot runs."""
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="S",
                   help=f"seconds to wait for the guest to shut down (default {STOP_TIMEOUT:g})")
    p.add_argument("name")


def _report_boot(name: str, state: GuestState, what: str) -> int:
    if state.running:
        sys.stdout.write(f"{name}: {what} (pid {state.pid})\n")
        return 0
    sys.stderr.write(f"hivectl: {name}: {state.label().lower()} instead of booting again (see on_restart and "
                     "its vm-bhyve.log)\n")
    return 1


def run_restart(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    state, notes = control.restart(_driver(ctx), ctx.store.get(args.name), _check_timeout(args.timeout))
    for note in notes:
        sys.stderr.write(f"hivectl: {note}\n")
    return _report_boot(args.name, state, "restarted")


def _confirmed(force: bool, question: str) -> bool:
    """-f, or a yes on a terminal; without a terminal and without -f it is a usage error (exit 2)."""
    return force or _confirm(question)


def configure_reset(p: argparse.ArgumentParser) -> None:
    p.description = """\
Reset a guest at once, like pressing its reset button (asks unless -f; without a terminal -f is
required). The supervisor boots it again; returns once the new boot runs."""
    p.add_argument("-f", dest="force", action="store_true", help="do not ask")
    p.add_argument("name")


def run_reset(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    ref = ctx.store.get(args.name)
    control.running_state(ref)
    if not _confirmed(args.force, f"reset {ref.name} now (unsaved data in the guest is lost)?"):
        return 1
    return _report_boot(ref.name, control.reset(_driver(ctx), ref), "reset")


def configure_poweroff(p: argparse.ArgumentParser) -> None:
    p.description = """\
Power a guest off at once, like pulling its plug (asks unless -f; without a terminal -f is required).
Works in the boot loader stage too. Returns once the guest is stopped and cleaned up."""
    p.add_argument("-f", dest="force", action="store_true", help="do not ask")
    p.add_argument("name")


def run_poweroff(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    ref = ctx.store.get(args.name)
    control.running_state(ref)
    if not _confirmed(args.force, f"power {ref.name} off now (unsaved data in the guest is lost)?"):
        return 1
    driver = _driver(ctx)
    if not control.poweroff(driver, ref):
        control.kill(ctx.host, driver, ref)
    return 0


def configure_startall(p: argparse.ArgumentParser) -> None:
    p.description = """\
Start every guest in vm_list, in order, waiting vm_delay seconds between starts. Guests already running
are skipped; a guest that fails to start is reported and the rest are still started (exit status 1 if
any failed). Used by the rc.d script at host boot."""


def run_startall(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    started, errors = control.startall(ctx.store, ctx.driver, ctx.settings.vm_delay, control.console_mode(ctx.store))
    for item in started:
        sys.stdout.write(f"{item.name}: started (pid {item.pid})\n")
    for error in errors:
        sys.stderr.write(f"hivectl: {error}\n")
    return 1 if errors else 0


def configure_stopall(p: argparse.ArgumentParser) -> None:
    p.description = """\
Stop every running guest at once (ACPI), wait up to --timeout seconds, then force the rest off (and kill
what still runs 10 s later). Returns when every guest has stopped. Used by the rc.d script at host
shutdown."""
    p.add_argument("-f", dest="force", action="store_true", help="accepted for vm-bhyve compatibility")
    p.add_argument("--timeout", type=float, default=STOP_TIMEOUT, metavar="S",
                   help=f"seconds guests get to shut down before they are forced off (default {STOP_TIMEOUT:g})")


def run_stopall(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.runner import control

    timeout = _check_timeout(args.timeout)
    refs = control.running_guests(ctx.store)
    for note in control.stop(ctx.host, _driver(ctx), refs, timeout, only_running=True) if refs else []:
        sys.stderr.write(f"hivectl: {note}\n")
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
    from hivectl.runner import control, tmux
    from hivectl.runtime import console_lines

    if port is not None and not COM_PORT.fullmatch(port):
        raise UsageError(f"unknown console port {port!r}: expected com1, com2, com3 or com4")
    ref = ctx.store.get(name)
    control.running_state(ref)
    lines = console_lines(ref.directory)
    coms = {k: v for k, v in lines.items() if k.startswith("com")}
    if not coms:
        raise HivectlError(f"{name} has no serial console")
    target = coms.get(port) if port else next(iter(coms.values()))
    if target is None:
        raise UsageError(f"{name} has no {port}; it has {', '.join(coms)}")
    if target.startswith("unix:"):
        from hivectl.runner.console import relay

        return relay(Path(target[5:]))
    if target == "stdio":
        raise HivectlError(f"{name}'s {port or 'console'} is the terminal it was started on (start -f)")
    if target.startswith(tmux.PREFIX):
        session = target[len(tmux.PREFIX):]
        tmux.require_tmux()
        if not tmux.has_session(session):
            raise HivectlError(f"{name}: its tmux session {session} is gone")
        return _exec(tmux.attach_argv(session))
    return _exec(["cu", "-l", target])


def _exec(argv: list[str]) -> NoReturn:
    """Replace this process with the console client (it owns the terminal from here on)."""
    process.replace(argv)
