"""Client-side control of running guests: start, stop (with timeout and escalation), restart, reset,
poweroff, and the host-wide startall/stopall.

These run in the ``hivectl`` process and talk to a guest through its files (lock, state) and its driver
(ACPI request, forced power-off). They never assume the supervisor is alive: if it died, they clean up
after the guest themselves. Every command returns only once the guest has reached the state it asked for
(running again, stopped), within a bounded time, so scripts can rely on the exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from hivectl.errors import Conflict, HivectlError
from hivectl.host import process
from hivectl.host.identity import pid_alive
from hivectl.records import record
from hivectl.runner import ready
from hivectl.runtime import GuestState, guest_state, read_state
from hivectl.safety import paths

# ``hivectl start`` goes through here before the supervisor runs: what only stop, tmux consoles or stale
# runs need (the supervisor module and its plan machinery, tmux, stale-run teardown) is imported where
# used, so the command line pays for none of it on its way to the supervisor (benchmarks/README.md).
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Mapping

    from hivectl.drivers.base import Driver
    from hivectl.host.base import Host
    from hivectl.store import GuestRef, Store

START_TIMEOUT = 60.0
CLEANUP_TIMEOUT = 60.0  # stop: how long a live supervisor may take to clean up after its hypervisor exited
REBOOT_TIMEOUT = 60.0  # restart/reset: how long the next boot may take to reach its hypervisor


@record
class Started:
    name: str
    pid: int
    adopted: bool = False


def console_mode(store: Store) -> str:
    """``console`` from system.conf: ``tmux``, or ``nmdm`` for anything else (as vm-bhyve reads it)."""
    return "tmux" if store.system().get("console") == "tmux" else "nmdm"


def supervisor_argv(name: str, driver: str, install: Path | None = None, adopt: int | None = None,
                    foreground: bool = False) -> list[str]:
    # -S: no site module. The supervisor needs nothing from site-packages (hivectl has no runtime
    # dependencies); site's .pth processing costs start time and memory in every supervisor, and
    # ``supervisor_environment`` puts this very hivectl tree on its path instead.
    argv = [sys.executable, "-S", "-m", "hivectl.runner.supervisor"] + (["--foreground"] if foreground else [])
    argv += ["--driver", driver]
    if install is not None:
        argv += ["--install", str(install)]
    if adopt is not None:
        argv += ["--adopt", str(adopt)]
    return [*argv, name]


def supervisor_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the directory holding this ``hivectl`` package first on PYTHONPATH, so the supervisor
    (started with ``-S``) runs the same tree as the command that started it."""
    root = str(Path(__file__).resolve().parent.parent.parent)
    rest = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part and part != root]
    return {**env, "PYTHONPATH": os.pathsep.join([root, *rest])}


def start(ref: GuestRef, driver: str, install: Path | None = None, timeout: float = START_TIMEOUT,
          console: str = "nmdm") -> Started:
    """Launch a supervisor and wait until the hypervisor is up (or the start failed).

    With console=nmdm the supervisor is a detached child; with console=tmux it runs in the foreground of a
    new detached tmux session named after the guest, so com1 is that session's terminal. A guest whose
    supervisor died while its hypervisor still runs is adopted (by a detached supervisor: a running bhyve
    cannot be given a new terminal) instead of being started twice.
    """
    state = guest_state(ref.directory, ref.name)
    adopt = None
    if state.running and state.supervisor is None and state.pid:
        adopt = state.pid
    elif state.running:
        raise Conflict(f"{ref.name} is already {state.label()}")
    elif state.state == "Locked" and not state.stale:
        raise Conflict(f"{ref.name} is {state.label()}: another host runs it")
    if console == "tmux" and adopt is None:
        message = _launch_in_tmux(ref, driver, install, timeout)
    else:
        message = _launch_detached(ref, driver, install, adopt, timeout)
    if message.startswith("ok"):
        parts = message.split()
        return Started(ref.name, int(parts[1]) if len(parts) > 1 else 0, adopt is not None)
    if message.startswith("running "):
        # Another ``start`` adopted it first: it runs, under that start's supervisor.
        raise Conflict(f"{ref.name} is already Running ({message.split()[1]})")
    if message.startswith("error: "):
        raise HivectlError(f"{ref.name}: {message[7:]}")
    if message == "":
        raise HivectlError(f"{ref.name}: its supervisor gave no answer (exited, or silent for {timeout:.0f} s); "
                           f"see {ref.layout.vm_log}")
    raise HivectlError(f"{ref.name}: unexpected answer from its supervisor: {message!r}")


def _launch_detached(ref: GuestRef, driver: str, install: Path | None, adopt: int | None, timeout: float) -> str:
    """A supervisor in its own session; it answers through an inherited pipe.

    A fresh start forks the supervisor from this process (``process.fork_detached``): one interpreter
    and one set of imports instead of two, which is most of what ``start`` cost before its hypervisor
    ran (benchmarks/README.md, "start"). The child supervises as the module's own ``main`` would, and
    execs into the lean waiter and back (``python3 -S -m hivectl.runner.supervisor``) like any
    supervisor. Adopting a running guest still spawns that command line (it is rare and has no waiter),
    and so does a caller with threads (the daemon, an API user), which must not fork.
    """
    read_end, write_end = os.pipe()
    env = supervisor_environment({**os.environ, ready.FD_ENV: str(write_end)})
    try:
        if adopt is None and process.single_threaded():
            process.fork_detached(lambda: _supervise_forked(ref.name, driver, install), env=env,
                                  keep_fds=(write_end,))
        else:
            process.spawn_detached(supervisor_argv(ref.name, driver, install, adopt), env=env,
                                   pass_fds=(write_end,))
    finally:
        os.close(write_end)
    try:
        return ready.await_answer(read_end, timeout)
    finally:
        os.close(read_end)


def _supervise_forked(name: str, driver: str, install: Path | None) -> int:
    """The forked child of a fresh start: supervise ``name`` here (``supervisor.serve``)."""
    from hivectl.runner import supervisor

    return supervisor.serve(name, driver, install)


def _launch_in_tmux(ref: GuestRef, driver: str, install: Path | None, timeout: float) -> str:
    """A foreground supervisor in a tmux session; it answers through a FIFO (see ``ready``)."""
    session = ref.layout.tmux_session
    import tempfile

    from hivectl.runner import supervisor, tmux

    tmux.require_tmux()
    with tempfile.TemporaryDirectory(prefix="hivectl-start.") as scratch:
        fifo = Path(scratch) / "ready"
        os.mkfifo(fifo, 0o600)
        read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            env = supervisor_environment({**tmux.forwarded_environment(), ready.FIFO_ENV: str(fifo),
                                          supervisor.CONSOLE_ENV: "tmux"})
            tmux.new_session(session, supervisor_argv(ref.name, driver, install, foreground=True), env)
            return ready.await_answer(read_end, timeout, alive=lambda: tmux.has_session(session))
        finally:
            os.close(read_end)


def running_state(ref: GuestRef) -> GuestState:
    state = guest_state(ref.directory, ref.name)
    if not state.running:
        raise Conflict(f"{ref.name} is not running ({state.label()})")
    return state


def wait_stopped(refs: list[GuestRef], timeout: float) -> list[GuestRef]:
    """Wait until the guests are stopped; return those still running when the time is up."""
    deadline = time.monotonic() + timeout
    pending = list(refs)
    while pending:
        pending = [r for r in pending if guest_state(r.directory, r.name).running]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return pending


def mark_stopping(ref: GuestRef) -> None:
    paths.write_file(ref.directory, ref.layout.stopping, f"{os.getpid()}\n")


def request_stop(driver: Driver, ref: GuestRef) -> None:
    """The ACPI power button; a guest still in its boot loader has none, so the loader is ended instead.

    The request is marked before the state is read: a supervisor between two boots (a guest reboot) checks
    the mark after it records its new hypervisor, so either this reads that hypervisor's pid or the
    supervisor sees the mark (``Supervisor.stop_raced``); reading first let a stop fall between the two
    and wait out its whole timeout."""
    running_state(ref)
    mark_stopping(ref)
    state = guest_state(ref.directory, ref.name)
    if state.pid and state.state == "Bootloader":
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
    elif state.pid:
        driver.request_shutdown(ref, state.pid)


def stop(host: Host, driver: Driver, refs: list[GuestRef], timeout: float, force_after: float = 10.0,
         only_running: bool = False, pause_before: Mapping[str, float] | None = None) -> list[str]:
    """ACPI shutdown for all guests at once, wait up to ``timeout``, then force power-off, then kill.

    A guest that is not running is a ``Conflict``, raised before any guest is touched (so an error never
    leaves the others half-stopped); with ``only_running`` such guests are skipped instead (``stopall``,
    and callers that already reported them). Returns messages describing escalations (empty when every
    guest shut down cleanly). ``pause_before`` (guest name → seconds) staggers the power-button presses
    in ``refs``' order, as ``stopall`` does with ``vm_delay`` (vm-bhyve's ``vm::stopall``).
    """
    notes: list[str] = []
    asked: list[GuestRef] = []
    orphans: list[GuestRef] = []
    cleared = [ref for ref in refs if _clear_stale_run(host, driver, ref)]
    notes += [f"{ref.name}: cleared the stale run of a supervisor that died (its taps and VM)" for ref in cleared]
    refs = [ref for ref in refs if ref not in cleared]
    if not only_running:
        for ref in refs:
            running_state(ref)
    for ref in refs:
        pause = (pause_before or {}).get(ref.name, 0.0)
        if pause > 0 and asked:
            time.sleep(pause)
        try:
            if running_state(ref).supervisor is None:
                orphans.append(ref)
            request_stop(driver, ref)
        except Conflict:
            continue  # it stopped meanwhile: nothing to do, and no reason to leave the others half-stopped
        asked.append(ref)
    pending = wait_stopped(asked, timeout)
    # A guest whose hypervisor has exited did power off: its supervisor is only cleaning up (after
    # exec'ing back from its lean waiter, which takes an interpreter start, longer on a loaded host).
    cleaning = [ref for ref in pending if cleaning_up(ref)]
    pending = [ref for ref in pending if ref not in cleaning]
    for ref in pending:
        notes.append(f"{ref.name}: did not power off within {timeout:g} s; forcing power-off")
        force_off(driver, ref)
    pending = wait_stopped(pending, force_after) + wait_stopped(cleaning, CLEANUP_TIMEOUT)
    for ref in pending:
        notes.append(f"{ref.name}: still running after forced power-off; killing it")
        kill(host, driver, ref)
    for ref in orphans:
        reap_orphan(host, driver, ref)
    for ref in asked:
        # A supervisor killed during its own tear-down leaves a stale run (lock, taps, VM): finish it.
        if ref not in orphans and _clear_stale_run(host, driver, ref):
            notes.append(f"{ref.name}: its supervisor died while cleaning up; finished its clean-up (taps, VM)")
    return notes


def cleaning_up(ref: GuestRef) -> bool:
    """The guest's hypervisor (and loader) has exited and its live supervisor has not finished cleaning
    up: the lock still names a live supervisor, the state file no live process."""
    state = guest_state(ref.directory, ref.name)
    return state.running and state.supervisor is not None and state.pid is None \
        and read_state(ref.directory).get("state") != "spawning"


def _clear_stale_run(host: Host, driver: Driver, ref: GuestRef) -> bool:
    """``stop`` of a guest whose run went stale (supervisor and hypervisor gone): tear down what that run
    recorded, so it ends Stopped with nothing orphaned instead of an error that leaves its taps behind."""
    state = guest_state(ref.directory, ref.name)
    from hivectl.runner import stale

    return state.stale and stale.clear_if_stale(host, driver, ref)


def reap_orphan(host: Host, driver: Driver, ref: GuestRef) -> None:
    """Clean up after a guest that stopped while no supervisor watched it (its supervisor was killed).

    Its supervisor would have removed the taps, ``/dev/vmm/NAME``, the state files and the lock; without
    this they stay behind (the guest lists Stopped with a stale run to clear). Only a stale lock is cleaned,
    under the lock guard (``stale.clear_if_stale``), so a run that started meanwhile is left alone.
    """
    from hivectl.runner import stale

    stale.clear_if_stale(host, driver, ref)


def force_off(driver: Driver, ref: GuestRef) -> None:
    """Pull the plug: the driver's forced power-off, or SIGKILL for a boot loader (it has no VM to stop)."""
    state = guest_state(ref.directory, ref.name)
    if state.state == "Bootloader" and state.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGKILL)
        return
    with contextlib.suppress(HivectlError):
        driver.force_poweroff(ref, state.pid)


def kill(host: Host, driver: Driver, ref: GuestRef) -> None:
    """Last resort: SIGKILL the hypervisor and supervisor, then clean up as the supervisor would."""
    state = guest_state(ref.directory, ref.name)
    for pid in (state.pid, state.supervisor):
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    from hivectl.runner import stale

    stale.clear_if_stale(host, driver, ref)


def _booted(ref: GuestRef, old_pid: int | None) -> GuestState:
    """Current state when the guest has a hypervisor other than ``old_pid``, or has stopped; else Starting."""
    state = guest_state(ref.directory, ref.name)
    if not state.running:
        return state
    if state.state == "Running" and state.pid and state.pid != old_pid:
        return state
    return GuestState("Starting")


def wait_rebooted(ref: GuestRef, old_pid: int | None, timeout: float) -> GuestState | None:
    """Wait for the next boot's hypervisor (or for the guest to stop); None when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        state = _booted(ref, old_pid)
        if state.state != "Starting":
            return state
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def check_can_reboot(ref: GuestRef, state: GuestState, what: str, in_place: bool = False) -> None:
    """Refuse a restart or reset that would only stop the guest: nothing would boot it again (unless the
    hypervisor reboots it ``in_place``)."""
    if state.state == "Bootloader":
        raise Conflict(f"{ref.name} is still in its boot loader, which cannot {what}; try again once it "
                       "runs, or use poweroff")
    if in_place:
        return
    if state.supervisor is None:
        raise Conflict(f"{ref.name} runs without its supervisor (it was killed), so nothing would boot it "
                       "again; use stop, then start")
    if read_state(ref.directory).get("adopted"):
        raise Conflict(f"{ref.name} was adopted after its supervisor died, and an adopting supervisor only "
                       "watches the guest until it stops; use stop, then start")


def restart(driver: Driver, ref: GuestRef, timeout: float, force_after: float = 10.0) -> tuple[GuestState, list[str]]:
    """vm-bhyve's restart (a one-shot flag, then the ACPI power button; the supervisor boots the guest
    again), made reliable: a guest that ignores the button is forced off after ``timeout`` seconds (the
    flag turns that power-off into a restart too), and the call returns once the new boot runs.
    """
    state = running_state(ref)
    check_can_reboot(ref, state, "shut down through ACPI")
    notes: list[str] = []
    paths.write_file(ref.directory, ref.layout.restart_flag, "")
    if state.pid:
        driver.request_shutdown(ref, state.pid)
    after = wait_rebooted(ref, state.pid, timeout)
    if after is None:
        notes.append(f"{ref.name}: did not shut down within {timeout:g} s; forcing power-off")
        force_off(driver, ref)
        after = wait_rebooted(ref, state.pid, force_after + REBOOT_TIMEOUT)
    if after is None:
        raise HivectlError(f"{ref.name}: did not boot again; see {ref.layout.vm_log}")
    return after, notes


def reset(driver: Driver, ref: GuestRef, timeout: float = REBOOT_TIMEOUT) -> GuestState:
    """The reset button; returns once the next boot runs (or the guest stopped, with on_restart=stop)."""
    state = running_state(ref)
    in_place = driver.reboots_in_place(ref.config())
    check_can_reboot(ref, state, "be reset", in_place)
    driver.force_reset(ref, state.pid)
    if in_place:
        return guest_state(ref.directory, ref.name)
    after = wait_rebooted(ref, state.pid, timeout)
    if after is None:
        raise HivectlError(f"{ref.name}: did not boot again within {timeout:g} s after the reset; "
                           f"see {ref.layout.vm_log}")
    return after


def poweroff(driver: Driver, ref: GuestRef, timeout: float = 10.0) -> bool:
    """Pull the plug (also in the boot loader stage, where vm-bhyve cannot: churchers#466)."""
    orphan = running_state(ref).supervisor is None
    mark_stopping(ref)
    force_off(driver, ref)
    stopped = not wait_stopped([ref], timeout)
    if stopped and orphan:
        reap_orphan(driver.host, driver, ref)
    return stopped


def startall(store: Store, driver: str, delay: float, console: str = "nmdm") -> tuple[list[Started], list[str]]:
    """Start ``vm_list`` in order with ``vm_delay`` seconds between starts; failures do not stop the rest.

    Guests already running are skipped, and so is the delay for them: it exists to stagger the load of
    booting guests, so it only separates starts that were actually attempted.
    """
    started: list[Started] = []
    errors: list[str] = []
    attempted = False
    for name in store.settings.vm_list:
        try:
            ref = store.get(name)
            if guest_state(ref.directory, name).running:
                continue
            if attempted and delay:
                time.sleep(delay)
            attempted = True
            started.append(start(ref, driver, console=console))
        except HivectlError as error:
            errors.append(str(error))
    return started, errors


def running_guests(store: Store) -> list[GuestRef]:
    return [ref for ref in store.iter_guests() if guest_state(ref.directory, ref.name).running]
