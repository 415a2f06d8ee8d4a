"""Suspend and resume: ``hivectl suspend NAME``, ``hivectl resume [--discard] NAME`` (issue 13, item 4).

Suspend saves a running guest's state into ``NAME.save`` in its directory and ends its run: vm-bhyve's
``suspending.lock`` is written while it is under way (vm-bhyve's lib/vm-core ``vm::suspend``), the driver
saves (bhyve: ``bhyvectl --suspend``; QEMU: a migration into the file), and the supervisor, finding the
save when the hypervisor exits, ends the run instead of booting again (bhyve exits 0, its reboot status);
taps and VM are cleaned up as after a stop. Once the hypervisor is gone and the save is complete, its record is written
(hivectl/drivers/checkpoint.py): the machine the run was booted with and a stamp of every disk, so that a
later resume can refuse a save that no longer fits.

Resume is a start (``ops/lifecycle.start``): the start plan of a guest with a save resumes it (bhyve ``-r
FILE``, QEMU ``-incoming defer`` and ``migrate-incoming``), and refuses with the reason when the save is
stale. ``--discard`` (``start --discard-save``) first moves the save aside, never deleting it, and then
boots the guest afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hivectl.context import Context
from hivectl.errors import Conflict, HivectlError, UsageError

SUSPEND_TIMEOUT = 300.0  # seconds for the save to be written and the hypervisor to exit


@dataclass(frozen=True)
class SuspendRequest:
    names: tuple[str, ...]
    timeout: float = SUSPEND_TIMEOUT
    dry_run: bool = False


@dataclass
class SuspendResult:
    suspended: list[str] = field(default_factory=list)  # "NAME: SAVE" per guest saved
    errors: list[str] = field(default_factory=list)  # one line per guest that could not be suspended
    plan: list[list[str]] = field(default_factory=list)


def _plan_one(ctx: Context, name: str, timeout: float) -> tuple[list[list[str]], int]:
    """The steps of one suspend, and the hypervisor's pid; refuses a guest that cannot be suspended now."""
    from hivectl.runner import control

    ref = ctx.store.get(name)
    state = control.running_state(ref)
    if state.state != "Running" or state.pid is None:
        raise Conflict(f"{name} is {state.label()}: only a running guest (past its boot loader) can be suspended")
    driver = ctx.driver_impl()
    missing = driver.checkpoint_problem()
    if missing:
        raise HivectlError(f"cannot suspend {name}: {missing}")
    if ref.layout.suspend.exists():
        raise Conflict(f"{name} already has a save ({ref.layout.suspend}); discard it first (hivectl resume --discard)")
    plan = [["touch", str(ref.layout.suspending)]]  # vm-bhyve writes the host name into it; so does hivectl
    plan += driver.suspend_argv(ref, state.pid)
    plan.append(["pwait", "-t", f"{timeout:g}", str(state.pid)])
    plan.append(["install", "-m", "600", "/dev/stdin", str(ref.layout.save_file(".hivectl"))])
    plan.append(["rm", "-f", str(ref.layout.suspending)])
    return plan, state.pid


def suspend(ctx: Context, request: SuspendRequest) -> SuspendResult:
    """Suspend every named guest, one after the other; a failure does not stop the rest."""
    if not 0 < request.timeout <= 86400:
        raise UsageError(f"--timeout {request.timeout:g}: expected seconds between 0 and 86400")
    result = SuspendResult()
    for name in request.names:
        try:
            plan, pid = _plan_one(ctx, name, request.timeout)
            if request.dry_run:
                result.plan += plan
                continue
            result.suspended.append(f"{name}: {suspend_one(ctx, name, pid, request.timeout)}")
        except HivectlError as error:
            if request.dry_run:
                raise
            result.errors.append(str(error))
    return result


def suspend_one(ctx: Context, name: str, pid: int, timeout: float) -> Path:
    """Save one running guest and end its run; returns the save's path. On failure the guest runs on."""
    import os
    import socket

    from hivectl.drivers import checkpoint
    from hivectl.rcfile import atomic_write
    from hivectl.runner import control
    from hivectl.runtime import read_state

    ref = ctx.store.get(name)
    driver = ctx.driver_impl()
    recorded = read_state(ref.directory).get("machine")
    config = ref.config()
    values = {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) \
        else checkpoint.machine(config)  # an adopted run has no record: the config as it is now
    atomic_write(ref.layout.suspending, socket.gethostname() + "\n", 0o644)
    try:
        try:
            driver.suspend(ref, pid, timeout)
        except HivectlError as error:
            raise HivectlError(f"{name} was not suspended and runs on: {error}") from None
        if control.wait_stopped([ref], timeout):
            raise HivectlError(f"{name} was not suspended: its hypervisor still runs {timeout:g} s after the "
                               f"request (it resumes the guest when a save fails; see "
                               f"{ref.layout.hypervisor_log(driver.name)})")
        save = checkpoint.find(ref)
        if save is None:
            raise HivectlError(f"{name} stopped, but no save {ref.layout.suspend} was written; see "
                               f"{ref.layout.hypervisor_log(driver.name)}")
        missing = [ref.layout.save_file(s).name for s in checkpoint.PARTS.get(driver.name, ("",))
                   if not ref.layout.save_file(s).exists()]
        if missing:
            raise HivectlError(f"{name} stopped, but its save is incomplete ({', '.join(missing)} missing); it "
                               f"is kept as it is: hivectl resume --discard {name} puts it aside")
        checkpoint.write_record(ref, driver.name, values, checkpoint.disk_stamps(ctx.host, ref, config))
        return save.path
    finally:
        with_lock = ref.layout.suspending
        if with_lock.exists():
            os.unlink(with_lock)


# -- resume ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResumeRequest:
    name: str
    discard: bool = False
    dry_run: bool = False


@dataclass
class ResumeResult:
    name: str
    pid: int | None = None
    plan: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def discard(ctx: Context, name: str, dry_run: bool = False) -> tuple[Path | None, list[list[str]]]:
    """Move a stopped guest's save aside (``NAME.save.discarded-STAMP/``); (None, []) when it has none."""
    from hivectl.drivers import checkpoint
    from hivectl.runtime import guest_state

    ref = ctx.store.get(name)
    save = checkpoint.find(ref)
    if save is None:
        return None, []
    state = guest_state(ref.directory, ref.name)
    if state.state != "Suspended":
        raise Conflict(f"cannot discard {name}'s save: it is {state.label()}")
    target = checkpoint.discard_target(ref)
    plan = checkpoint.discard_plan(save, target)
    if not dry_run:
        checkpoint.discard(save, target)
    return target, plan


def resume(ctx: Context, request: ResumeRequest) -> ResumeResult:
    """Resume a suspended guest (a start from its save), or with ``discard`` put the save aside and boot it
    afresh. A guest without a save is a ``Conflict``: ``start`` boots it."""
    from hivectl.ops import lifecycle
    from hivectl.runtime import guest_state

    ref = ctx.store.get(request.name)
    state = guest_state(ref.directory, ref.name)
    if state.state != "Suspended":
        raise Conflict(f"{request.name} is {state.label()}, not Suspended: nothing to resume")
    started = lifecycle.start(ctx, lifecycle.StartRequest((request.name,), dry_run=request.dry_run,
                                                          discard_save=request.discard))
    result = ResumeResult(request.name, plan=started.plan, warnings=started.warnings)
    if started.errors:
        raise HivectlError(started.errors[0])
    if started.started:
        result.pid = started.started[0].pid
    return result


# -- suspendall, resumeall --------------------------------------------------------------------------------

def suspendall(ctx: Context, timeout: float = SUSPEND_TIMEOUT, dry_run: bool = False) -> SuspendResult:
    """vm-bhyve's ``vm suspendall``: every running guest, in ``stopall``'s order (those not in ``vm_list``
    first, then ``vm_list`` in reverse), each suspended as ``suspend`` does; a failure does not stop the
    rest. No ``vm_delay`` pause: a save is waited for, one guest after the other, so nothing needs staggering."""
    from hivectl.ops.lifecycle import stopall_order

    refs, _ = stopall_order(ctx)
    return suspend(ctx, SuspendRequest(tuple(ref.name for ref in refs), timeout, dry_run))


@dataclass
class ResumeAllResult:
    resumed: list[ResumeResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per guest that could not be resumed
    plan: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resumeall_order(ctx: Context) -> list[str]:
    """The suspended guests, in ``startall``'s order (``vm_list`` first, as listed), then the others."""
    from hivectl.runtime import guest_state

    suspended = [ref.name for ref in ctx.store.iter_guests()
                 if guest_state(ref.directory, ref.name).state == "Suspended"]
    listed = [name for name in dict.fromkeys(ctx.settings.vm_list) if name in suspended]
    return listed + [name for name in suspended if name not in listed]


def resumeall(ctx: Context, dry_run: bool = False) -> ResumeAllResult:
    """Resume every suspended guest (``resumeall_order``), each as ``resume`` does; a failure (a stale
    save) does not stop the rest. In a dry run the first refusal is raised, as ``suspend``'s is."""
    result = ResumeAllResult()
    for name in resumeall_order(ctx):
        try:
            one = resume(ctx, ResumeRequest(name, dry_run=dry_run))
        except HivectlError as error:
            if dry_run:
                raise
            result.errors.append(str(error))
            continue
        result.plan += one.plan
        result.warnings += one.warnings
        result.resumed.append(one)
    return result
