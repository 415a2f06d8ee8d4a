"""Client-side control of running guests: start, stop (with timeout and escalation), restart, reset,
poweroff, and the host-wide startall/stopall.

These run in the ``hivectl`` process and talk to a guest through its files (lock, state) and its driver
(ACPI request, forced power-off). They never assume the supervisor is alive: if it died, they clean up
after the guest themselves.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hivectl.drivers.base import Driver
from hivectl.errors import Conflict, HivectlError
from hivectl.host.base import Host
from hivectl.runner import supervisor
from hivectl.runtime import GuestState, guest_state, pid_alive
from hivectl.store import GuestRef, Store

START_TIMEOUT = 60.0


@dataclass
class Started:
    name: str
    pid: int
    adopted: bool = False


def supervisor_argv(name: str, driver: str, install: Path | None = None, adopt: int | None = None) -> list[str]:
    argv = [sys.executable, "-m", "hivectl.runner.supervisor", "--driver", driver]
    if install is not None:
        argv += ["--install", str(install)]
    if adopt is not None:
        argv += ["--adopt", str(adopt)]
    return [*argv, name]


def start(ref: GuestRef, driver: str, install: Path | None = None, timeout: float = START_TIMEOUT) -> Started:
    """Spawn a detached supervisor and wait until the hypervisor is up (or the start failed).

    A guest whose supervisor died while its hypervisor still runs is adopted instead of started twice.
    """
    state = guest_state(ref.directory, ref.name)
    adopt = None
    if state.running and state.supervisor is None and state.pid:
        adopt = state.pid
    elif state.running:
        raise Conflict(f"{ref.name} is already {state.label()}")
    elif state.state == "Locked" and not state.stale:
        raise Conflict(f"{ref.name} is {state.label()}: another host runs it")
    read_end, write_end = os.pipe()
    env = {**os.environ, supervisor.READY_FD_ENV: str(write_end)}
    try:
        subprocess.Popen(supervisor_argv(ref.name, driver, install, adopt), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, pass_fds=(write_end,),
                         start_new_session=True, cwd="/")
    finally:
        os.close(write_end)
    try:
        message = _read_line(read_end, timeout)
    finally:
        os.close(read_end)
    if message.startswith("ok"):
        parts = message.split()
        return Started(ref.name, int(parts[1]) if len(parts) > 1 else 0, adopt is not None)
    if message.startswith("error: "):
        raise HivectlError(f"{ref.name}: {message[7:]}")
    raise HivectlError(f"{ref.name}: no answer from its supervisor within {timeout:.0f} s; "
                       f"see {ref.directory / 'vm-bhyve.log'}")


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


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
    (ref.directory / supervisor.STOPPING_FILE).write_text(f"{os.getpid()}\n")


def request_stop(driver: Driver, ref: GuestRef) -> None:
    state = running_state(ref)
    mark_stopping(ref)
    if state.pid:
        driver.request_shutdown(ref, state.pid)


def stop(host: Host, driver: Driver, refs: list[GuestRef], timeout: float, force_after: float = 10.0) -> list[str]:
    """ACPI shutdown for all guests at once, wait up to ``timeout``, then force power-off, then kill.

    Returns messages describing escalations (empty when every guest shut down cleanly).
    """
    notes: list[str] = []
    for ref in refs:
        request_stop(driver, ref)
    pending = wait_stopped(refs, timeout)
    for ref in pending:
        notes.append(f"{ref.name}: did not power off within {timeout:g} s; forcing power-off")
        state = guest_state(ref.directory, ref.name)
        driver.force_poweroff(ref, state.pid)
    pending = wait_stopped(pending, force_after)
    for ref in pending:
        notes.append(f"{ref.name}: still running after forced power-off; killing it")
        kill(host, driver, ref)
    return notes


def kill(host: Host, driver: Driver, ref: GuestRef) -> None:
    """Last resort: SIGKILL the hypervisor and supervisor, then clean up as the supervisor would."""
    import signal

    state = guest_state(ref.directory, ref.name)
    for pid in (state.pid, state.supervisor):
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    supervisor.cleanup(host, driver, ref, supervisor.recorded_teardown(ref.directory))


def restart(driver: Driver, ref: GuestRef) -> None:
    """vm-bhyve's restart: a one-shot flag, then an ACPI shutdown; the supervisor boots it again."""
    state = running_state(ref)
    (ref.directory / supervisor.RESTART_FILE).write_text("")
    if state.pid:
        driver.request_shutdown(ref, state.pid)


def reset(driver: Driver, ref: GuestRef) -> None:
    state = running_state(ref)
    driver.force_reset(ref, state.pid)


def poweroff(driver: Driver, ref: GuestRef, timeout: float = 10.0) -> bool:
    state = running_state(ref)
    mark_stopping(ref)
    driver.force_poweroff(ref, state.pid)
    return not wait_stopped([ref], timeout)


def startall(store: Store, driver: str, delay: float) -> tuple[list[Started], list[str]]:
    """Start ``vm_list`` in order with ``vm_delay`` between starts; failures do not stop the rest."""
    started: list[Started] = []
    errors: list[str] = []
    names = store.settings.vm_list
    for index, name in enumerate(names):
        try:
            ref = store.get(name)
            if guest_state(ref.directory, name).running:
                continue
            started.append(start(ref, driver))
        except HivectlError as error:
            errors.append(str(error))
        if delay and index < len(names) - 1:
            time.sleep(delay)
    return started, errors


def running_guests(store: Store) -> list[GuestRef]:
    return [ref for ref in store.iter_guests() if guest_state(ref.directory, ref.name).running]
