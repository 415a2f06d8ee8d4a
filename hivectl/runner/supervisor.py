"""The per-guest supervisor: one detached process per running guest.

Why one process per guest rather than one daemon for all: a bug or crash in one supervisor can only
affect its own guest; there is no daemon to install, enable or restart on upgrade; and the state of each
guest stays in its own directory, readable without talking to anything (``list`` reads files). The cost
is kept small: while a bhyve guest runs, its supervisor is not this module but the lean waiter it execs
itself into (``hivectl/host/waiter.py``, same pid, about 2.8 MiB PSS instead of 13.9), which execs back
here with the hypervisor's exit status or a stop signal (``wait_lean``, ``resume``; docs/architecture.md,
"Supervision memory").

The loop (vm-bhyve's ``_run``, made robust): take the lock, then execute the start plan
(``runner/startplan.py``, what ``start --dry-run`` prints): write a missing identity, create the guest's
ports, then for each boot rebuild a stale cloud-init seed, run ``prestart``, the driver's prepare actions,
the loader (bhyveload/grub-bhyve) if any, then the hypervisor (each reboot is planned afresh); map its
exit status to an outcome and apply the policy (``on_restart``, ``on_fault``, the one-shot ``restart``
flag, a crash-loop limit with backoff). On every exit path: tear the ports down, run the driver's cleanup
(``bhyvectl --destroy``), remove secrets, console and state files, release the lock.

The hypervisor is started in the supervisor's session but survives the supervisor: a supervisor killed
with SIGKILL leaves the guest running, ``list`` keeps showing it (the state file names the hypervisor
pid), and ``start`` adopts it with a new supervisor that watches the pid and cleans up after it.

In the foreground (``start -f``, and console=tmux, where the supervisor runs in a tmux session) com1 and
the loader use the terminal, and SIGINT, SIGTERM and SIGHUP (Ctrl-C, ``kill``, a closed terminal or a
killed tmux session) stop the guest the way ``stop`` does: the ACPI power button, the forced power-off
after ``STOP_GRACE`` seconds (or at once on a second signal), then SIGKILL, and the usual cleanup.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hivectl.drivers import checkpoint
from hivectl.drivers.base import Driver, Outcome, is_fatal
from hivectl.drivers.bhyve.jail import JailPlan, unwrap
from hivectl.errors import Conflict, HivectlError
from hivectl.host import identity, process
from hivectl.host.base import Host
from hivectl.host.process import DEVNULL, Child, Process, TimeoutExpired
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import LOADER_LOG, SUPERVISOR_STATE
from hivectl.net.ports import Port
from hivectl.plan import Plan
from hivectl.rcfile import atomic_write
from hivectl.records import record
from hivectl.runner import backoff, limits, lock, log, ready, stale, startplan
from hivectl.runtime import Lock
from hivectl.safety import paths
from hivectl.store import GuestRef, Store

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Protocol

CRASH_WINDOW = 60.0  # seconds: faults closer together than this count as one crash loop
CRASH_LIMIT = 5  # restarts after faults within the window before giving up
READY_FD_ENV = ready.FD_ENV
CONSOLE_ENV = "HIVECTL_CONSOLE"  # "tmux" when ``start`` runs this supervisor in a tmux session
STOP_GRACE = 30.0  # foreground: seconds the guest gets to power off after a signal before it is forced
FORCE_GRACE = 10.0  # then seconds after the forced power-off before the hypervisor is killed
POLL = 0.2
READY_TIMEOUT = 60.0  # seconds a hypervisor gets to say it is ready after the first second (Driver.wait_ready)
RESTORE_TIMEOUT = 300.0  # seconds a hypervisor gets to load a save (QEMU's incoming migration)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Detached, only SIGINT ends the guest (Python's KeyboardInterrupt reaches the cleanup); SIGTERM kills the
# supervisor alone and leaves the guest to be adopted, and SIGHUP is ignored (``main``).
DETACHED_SIGNALS = (signal.SIGINT,)


if TYPE_CHECKING:  # a Protocol for mypy only: defining it at run time would import typing
    class Waitable(Protocol):
        """A loader or hypervisor being waited for: a ``Process`` this supervisor spawned, or a ``Child``
        known by pid after the lean waiter (``hivectl/host/waiter.py``) handed it back."""

        @property
        def pid(self) -> int: ...

        def wait(self, timeout: float | None = None) -> int: ...

        def poll(self) -> int | None: ...

        def terminate(self) -> None: ...

        def kill(self) -> None: ...


@record
class Policy:
    """What to do after each kind of exit, from the guest's config."""

    on_restart: str
    on_fault: str
    crash_limit: int = CRASH_LIMIT
    backoff: float = 1.0

    @classmethod
    def from_config(cls, config: GuestConfig) -> Policy:
        return cls(config.get("on_restart") or "restart", config.get("on_fault") or "shutdown",
                   int(config.get("fault_limit") or CRASH_LIMIT), float(config.get("fault_backoff") or 0))


def decide(outcome: Outcome, policy: Policy, stopping: bool, restart_flag: bool) -> bool:
    """True to boot again. Pure, so the policy table is tested directly."""
    if stopping:
        return False
    if outcome is Outcome.REBOOT:
        return policy.on_restart == "restart"
    if outcome in (Outcome.POWEROFF, Outcome.HALT):
        return restart_flag
    return policy.on_fault == "restart"


def exit_status(outcome: Outcome | None, stop_requested: bool) -> int:
    """A supervisor's exit status (what ``start -f`` returns): 0 when the guest ended because it or someone
    asked it to, 1 when it crashed, failed or never started (the hypervisor's own status is in the log)."""
    if outcome is None:
        return 1
    if stop_requested:
        return 0
    return 0 if outcome in (Outcome.POWEROFF, Outcome.HALT, Outcome.REBOOT) else 1


def write_state(directory: Path, state: str, pid: int | None, **extra: object) -> None:
    data = {"state": state, "pid": pid, "supervisor": os.getpid(), "updated": time.time(), **extra}
    atomic_write(directory / SUPERVISOR_STATE, json.dumps(data) + "\n", 0o644)


class Supervisor:
    """Runs one guest until it stops for good."""

    def __init__(self, host: Host, store: Store, driver: Driver, ref: GuestRef, install: Path | None = None,
                 foreground: bool = False, back: list[str] | None = None) -> None:
        self.host = host
        self.store = store
        self.driver = driver
        self.ref = ref
        self.dir = ref.directory
        self.layout = ref.layout
        self.install = install
        self.foreground = foreground
        self.ports: list[Port] = []
        self.teardown: list[list[str]] = []
        self.child: Waitable | None = None
        self.ready_fd = ready.open_writer()
        self.tmux = os.environ.pop(CONSOLE_ENV, "") == "tmux" and foreground
        self.faults: list[float] = []
        self.signals = 0  # stop signals received (foreground only)
        self.stop_started: float | None = None
        self.forced_at: float | None = None
        self.last_outcome: Outcome | None = None
        self.failure: str | None = None  # why the run failed, for a foreground caller to print
        self.token = ""  # this spawn's HIVECTL_RUN_TOKEN (see ``record_intent``)
        self.back = back or []  # the command line that resumes this supervisor after the lean waiter
        self.policy = Policy("restart", "shutdown")
        self.reboots = backoff.RebootLoop()
        self.booted = 0.0  # time.monotonic() when the current boot began (CLOCK_MONOTONIC survives exec)

    # -- reporting back to ``start`` ---------------------------------------------------------------------
    def report(self, message: str) -> None:
        """Tell the waiting ``start`` how the first boot went (once), then close the channel."""
        if self.ready_fd >= 0:
            ready.send(self.ready_fd, message)
            self.ready_fd = -1

    def log(self, message: str) -> None:
        log.write(self.dir, message)

    def event(self, kind: str, **details: object) -> None:
        """One line of the event stream (hivectl/journal/events.py); a log it cannot write costs nothing."""
        event(self.store, self.ref, kind, details)

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run the guest until it stops for good; returns :func:`exit_status`."""
        if self.foreground:
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_signal)
        try:
            lock.acquire(self.dir, self.ref.name, on_stale=self._clear_stale)
        except HivectlError as error:
            self.failure = str(error)
            self.report(f"error: {error}")
            return 1
        try:
            # After our own stale run is cleared, a VM of this name is not ours: refuse, touch nothing.
            stale.guard_foreign(self.driver, self.ref)
        except HivectlError as error:
            lock.release(self.dir)
            self.failure = str(error)
            self.log(f"refused: {error}")
            self.report(f"error: {error}")
            return 1
        return self.supervised(self._run_locked)

    def supervised(self, body: Callable[[], object]) -> int:
        """Run ``body`` with the lock held; whatever happens, clean up and answer ``start``."""
        failure = "the guest stopped during start-up; see " + str(self.layout.vm_log)
        try:
            body()
        except HivectlError as error:
            self.log(f"fatal; {error}")
            failure = self.failure = str(error)
            self.last_outcome = None
        except Exception as error:  # a supervisor must always clean up and say why
            self.log(f"fatal; internal error: {error!r}")
            failure = self.failure = f"internal error: {error!r}"
            self.last_outcome = None
        finally:
            # Cleanup comes first: when ``start`` hears back, the guest is fully stopped again.
            self.finish()
            if self.ready_fd >= 0:  # ``start`` never heard "ok": this run was a failed start, now undone
                self.event("start-failed", error=failure)
            self.report(f"error: {failure}")
        return exit_status(self.last_outcome, self.stop_requested())

    def _clear_stale(self, _old: Lock) -> None:
        """A stale run of ours holds the lock: tear down what it recorded before we take the lock."""
        self.log("clearing the stale run of a supervisor that died")
        stale.teardown(self.host, self.driver, self.ref, stale.recorded_teardown(self.dir))

    def record_intent(self, argv: list[str]) -> None:
        """Before a loader or hypervisor is spawned: the time and program, so if this supervisor dies
        before :meth:`record_spawned`, the process is still found by its name and start time."""
        program = Path(unwrap(argv)[0]).name  # ``jexec JAIL bhyve ...`` is bhyve once jexec has exec'd it
        program = "qemu" if program.startswith("qemu") else program
        self.token = os.urandom(8).hex()  # what secrets.token_hex(8) returns, without its imports
        write_state(self.dir, "spawning", None, intent=time.time(), program=program, token=self.token,
                    teardown=self.teardown, ports=self.port_record())

    def record_spawned(self, state: str, proc: Process, **extra: object) -> None:
        """The spawned process with its start time (a pid alone is never trusted again)."""
        me = identity.identify(proc.pid)
        write_state(self.dir, state, proc.pid, start=me.start if me is not None else "", token=self.token,
                    teardown=self.teardown, ports=self.port_record(), **extra)

    def _run_locked(self) -> int:
        log.rotate(self.dir)
        # The one start plan (runner/startplan.py): what ``start --dry-run`` prints is what runs here.
        start = startplan.plan_start(self.host, self.store, self.driver, self.ref, self.install, self.foreground)
        for problem in start.problems:
            if not is_fatal(problem):
                self.log(str(problem))
        fatal = [p for p in start.problems if is_fatal(p)]
        if fatal:
            raise HivectlError("; ".join(fatal))
        if start.identity is not None:
            start.identity.apply(self.host)
            self.log("generated identity: " + ", ".join(start.identity.values))
        self.layout.stopping.unlink(missing_ok=True)
        self.layout.suspending.unlink(missing_ok=True)  # left by vm-bhyve's suspend, or a crash of ours
        self.log(f"initialising ({self.driver.name} driver)")
        self.ports = start.ports
        for port in self.ports:
            # Recorded before setup so that a failure half-way still tears down what was made.
            self.teardown += [action.argv() for action in port.teardown]
            write_state(self.dir, "starting", None, teardown=self.teardown)
            Plan(list(port.setup)).apply(self.host)
            self.log(f"port network{port.index}: {port.ifname} on {port.switch or '-'}")
        if start.jail is not None:
            self.make_jail(start.jail)
        self.policy = Policy.from_config(start.config)
        return self.boot_loop(start.first)

    def make_jail(self, jail: JailPlan) -> None:
        """``jail="auto"``: the jail's root, devfs ruleset and ``jail -c`` (``drivers/bhyve/jail.py``). Its
        teardown goes first in the record (``jail -r`` stops what runs in it before the taps go), written
        before each step that makes something, the ruleset's removal once its number is claimed."""
        planned = len(jail.teardown())
        self.teardown[:0] = jail.teardown()

        def claimed(_number: int) -> None:
            nonlocal planned
            if jail.ruleset is not None:
                jail.ruleset.claimed = True
            self.teardown[:planned] = jail.teardown()
            planned = len(jail.teardown())
            write_state(self.dir, "starting", None, teardown=self.teardown)

        if jail.ruleset is not None:
            jail.ruleset.on_claim = claimed
        write_state(self.dir, "starting", None, teardown=self.teardown)
        Plan(list(jail.setup)).apply(self.host)
        self.log(f"jail {jail.name}" + (f": devfs ruleset {jail.ruleset.number}" if jail.ruleset else ""))
        for limit in jail.limits():  # limit_* on the jail (rctl jail:NAME), each applied or refused
            self.log(limit.outcome)

    def boot_loop(self, steps: startplan.BootSteps | None, ended: tuple[int, Outcome] | None = None) -> int:
        """Boot, and boot again while the policy says so; ``ended`` is a boot that already ended (the one
        the lean waiter watched), handled before any new boot."""
        while True:
            if ended is None:
                assert steps is not None
                self.booted = time.monotonic()
                ended = self.boot_once(steps)
            status, outcome = ended
            ended = None
            if not self.boot_again(status, outcome):
                return status
            # A restart picks up configuration changes (vm-bhyve does not): the next boot is planned afresh.
            steps = startplan.plan_boot(self.driver, self.ref, self.ref.config(), self.ports, self.install,
                                        False, self.foreground)

    def boot_again(self, status: int, outcome: Outcome) -> bool:
        """After a boot ended: record it, apply the policy (crash-loop limit, back-offs); True to boot again."""
        lasted = time.monotonic() - self.booted
        self.last_outcome = outcome
        # A save written during this run (hivectl suspend, vm-bhyve's, or a bare bhyvectl --suspend whose
        # sender was killed) ends the run: booting again would run the guest over its saved memory.
        suspended = self.layout.suspend.exists()
        stopping = self.stop_requested() or suspended
        restart_flag = self.layout.restart_flag.exists()
        self.layout.restart_flag.unlink(missing_ok=True)
        again = decide(outcome, self.policy, stopping, restart_flag)
        self.write_last(status, outcome)
        self.event("crashed" if outcome in (Outcome.FAULT, Outcome.ERROR, Outcome.KILLED) else
                   "rebooted" if again else "stopped", status=status, outcome=outcome.value, again=again,
                   suspended=suspended)
        self.log(f"hypervisor exited with status {status} ({outcome.value})" + ("; restarting" if again else ""))
        if not again:
            return False
        if outcome in (Outcome.FAULT, Outcome.ERROR, Outcome.KILLED):
            now = time.monotonic()
            self.faults = [t for t in self.faults if now - t < CRASH_WINDOW] + [now]
            if len(self.faults) > self.policy.crash_limit:
                self.log(f"crash loop: {len(self.faults)} faults within {CRASH_WINDOW:.0f} s; giving up")
                return False
            delay = min(self.policy.backoff * 2 ** (len(self.faults) - 1), 30)
            self.log(f"waiting {delay:g} s before restarting")
            time.sleep(delay)
        self.count_restart()
        wait = self.reboots.after_boot(lasted)
        if wait:
            self.log(f"reboot loop: {self.reboots.rapid} boots in a row lasted less than {backoff.RAPID_BOOT:g} s; "
                     f"waiting {wait:g} s before booting again")
            if self.pause(wait):
                return False
        return True

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless a stop is requested meanwhile; True when it was (do not boot again)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.stop_requested():
                return True
            time.sleep(min(POLL, max(deadline - time.monotonic(), 0)))
        return self.stop_requested()

    def apply_priority(self, config: GuestConfig, pid: int) -> None:
        """vm-bhyve's ``priority``: the nice value of the hypervisor process (what ``renice`` would set)."""
        value = config.get("priority")
        if not value:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, pid, int(value))
            self.log(f"priority of {pid} set to {value}")
        except (OSError, ValueError) as error:
            self.log(f"could not set priority {value!r} of {pid}: {error}")

    def boot_once(self, steps: startplan.BootSteps) -> tuple[int, Outcome]:
        """One boot, exactly as planned: seed, prestart, prepare actions, loader, hypervisor."""
        config, first = steps.config, steps.first
        if steps.seed is not None:
            self.log("cloud-init: " + " ".join(steps.seed.argv()))
            steps.seed.apply(self.host)
        if steps.prestart is not None:
            steps.prestart.apply(self.host)
            self.log(steps.prestart.outcome)
        plan = steps.boot
        Plan(list(plan.prepare)).apply(self.host)
        self.write_console(plan.console, config)
        if plan.loader:
            if self.stop_requested():
                return 0, Outcome.POWEROFF
            self.log("loader: " + " ".join(plan.loader))
            self.record_intent(plan.loader)
            proc = self.spawn(plan.loader, plan.env, LOADER_LOG)
            self.record_spawned("bootloader", proc)
            status = self.wait_child(proc, loader=True)
            if status != 0 and self.stop_requested():
                # ``stop``/``poweroff`` (or a signal) ended the loader: a stop, not a failed boot.
                self.log(f"loader {plan.loader[0]} ended with status {status} by a stop request")
                return status, Outcome.POWEROFF
            if status != 0:
                detail = self.said(LOADER_LOG)
                raise HivectlError(f"loader {plan.loader[0]} exited with status {status}"
                                   + (f": {detail}" if detail else f"; see {self.layout.loader_log}"))
        if self.stop_requested():
            return 0, Outcome.POWEROFF
        self.log("hypervisor: " + " ".join(plan.hypervisor))
        hypervisor_log = self.layout.hypervisor_log(self.driver.name).name
        self.record_intent(plan.hypervisor)
        proc = self.spawn(plan.hypervisor, plan.env, hypervisor_log)
        self.child = proc
        self.record_spawned("running", proc, driver=self.driver.name, machine=checkpoint.machine(config))
        self.event("started", pid=proc.pid)
        self.apply_priority(config, proc.pid)
        if plan.restore is not None:
            self.log(f"resuming from {plan.restore}")
            self.driver.restore(self.ref, plan.restore, proc.pid, RESTORE_TIMEOUT)
        limits.apply(self.host, self.ref, config, proc.pid, self.log)  # limit_* (hivectl/runner/limits.py)
        if first:
            self.confirm_started(proc)
        self.stop_raced(proc)
        if plan.restore is not None and proc.poll() is None:
            self.resumed()
        watcher = getattr(self.driver, "watch", None)
        if callable(watcher):
            watcher(self.ref, proc)
        else:
            self.wait_lean(proc, hypervisor_log, plan.secrets)  # returns only if the waiter could not run
        status = self.wait_child(proc, loader=False)
        return self.hypervisor_ended(status, hypervisor_log, plan.secrets, plan.hypervisor[0] if first else "")

    def hypervisor_ended(self, status: int, hypervisor_log: str, secrets: list[Path],
                         first: str = "") -> tuple[int, Outcome]:
        """Classify the hypervisor's exit ``status`` (killed, or the driver's outcome); on the first boot
        (``first`` names the program), an exit before ``start`` had its answer is a failed start."""
        self.child = None
        if first and self.ready_fd >= 0:
            # It never got past its own start-up checks: that is a failed start, not a guest exit.
            detail = self.said(hypervisor_log)
            raise HivectlError(f"{first} exited with status {status} while starting"
                               + (f": {detail}" if detail else f"; see {self.dir / hypervisor_log}"))
        if status < 0:
            outcome = Outcome.KILLED
        else:
            outcome = self.driver.classify(status, self.ref)
        for secret in secrets:
            if inside(self.dir, str(secret)):
                paths.unlink(self.dir, secret)  # a symlink planted meanwhile is removed, never followed
            else:
                secret.unlink(missing_ok=True)
        return status, outcome

    def port_record(self) -> list[dict[str, object]]:
        """The run's ports as the state file keeps them, so that a dry run of ``restart`` or ``reset``
        plans the next boot with the taps this run has (``recorded_ports``)."""
        return [{"index": p.index, "ifname": p.ifname, "switch": p.switch, "backend": p.backend, "mtu": p.mtu,
                 "created": p.created, "bridge": p.bridge} for p in self.ports]

    # -- stopping on a signal (foreground) ---------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: object) -> None:
        """Only count: the waiting loop acts, so no process is spawned from inside a signal handler."""
        self.signals += 1

    def stop_requested(self) -> bool:
        """A stop signal or ``stop`` (NAME/hivectl.stopping) ends the run. A suspend ends it too, told by the
        save it leaves rather than by vm-bhyve's suspending.lock (``boot_again``): a lock left by a killed
        ``suspend`` must not turn a running guest's next reboot into a stop."""
        return self.signals > 0 or self.layout.stopping.exists()

    def resumed(self) -> None:
        """The guest runs on from its save: remove the save (hivectl/drivers/checkpoint.py, ``consume``)."""
        save = checkpoint.find(self.ref)
        if save is not None:
            checkpoint.consume(save)
            self.log(f"resumed from {save.path}; the save is removed (its state lives on in the guest)")

    def wait_child(self, proc: Waitable, loader: bool) -> int:
        """Wait for a loader or hypervisor, escalating a signalled stop while it does not end."""
        while True:
            try:
                return proc.wait(timeout=POLL)
            except TimeoutExpired:
                pass
            if self.signals:
                self.escalate(proc, loader)

    def escalate(self, proc: Waitable, loader: bool) -> None:
        """One step of a signalled stop: ACPI request, then forced power-off, then SIGKILL."""
        now = time.monotonic()
        if self.stop_started is None:
            self.stop_started = now
            paths.write_file(self.dir, self.layout.stopping, f"{os.getpid()}\n")
            self.log("stop signal received; shutting the guest down"
                     + ("" if loader else f" (forced after {STOP_GRACE:g} s or a second signal)"))
            if loader:
                proc.terminate()  # a boot loader has no power button
            else:
                with contextlib.suppress(Exception):
                    self.driver.request_shutdown(self.ref, proc.pid)
            return
        if self.forced_at is None and (self.signals > 1 or now - self.stop_started > STOP_GRACE):
            self.forced_at = now
            self.log("forcing power-off")
            if loader:
                proc.kill()
            else:
                with contextlib.suppress(Exception):
                    self.driver.force_poweroff(self.ref, proc.pid)
            return
        if self.forced_at is not None and now - self.forced_at > FORCE_GRACE:
            self.log("still running after the forced power-off; killing it")
            proc.kill()

    def stop_raced(self, proc: Process) -> None:
        """A stop marked after the pre-spawn check may have read the state before this hypervisor's pid was
        recorded, and so pressed no power button (``control.request_stop`` marks, then reads): press it here.
        A stop signal is not this case: ``wait_child`` escalates it (power button, forced off, kill)."""
        if self.signals or not self.layout.stopping.exists() or proc.poll() is not None:
            return
        self.log("a stop was requested while the hypervisor started: asking it to power off")
        try:
            self.driver.request_shutdown(self.ref, proc.pid)
        except HivectlError as err:  # QEMU's monitor not up yet: stop's own escalation still applies
            self.log(f"could not ask the hypervisor to power off: {err}")

    def confirm_started(self, proc: Waitable) -> None:
        """Report success only once the hypervisor survived its own start-up checks: one second alive, then
        whatever the driver knows of its readiness (``Driver.wait_ready``: QEMU's monitor answering)."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return  # the exit is reported by the caller through the loop's normal path
            time.sleep(0.05)
        if not self.driver.wait_ready(self.ref, lambda: proc.poll() is None, READY_TIMEOUT):
            return  # it failed its own start-up checks after the first second: reported like an early exit
        self.report(f"ok {proc.pid}")

    def spawn(self, argv: list[str], env: dict[str, str], log_name: str) -> Process:
        """Start a loader or hypervisor; its stderr goes to ``NAME/<log_name>`` (rewritten each boot).

        vm-bhyve keeps bhyve's stderr only with ``debug=yes``; hivectl always keeps the latest one, because
        the first thing anyone needs when a start fails is what bhyve or QEMU said.
        """
        stdio = None if self.foreground else DEVNULL
        err_fd = paths.open_file(self.dir, self.dir / log_name, write=True, truncate=True, create=True, mode=0o640)
        try:
            return self.host.spawn(argv, stdin=stdio, stdout=stdio, stderr=err_fd,
                                   env={**os.environ, **env, identity.TOKEN_ENV: self.token})
        finally:
            os.close(err_fd)

    def said(self, log_name: str) -> str:
        """The last non-empty line a loader or hypervisor wrote to stderr (for one-line errors)."""
        try:
            text = paths.read_bytes(self.dir, self.dir / log_name).decode(errors="replace")
            lines = [line.strip() for line in text.splitlines()]
        except (FileNotFoundError, paths.UnsafePath):
            return ""
        lines = [line for line in lines if line]
        return lines[-1] if lines else ""

    def write_console(self, console: dict[str, str], config: GuestConfig) -> None:
        """``NAME/console``; in tmux mode the first COM port is the session, on the first line (vm-bhyve)."""
        if self.tmux:
            from hivectl.runner import tmux

            ports = config.get("comports").split() or ["com1"]
            rest = {k: v for k, v in console.items() if k != ports[0]}
            console = {ports[0]: tmux.PREFIX + self.layout.tmux_session, **rest}
        text = "".join(f"{k}={v}\n" for k, v in console.items())
        atomic_write(self.layout.console, text, 0o644)

    def write_last(self, status: int, outcome: Outcome) -> None:
        """How this boot ended; ``restarts`` (counted by :meth:`count_restart`) carries over from the file, so
        it counts the guest's restarts across runs (``hivectl_guest_restarts_total``, docs/metrics.md)."""
        data = {"status": status, "outcome": outcome.value, "time": time.time(), "restarts": self.restarts()}
        atomic_write(self.layout.last_run, json.dumps(data) + "\n", 0o644)

    def restarts(self) -> int:
        from hivectl.runtime import read_json

        count = read_json(self.layout.last_run).get("restarts")
        return count if isinstance(count, int) and count >= 0 else 0

    def count_restart(self) -> None:
        """The policy boots the guest again: one more restart in ``hivectl.last``."""
        from hivectl.runtime import read_json

        data = read_json(self.layout.last_run)
        data["restarts"] = self.restarts() + 1
        atomic_write(self.layout.last_run, json.dumps(data) + "\n", 0o644)

    # -- waiting as the lean waiter (docs/architecture.md, "Supervision memory") ----------------------------
    def trapped(self) -> tuple[signal.Signals, ...]:
        """The signals this supervisor acts on, which the lean waiter must hand back."""
        return STOP_SIGNALS if self.foreground else DETACHED_SIGNALS

    def wait_lean(self, proc: Process, hypervisor_log: str, secrets: list[Path]) -> None:
        """Exec into ``hivectl/host/waiter.py`` until the hypervisor exits or a stop signal arrives; the
        waiter then execs ``self.back`` and :meth:`resume` carries on where this left off.

        Only once ``start`` has its answer (the first boot passed its checks), with no stop signal being
        acted on and the hypervisor still running. What the loop knows (policy, crash and reboot-loop
        counters, ports, teardown, the boot's secrets) goes first to ``NAME/hivectl.waiting``, written
        atomically. Returns (waiting here as before) when the waiter cannot be run.
        """
        if not self.back or self.ready_fd >= 0 or self.signals or proc.poll() is not None:
            return
        record = {"child": proc.pid, "hypervisor_log": hypervisor_log, "secrets": [str(p) for p in secrets],
                  "booted": self.booted, "faults": self.faults, "rapid": self.reboots.rapid,
                  "policy": [self.policy.on_restart, self.policy.on_fault, self.policy.crash_limit,
                             self.policy.backoff],
                  "teardown": self.teardown, "ports": self.port_record(), "token": self.token, "tmux": self.tmux}
        atomic_write(self.layout.wait_record, json.dumps(record) + "\n", 0o600)
        try:
            process.become_waiter(proc.pid, self.trapped(), self.back, STOP_SIGNALS)
        except HivectlError as error:
            self.log(f"waiting in the full supervisor: {error}")
            self.layout.wait_record.unlink(missing_ok=True)

    def resume(self, waited: str) -> int:
        """Back from the lean waiter (``--waited exit:STATUS``, ``signal:NUM`` or ``lost``): restore the
        loop, finish the boot the waiter watched, then go on as :meth:`run` would."""
        if self.foreground:
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return self.supervised(lambda: self._resume_locked(waited))

    def _resume_locked(self, waited: str) -> int:
        record = self.load_wait_record()
        child = record["child"]
        assert isinstance(child, int)  # checked by load_wait_record
        how, _, value = waited.partition(":")
        if how == "exit" and value.lstrip("-").isdigit():
            self.child = Child(child, int(value))
            status = int(value)
        elif how == "signal":
            self.child = Child(child)
            self.signals += 1
            status = self.wait_child(self.child, loader=False)
        else:
            self.child = Child(child)
            raise HivectlError(f"the lean waiter lost hypervisor {child} ({waited})")
        listed = record.get("secrets")
        # Only files of this guest's directory are removed, whatever the record says.
        secrets = [Path(str(p)) for p in listed if inside(self.dir, str(p))] if isinstance(listed, list) else []
        ended = self.hypervisor_ended(status, str(record.get("hypervisor_log", "")), secrets)
        return self.boot_loop(None, ended)

    def load_wait_record(self) -> dict[str, object]:
        """Read (and remove) ``NAME/hivectl.waiting``; restore the loop's state from it."""
        path = self.layout.wait_record
        try:
            data = json.loads(paths.read_bytes(self.dir, path))
        except (OSError, ValueError, paths.UnsafePath) as error:
            self.teardown = recorded_teardown(self.dir)
            raise HivectlError(f"{path}: cannot resume the supervisor: {error}") from None
        finally:
            paths.unlink(self.dir, path)
        if not isinstance(data, dict) or not isinstance(data.get("child"), int):
            self.teardown = recorded_teardown(self.dir)
            raise HivectlError(f"{path}: not a supervisor's wait record")
        teardown, faults, policy = data.get("teardown"), data.get("faults"), data.get("policy")
        self.teardown = [[str(w) for w in argv] for argv in teardown if isinstance(argv, list)] \
            if isinstance(teardown, list) else recorded_teardown(self.dir)
        self.ports = ports_of(data.get("ports"))
        self.faults = [float(t) for t in faults if isinstance(t, int | float)] if isinstance(faults, list) else []
        rapid, booted = data.get("rapid"), data.get("booted")
        self.reboots.rapid = rapid if isinstance(rapid, int) else 0
        self.booted = float(booted) if isinstance(booted, int | float) else 0.0
        self.token = str(data.get("token") or "")
        self.tmux = bool(data.get("tmux"))
        if isinstance(policy, list) and len(policy) == 4:
            self.policy = Policy(str(policy[0]), str(policy[1]), int(policy[2]), float(policy[3]))
        else:
            self.policy = Policy.from_config(self.ref.config())
        return data

    # -- cleanup on every exit path ----------------------------------------------------------------------
    def finish(self) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(OSError):
                self.child.kill()
                self.child.wait(5)
        cleanup(self.host, self.driver, self.ref, self.teardown)
        self.log("stopped")


def event(store: Store, ref: GuestRef, kind: str, details: dict[str, object]) -> None:
    from hivectl.journal.events import emit_quietly

    emit_quietly(str(store.config_dir), kind, f"/guests/{ref.name}", details)


def cleanup(host: Host, driver: Driver, ref: GuestRef, teardown: list[list[str]]) -> None:
    """Remove everything a run created; each step is attempted even if an earlier one fails.

    ``teardown`` comes from the state file, so whoever cleans up (the supervisor, an adopting supervisor,
    or ``stop`` after a supervisor died) removes exactly the ports that run created. The lock goes last,
    and only if it is still this run's (``lock.release``).
    """
    stale.teardown(host, driver, ref, teardown)
    lock.release(ref.directory)


def inside(directory: Path, path: str) -> bool:
    """Whether ``path`` names a file inside ``directory`` (no ``..``, no other place)."""
    try:
        return bool(paths.relative_parts(directory, path))
    except paths.UnsafePath:
        return False


def recorded_teardown(directory: Path) -> list[list[str]]:
    """The port teardown commands the running supervisor recorded in the state file."""
    return stale.recorded_teardown(directory)


def recorded_ports(directory: Path) -> list[Port]:
    """The ports the running supervisor recorded (``Supervisor.port_record``), without setup or teardown."""
    from hivectl.runtime import read_state

    return ports_of(read_state(directory).get("ports"))


def ports_of(recorded: object) -> list[Port]:
    """Ports from their ``Supervisor.port_record`` form (a state file's or the wait record's)."""
    found: list[Port] = []
    for item in recorded if isinstance(recorded, list) else []:
        if isinstance(item, dict):
            mtu = item.get("mtu")
            found.append(Port(int(item.get("index", 0)), str(item.get("ifname", "")), str(item.get("switch", "")),
                              str(item.get("backend", "")), int(mtu) if isinstance(mtu, int) else None,
                              bool(item.get("created", True)), bridge=str(item.get("bridge", ""))))
    return found


def adopt(host: Host, store: Store, driver: Driver, ref: GuestRef, pid: int) -> int:
    """Watch a hypervisor whose supervisor died, then clean up after it like its own supervisor would.

    The lock is taken over exactly once (``lock.take_over`` re-reads it under its guard): of several
    ``start``s racing to adopt, one wins and the others answer ``running`` (``start`` reports the guest
    running). ``pid`` is adopted only while it is still the guest's hypervisor by its recorded identity
    (or, if its supervisor died before recording it, by name and a start after the recorded intent).
    """
    from hivectl.runtime import hypervisor_pid, read_state

    ready_fd = ready.open_writer()
    me = identity.identify(pid)

    def still_ours() -> None:
        if me is None or hypervisor_pid(read_state(ref.directory), ref.name) != pid:
            raise HivectlError(f"process {pid} is no longer {ref.name}'s hypervisor")

    teardown = recorded_teardown(ref.directory)
    ports = read_state(ref.directory).get("ports")
    try:
        lock.take_over(ref.directory, ref.name, os.getpid(), still_ours)
    except Conflict as error:
        if ready_fd >= 0:
            ready.send(ready_fd, f"running {pid} {error}")
        return 1
    except HivectlError as error:
        if ready_fd >= 0:
            ready.send(ready_fd, f"error: {error}")
        return 1
    assert me is not None
    log.write(ref.directory, f"supervisor adopted running hypervisor {pid}")
    watcher = getattr(driver, "watch", None)
    if callable(watcher):
        # QEMU: reconnect to NAME/qmp.sock (the dead supervisor's connection is closed), so the SHUTDOWN
        # event classifies the exit (``exit_of_adopted``).
        with contextlib.suppress(Exception):
            watcher(ref, pid)
    write_state(ref.directory, "running", pid, start=me.start, driver=driver.name, adopted=True, teardown=teardown,
                ports=ports if isinstance(ports, list) else [])
    if ready_fd >= 0:
        ready.send(ready_fd, f"ok {pid}")
    event(store, ref, "adopted", {"pid": pid})
    while identity.matches(pid, me.start):
        time.sleep(0.5)
    # Not our child: its exit status is not ours to read (wait(2)); say so rather than guess.
    outcome = exit_of_adopted(driver, ref)
    from hivectl.runtime import read_json

    restarts = read_json(ref.layout.last_run).get("restarts", 0)  # the guest's count goes on (docs/metrics.md)
    atomic_write(ref.layout.last_run, json.dumps({"status": None, "outcome": outcome, "adopted": True,
                                                   "time": time.time(), "restarts": restarts}) + "\n", 0o644)
    log.write(ref.directory, f"adopted hypervisor {pid} exited ({outcome})")
    event(store, ref, "stopped", {"outcome": outcome, "adopted": True})
    cleanup(host, driver, ref, teardown)
    log.write(ref.directory, "stopped")
    return 0


def exit_of_adopted(driver: Driver, ref: GuestRef) -> str:
    """How an adopted hypervisor ended, where the platform tells (the driver's ``adopted_outcome``:
    QEMU's QMP events), else ``unknown``: a process that is not our child has no exit status for us."""
    probe = getattr(driver, "adopted_outcome", None)
    if callable(probe):
        with contextlib.suppress(Exception):
            found = probe(ref)
            if isinstance(found, Outcome):
                return found.value
    return "unknown"


def main(argv: list[str]) -> int:
    """``hivectl _supervise NAME [--install PATH] [--foreground] [--adopt PID] [--waited HOW]`` (internal;
    ``--waited`` only from the lean waiter, ``hivectl/host/waiter.py``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="hivectl _supervise")
    parser.add_argument("--install", type=Path)
    parser.add_argument("--foreground", action="store_true")
    parser.add_argument("--adopt", type=int)
    parser.add_argument("--driver")
    parser.add_argument("--waited")
    parser.add_argument("name")
    args = parser.parse_args(argv)
    back = resume_argv(argv, args.foreground, args.driver, args.install, args.name)
    return serve(args.name, args.driver, args.install, args.foreground, args.adopt, args.waited, back)


def serve(name: str, driver_name: str | None, install: Path | None = None, foreground: bool = False,
          adopt_pid: int | None = None, waited: str | None = None, back: list[str] | None = None) -> int:
    """Supervise guest ``name`` in this process until it stops for good: what ``main`` does once its
    arguments are parsed, and what the child that ``hivectl start`` forks runs (``runner/control.py``).
    ``back`` is the command line that resumes this supervisor after the lean waiter (default: the
    module's own, :func:`supervisor_command`)."""
    from hivectl.context import Context
    from hivectl.drivers import get_driver

    if not foreground:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        ctx = Context(driver_name)
        ref = ctx.store.get(name)
        driver = get_driver(ctx.driver, ctx.host, ctx.store)
        if adopt_pid:
            return adopt(ctx.host, ctx.store, driver, ref, adopt_pid)
        back = back or supervisor_command(name, driver_name, install, foreground)
        supervisor = Supervisor(ctx.host, ctx.store, driver, ref, install, foreground, back)
    except HivectlError as error:
        # Before the supervisor took over the answer channel: answer here, or ``start`` only sees silence.
        fd = ready.open_writer()
        if fd >= 0:
            ready.send(fd, f"error: {error}")
        sys.stderr.write(f"hivectl supervisor: {error}\n")
        return 1
    return supervisor.resume(waited) if waited else supervisor.run()


def supervisor_command(name: str, driver: str | None, install: Path | None = None, foreground: bool = False,
                       prefix: list[str] | None = None) -> list[str]:
    """This module's command line for guest ``name``: ``python3 -S -m hivectl.runner.supervisor`` (or
    ``prefix``), the options, the guest name last (``identity.names_guest`` reads a supervisor so)."""
    command = list(prefix or [sys.executable, "-S", "-m", "hivectl.runner.supervisor"])
    command += (["--foreground"] if foreground else []) + (["--driver", driver] if driver else [])
    command += ["--install", str(install)] if install is not None else []
    return [*command, name]


def resume_argv(argv: list[str], foreground: bool, driver: str | None, install: Path | None, name: str) -> list[str]:
    """The command line that starts this supervisor again after the lean waiter: the interpreter and its
    options as this process was started (``sys.orig_argv``), then the options, the guest name last."""
    started = list(sys.orig_argv)
    prefix = started[:len(started) - len(argv)] if argv and started[-len(argv):] == argv else []
    if prefix:
        prefix[0] = sys.executable
    return supervisor_command(name, driver, install, foreground, prefix or None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
