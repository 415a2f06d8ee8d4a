"""Clearing a run whose supervisor died, and telling our VMs from VMs hivectl did not start.

A supervisor records what it sets up before it sets it up (``teardown`` in ``hivectl.state``: the taps
it is about to create; the ``spawning`` intent before each hypervisor, see ``hivectl/runtime.py``), so
whoever finds its run stale (the next ``start``, ``stop``, ``poweroff``) tears exactly that down: no tap
is orphaned by a supervisor killed with SIGKILL.

What is not ours is never touched. vm-bhyve refuses to start a guest whose ``/dev/vmm/NAME`` exists
(``vm-bhyve``'s lib/vm-run: "virtual machine already exists in /dev/vmm") instead of destroying it; hivectl
does the same when no run of its own explains the VM, and says how to clear it. On Linux, where
there is no ``/dev/vmm``, a live QEMU started with ``-name NAME`` that is not the one we recorded (one
started by hand or by another tool) makes ``start`` refuse likewise.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hivectl.drivers.base import Driver
from hivectl.errors import Conflict
from hivectl.host import identity
from hivectl.host.base import Host
from hivectl.model.layout import CONSOLE, RESTART_FLAG, RUN_LOCK, STOPPING, SUPERVISOR_STATE, WAIT_RECORD
from hivectl.runner import lock
from hivectl.runtime import guest_state, read_lock, read_state
from hivectl.store import GuestRef


def recorded_teardown(directory: Path) -> list[list[str]]:
    """The port teardown commands the run recorded in its state file (before it made the ports)."""
    recorded = read_state(directory).get("teardown")
    if not isinstance(recorded, list):
        return []
    return [[str(word) for word in argv] for argv in recorded if isinstance(argv, list)]


def strangers(driver: Driver, ref: GuestRef) -> list[identity.ProcessIdentity]:
    """Live hypervisor processes that name this guest and that no live run of ours recorded."""
    from hivectl.runtime import hypervisor_pid

    ours = hypervisor_pid(read_state(ref.directory), ref.name)
    return [proc for proc in driver.foreign_processes(ref) if proc.pid != ours]


def foreign_vm(driver: Driver, ref: GuestRef) -> str | None:
    """Why a VM of this name exists that hivectl did not start (one line with how to clear it), or None.

    Called with the run lock held and after any stale run of ours was cleared, so anything left is not ours.
    """
    others = strangers(driver, ref)
    if others:
        proc = others[0]
        return (f"a hypervisor named {ref.name} runs that hivectl did not start (pid {proc.pid}: "
                f"{' '.join(proc.argv)[:80]}); stop it, or check it is not in use and kill {proc.pid}")
    node = driver.leftover_vm(ref)
    if node:
        return (f"a VM named {ref.name} exists that hivectl did not start ({node}); check it is not in "
                f"use, then clear it with {driver.clear_hint(ref)}")
    return None


def teardown(host: Host, driver: Driver, ref: GuestRef, steps: list[list[str]]) -> None:
    """Undo a run: its recorded port teardown, its limits (hivectl/runner/limits.py), the driver's cleanup
    (``bhyvectl --destroy``), then the run-time files; every step is attempted."""
    from hivectl.runner import limits

    recorded = read_state(ref.directory)
    for argv in steps:
        with contextlib.suppress(Exception):
            host.run(argv, check=False)
    with contextlib.suppress(Exception):
        limits.release_rules(host, ref, recorded.get("pid"), recorded.get("start"))
    for action in driver.cleanup(ref):
        with contextlib.suppress(Exception):
            action.apply(host)
    with contextlib.suppress(Exception):
        limits.release_groups(host, ref)  # the guest's cgroups (hivectl/runner/limits.py)
    # ``restart`` too: a flag a run did not consume (its supervisor died) must not restart the next run.
    for name in (CONSOLE, SUPERVISOR_STATE, STOPPING, RESTART_FLAG, WAIT_RECORD):
        (ref.directory / name).unlink(missing_ok=True)


def clear_if_stale(host: Host, driver: Driver, ref: GuestRef) -> bool:
    """Tear down a stale run of ours and remove its lock, under the lock guard (so a run that took the
    lock meanwhile is never touched). True when there was one."""
    with lock.guarded(ref.directory):
        current = read_lock(ref.directory)
        state = guest_state(ref.directory, ref.name)
        if current is None or not current.local or not state.stale:
            return False
        teardown(host, driver, ref, recorded_teardown(ref.directory))
        (ref.directory / RUN_LOCK).unlink(missing_ok=True)
        return True


def guard_foreign(driver: Driver, ref: GuestRef) -> None:
    """``Conflict`` (one line) when :func:`foreign_vm` finds a VM that is not ours."""
    why = foreign_vm(driver, ref)
    if why:
        raise Conflict(why)
