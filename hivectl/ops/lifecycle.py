"""Lifecycle operations: start, install, stop, restart, reset, poweroff, startall, stopall, console.

Each takes a typed request and returns a typed result; the CLI (``hivectl/cli/cmd_lifecycle.py``) only
parses arguments and renders results, and ``hivectl.api`` calls the same functions (issue 9, item 1).
With ``dry_run`` an operation changes nothing and returns its plan: one argv per step, the command an
administrator would type for it. For a start that is the start plan the supervisor executes
(``hivectl/runner/startplan.py``); for a stop it is the power-button press (``kill -TERM PID`` for bhyve,
whose SIGTERM is the ACPI button, bhyve(8)), the wait (``pwait -t SECONDS PID``, pwait(1)) and the
escalation that follows a wait only for the guests still running then (``bhyvectl --force-poweroff``,
then ``kill -KILL``), exactly as ``runner/control.py`` does it.

``stopall`` follows vm-bhyve's order (``vm::stopall`` in vm-bhyve's lib/vm-core): running guests that
are not in ``vm_list`` are signalled first, all together, then those in ``vm_list`` in reverse order with
``vm_delay`` seconds between their signals; every guest then gets the same timeout and escalation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hivectl.context import Context
from hivectl.errors import Conflict, HivectlError, NotFound, UsageError
from hivectl.records import field, record
from hivectl.runtime import GuestState
from hivectl.store import GuestRef

STOP_TIMEOUT = 90.0
FORCE_AFTER = 10.0  # seconds after the forced power-off before what still runs is killed (control.stop)


def check_timeout(value: float, option: str = "--timeout") -> float:
    """Seconds a guest gets to shut down: more than 0, at most a day."""
    if not 0 < value <= 86400:
        raise UsageError(f"{option} {value:g}: expected seconds between 0 and 86400")
    return value


# -- start ------------------------------------------------------------------------------------------------

@record(frozen=True)
class StartRequest:
    """``hivectl start NAME...`` / ``install NAME ISO``: ``install`` is the resolved media path."""

    names: tuple[str, ...]
    install: Path | None = None
    foreground: bool = False
    dry_run: bool = False
    discard_save: bool = False  # move a suspended guest's save aside first (ops/suspend.py) and boot afresh


@record(frozen=True)
class StartedGuest:
    name: str
    pid: int
    adopted: bool = False


@record
class StartResult:
    started: list[StartedGuest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per guest that failed (the others still started)
    plan: list[list[str]] = field(default_factory=list)  # dry run: every step, in order
    warnings: list[str] = field(default_factory=list)  # dry run: preflight findings
    status: int = 0  # foreground: the supervisor's exit status (0: the guest ended normally)


def start_plan_argvs(ctx: Context, name: str, install: Path | None = None,
                     foreground: bool = False, fresh: bool = False) -> tuple[list[list[str]], list[str]]:
    """The start plan of one guest as argvs, and its preflight findings (not fatal in a dry run)."""
    from hivectl.runner.startplan import plan_start

    planned = plan_start(ctx.host, ctx.store, ctx.driver_impl(), ctx.store.get(name), install, foreground, fresh)
    shown = [str(p) if str(p).startswith("warning: ") else f"warning: {p}" for p in planned.problems]
    return planned.argvs(), shown


Progress = Callable[[str, "StartedGuest | HivectlError"], None]


def start(ctx: Context, request: StartRequest, progress: Progress | None = None) -> StartResult:
    """Start guests under their supervisors, ``vm_delay`` seconds apart; a failure does not stop the rest.

    ``progress`` hears about each guest as it is done (the CLI prints it then, not after every delay).
    """
    import time

    from hivectl.runner import control

    result = StartResult()
    names = list(request.names)
    if request.foreground and len(names) != 1:
        raise UsageError("-f takes exactly one guest")
    from hivectl.transfer.replica import refuse_start

    for name in names:  # a replica (hivectl replicate) starts only after 'hivectl promote'
        refuse_start(ctx, name)
    if request.dry_run:
        for index, name in enumerate(names):
            if index:
                result.plan.append(["sleep", f"{ctx.settings.vm_delay:g}"])
            if request.discard_save:
                result.plan += _discard_save(ctx, name, True)
            lines, warnings = start_plan_argvs(ctx, name, request.install, request.foreground,
                                               request.discard_save)
            result.plan += lines
            result.warnings += warnings
        return result
    if request.discard_save:
        for name in names:
            _discard_save(ctx, name, False)
    if request.foreground:
        from hivectl.runner.supervisor import Supervisor

        ref = ctx.store.get(names[0])
        supervisor = Supervisor(ctx.host, ctx.store, ctx.driver_impl(), ref, request.install, foreground=True)
        result.status = supervisor.run()
        if supervisor.failure:
            result.errors.append(f"{ref.name}: {supervisor.failure}")
        return result
    console = control.console_mode(ctx.store)
    for index, name in enumerate(names):
        if index:
            time.sleep(ctx.settings.vm_delay)
        try:
            ref = ctx.store.get(name)
            try:
                started = control.start(ref, ctx.driver, request.install, console=console)
            except HivectlError:
                # A supervisor killed before it answered leaves a stale run (its lock, the taps it made):
                # tear it down now (runner/stale.py) rather than leave it for the next command.
                from hivectl.runner import stale

                stale.clear_if_stale(ctx.host, ctx.driver_impl(), ref)
                raise
            item = StartedGuest(name, started.pid, started.adopted)
            result.started.append(item)
            if progress:
                progress(name, item)
        except HivectlError as error:
            result.errors.append(str(error))
            if progress:
                progress(name, error)
    return result


def _discard_save(ctx: Context, name: str, dry_run: bool) -> list[list[str]]:
    """``--discard-save``: a suspended guest's save moved aside (ops/suspend.py), its plan for a dry run."""
    from hivectl.ops.suspend import discard

    return discard(ctx, name, dry_run)[1]


def find_media(ctx: Context, name: str) -> Path:
    """``install``'s ISO: an absolute path, a file in the current directory, or a file in an ISO store."""
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


# -- stop, stopall ----------------------------------------------------------------------------------------

@record(frozen=True)
class StopRequest:
    """``hivectl stop NAME...``; ``timeout`` seconds for the ACPI shutdown before power-off is forced."""

    names: tuple[str, ...]
    timeout: float = STOP_TIMEOUT
    dry_run: bool = False


@record(frozen=True)
class StopallRequest:
    """``hivectl stopall``: every running guest, in vm-bhyve's order."""

    timeout: float = STOP_TIMEOUT
    dry_run: bool = False


@record
class StopResult:
    stopped: list[str] = field(default_factory=list)  # the guests asked to stop, in the order they were
    not_running: list[str] = field(default_factory=list)  # "NAME is not running (STATE)", one per guest
    notes: list[str] = field(default_factory=list)  # escalations: forced power-off, kill
    plan: list[list[str]] = field(default_factory=list)


def _state(ref: GuestRef) -> GuestState:
    from hivectl.runtime import guest_state

    return guest_state(ref.directory, ref.name)


def plan_stop(ctx: Context, refs: list[GuestRef], timeout: float,
              pause_before: dict[str, float] | None = None) -> list[list[str]]:
    """What ``control.stop`` does to running guests: every power button (staggered by ``pause_before``),
    one wait for all, then, for those still running, forced power-off, a shorter wait and kill."""
    driver = ctx.driver_impl()
    lines: list[list[str]] = []
    states = {ref.name: _state(ref) for ref in refs}
    pids = [str(states[ref.name].pid) for ref in refs if states[ref.name].pid]
    for ref in refs:
        state = states[ref.name]
        pause = (pause_before or {}).get(ref.name, 0.0)
        if pause > 0 and lines:
            lines.append(["sleep", f"{pause:g}"])
        lines.append(["touch", str(ref.layout.stopping)])
        if state.pid and state.state == "Bootloader":
            lines.append(["kill", "-TERM", str(state.pid)])  # a loader has no power button
        elif state.pid:
            lines.append(driver.control_argv(ref, "shutdown", state.pid))
    if not refs:
        return lines
    lines.append(["pwait", "-t", f"{timeout:g}", *pids])
    for ref in refs:
        state = states[ref.name]
        if state.state == "Bootloader":
            lines.append(["kill", "-KILL", str(state.pid)])
        else:
            lines.append(driver.control_argv(ref, "poweroff", state.pid))
    lines.append(["pwait", "-t", f"{FORCE_AFTER:g}", *pids])
    for ref in refs:
        state = states[ref.name]
        lines.append(["kill", "-KILL", *[str(p) for p in (state.pid, state.supervisor) if p]])
    return lines


def check_running(ctx: Context, name: str) -> GuestState:
    """The state of a running guest; ``Conflict`` naming its state when it is not running."""
    from hivectl.runner import control

    return control.running_state(ctx.store.get(name))


def stop(ctx: Context, request: StopRequest) -> StopResult:
    """ACPI shutdown of every named guest at once, ``timeout``, forced power-off, kill.

    A guest that is not running is reported in ``not_running`` and the others are still stopped the whole
    way (vm-bhyve warns about it and goes on with the rest too).
    """
    from hivectl.runner import control

    timeout = check_timeout(request.timeout)
    result = StopResult()
    running = []
    for ref in [ctx.store.get(n) for n in request.names]:
        state = _state(ref)
        if state.running or (state.stale and not request.dry_run):
            running.append(ref)  # a stale run is cleared by control.stop (its taps and VM), and said so
        else:
            result.not_running.append(f"{ref.name} is not running ({state.label()})")
    result.stopped = [ref.name for ref in running]
    if request.dry_run:
        result.plan = plan_stop(ctx, running, timeout)
    elif running:
        result.notes = control.stop(ctx.host, ctx.driver_impl(), running, timeout, only_running=True)
    return result


def stopall_order(ctx: Context) -> tuple[list[GuestRef], dict[str, float]]:
    """The running guests in ``stopall``'s order and the pause before each one's signal.

    vm-bhyve: guests not in ``vm_list`` first (together), then ``vm_list``'s in reverse, ``vm_delay``
    apart; a ``vm_list`` name that is not a guest, or not running, is skipped.
    """
    from hivectl.runner import control

    running = control.running_guests(ctx.store)
    by_name = {ref.name: ref for ref in running}
    listed = [n for n in dict.fromkeys(ctx.settings.vm_list) if n in by_name]
    others = [ref for ref in running if ref.name not in listed]
    ordered = others + [by_name[n] for n in reversed(listed)]
    delay = float(ctx.settings.vm_delay)
    pauses = {name: delay for name in list(reversed(listed))[1:]} if delay > 0 else {}
    return ordered, pauses


def stopall(ctx: Context, request: StopallRequest) -> StopResult:
    """Stop every running guest (vm-bhyve's order, see ``stopall_order``), with ``stop``'s escalation."""
    from hivectl.runner import control

    timeout = check_timeout(request.timeout)
    refs, pauses = stopall_order(ctx)
    result = StopResult(stopped=[ref.name for ref in refs])
    if request.dry_run:
        result.plan = plan_stop(ctx, refs, timeout, pauses)
    elif refs:
        result.notes = control.stop(ctx.host, ctx.driver_impl(), refs, timeout, only_running=True,
                                    pause_before=pauses)
    return result


# -- restart, reset, poweroff -----------------------------------------------------------------------------

@record(frozen=True)
class GuestRequest:
    """``restart``/``reset``/``poweroff NAME``; ``timeout`` is restart's ACPI shutdown time."""

    name: str
    timeout: float = STOP_TIMEOUT
    dry_run: bool = False


@record
class BootResult:
    name: str
    state: GuestState | None = None  # after the operation (None for a dry run)
    notes: list[str] = field(default_factory=list)
    plan: list[list[str]] = field(default_factory=list)

    @property
    def booted(self) -> bool:
        return self.state is not None and self.state.running


def _next_boot(ctx: Context, ref: GuestRef) -> list[list[str]]:
    """The supervisor's next boot of a running guest (seed, prestart, prepare, loader, hypervisor), planned
    from the config as it is now, with the ports the run already has."""
    from hivectl.runner.startplan import plan_boot
    from hivectl.runner.supervisor import recorded_ports

    config = ref.config()
    config.check()
    return plan_boot(ctx.driver_impl(), ref, config, recorded_ports(ref.directory), None,
                     False, False).argvs()


def restart(ctx: Context, request: GuestRequest) -> BootResult:
    """vm-bhyve's restart (the one-shot ``restart`` flag, then the power button), forced off after
    ``timeout``; returns once the next boot runs (``control.restart``)."""
    from hivectl.runner import control

    timeout = check_timeout(request.timeout)
    ref = ctx.store.get(request.name)
    if request.dry_run:
        state = control.running_state(ref)
        control.check_can_reboot(ref, state, "shut down through ACPI")
        driver = ctx.driver_impl()
        plan = [["touch", str(ref.layout.restart_flag)], driver.control_argv(ref, "shutdown", state.pid),
                ["pwait", "-t", f"{timeout:g}", str(state.pid)], driver.control_argv(ref, "poweroff", state.pid)]
        return BootResult(ref.name, plan=plan + _next_boot(ctx, ref))
    state, notes = control.restart(ctx.driver_impl(), ref, timeout)
    return BootResult(ref.name, state, notes)


def reset(ctx: Context, request: GuestRequest) -> BootResult:
    """The reset button; returns once the next boot runs (or the guest stopped, with on_restart=stop)."""
    from hivectl.runner import control

    ref = ctx.store.get(request.name)
    state = control.running_state(ref)
    driver = ctx.driver_impl()
    if request.dry_run:
        in_place = driver.reboots_in_place(ref.config())
        control.check_can_reboot(ref, state, "be reset", in_place)
        plan = [driver.control_argv(ref, "reset", state.pid)]
        return BootResult(ref.name, plan=plan if in_place else plan + _next_boot(ctx, ref))
    return BootResult(ref.name, control.reset(driver, ref))


def poweroff(ctx: Context, request: GuestRequest) -> BootResult:
    """Pull the plug (the boot loader stage too); what still runs 10 s later is killed and cleaned up."""
    from hivectl.runner import control

    ref = ctx.store.get(request.name)
    state = control.running_state(ref)
    driver = ctx.driver_impl()
    if request.dry_run:
        off = ["kill", "-KILL", str(state.pid)] if state.state == "Bootloader" else \
            driver.control_argv(ref, "poweroff", state.pid)
        plan = [["touch", str(ref.layout.stopping)], off, ["pwait", "-t", f"{FORCE_AFTER:g}", str(state.pid)],
                ["kill", "-KILL", *[str(p) for p in (state.pid, state.supervisor) if p]]]
        return BootResult(ref.name, plan=plan)
    if not control.poweroff(driver, ref):
        control.kill(ctx.host, driver, ref)
    return BootResult(ref.name, _state(ref))


# -- startall ---------------------------------------------------------------------------------------------

@record(frozen=True)
class StartallRequest:
    dry_run: bool = False


def startall(ctx: Context, request: StartallRequest) -> StartResult:
    """``vm_list`` in order, ``vm_delay`` apart; running guests are skipped (and so is their delay)."""
    from hivectl.runner import control

    result = StartResult()
    if request.dry_run:
        first = True
        for name in ctx.settings.vm_list:
            try:
                if _state(ctx.store.get(name)).running:
                    continue
                if not first and ctx.settings.vm_delay:
                    result.plan.append(["sleep", f"{ctx.settings.vm_delay:g}"])
                first = False
                lines, warnings = start_plan_argvs(ctx, name)
            except HivectlError as error:
                result.errors.append(str(error))
                continue
            result.plan += lines
            result.warnings += warnings
        return result
    started, errors = control.startall(ctx.store, ctx.driver, ctx.settings.vm_delay, control.console_mode(ctx.store))
    result.started = [StartedGuest(s.name, s.pid, s.adopted) for s in started]
    result.errors = errors
    if errors:
        # As ``start``: a supervisor killed before it answered leaves a stale run; tear it down now.
        from hivectl.runner import stale

        done = {s.name for s in started}
        for ref in [r for r in ctx.store.iter_guests() if r.name in ctx.settings.vm_list and r.name not in done]:
            stale.clear_if_stale(ctx.host, ctx.driver_impl(), ref)
    return result


# -- console ----------------------------------------------------------------------------------------------

@record(frozen=True)
class ConsoleTarget:
    """Where a running guest's serial console is, and how to reach it.

    ``kind`` is ``nmdm`` (``target`` is the user side, ``cu -l`` it), ``socket`` (a UNIX socket the
    QEMU driver relays), ``tmux`` (``target`` is the session) or ``stdio`` (the terminal of ``start -f``).
    """

    name: str
    port: str
    kind: str
    target: str


def console_target(ctx: Context, name: str, port: str | None = None) -> ConsoleTarget:
    """The console of ``port`` (``com1``..``com4``; default the first) of a running guest."""
    from hivectl.runner import control, tmux
    from hivectl.runtime import console_lines

    if port is not None and port not in ("com1", "com2", "com3", "com4"):
        raise UsageError(f"unknown console port {port!r}: expected com1, com2, com3 or com4")
    ref = ctx.store.get(name)
    control.running_state(ref)
    coms = {k: v for k, v in console_lines(ref.directory).items() if k.startswith("com")}
    if not coms:
        raise HivectlError(f"{name} has no serial console")
    chosen = port or next(iter(coms))
    target = coms.get(chosen)
    if target is None:
        raise UsageError(f"{name} has no {chosen}; it has {', '.join(coms)}")
    if target.startswith("unix:"):
        return ConsoleTarget(name, chosen, "socket", target[5:])
    if target == "stdio":
        return ConsoleTarget(name, chosen, "stdio", target)
    if target.startswith(tmux.PREFIX):
        return ConsoleTarget(name, chosen, "tmux", target[len(tmux.PREFIX):])
    return ConsoleTarget(name, chosen, "nmdm", target)


def vnc_target(ctx: Context, name: str) -> ConsoleTarget:
    """The graphical console of a running guest: the ``vnc=`` line of its ``console`` file, as the driver
    wrote it (bhyve's fbuf ``tcp=IP:PORT``, QEMU's ``-vnc``: ``host:port`` or ``unix:PATH``). ``kind`` is
    ``tcp`` (``target`` is ``HOST:PORT``, a wildcard listen address read as the loopback one) or ``socket``."""
    from hivectl.runner import control
    from hivectl.runtime import console_lines

    ref = ctx.store.get(name)
    control.running_state(ref)
    line = console_lines(ref.directory).get("vnc", "")
    if not line:
        raise HivectlError(f"{name} has no graphical console (set graphics=yes)")
    if line.startswith("unix:"):
        return ConsoleTarget(name, "vnc", "socket", line[5:])
    host, sep, port = line.rpartition(":")
    if not sep or not port.isdigit():
        raise HivectlError(f"{ref.directory / 'console'}: vnc={line!r} is not HOST:PORT or unix:PATH")
    host = host.strip("[]")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 - read, not bound
    return ConsoleTarget(name, "vnc", "tcp", f"{host}:{port}")


def console_argv(target: ConsoleTarget) -> list[str]:
    """The client that attaches to ``target`` (``cu -l`` on the nmdm side, ``tmux attach``); the QEMU socket
    is relayed in-process instead and the terminal of ``start -f`` cannot be attached to."""
    from hivectl.runner import tmux

    if target.kind == "stdio":
        raise HivectlError(f"{target.name}'s {target.port} is the terminal it was started on (start -f)")
    if target.kind == "tmux":
        tmux.require_tmux()
        if not tmux.has_session(target.target):
            raise HivectlError(f"{target.name}: its tmux session {target.target} is gone")
        return tmux.attach_argv(target.target)
    if target.kind == "nmdm":
        return ["cu", "-l", target.target]
    raise Conflict(f"{target.name}'s {target.port} is a socket: relay it (hivectl console)")
