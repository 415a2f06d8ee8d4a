"""What a guest is doing right now, read from files without spawning a process per guest.

Files in the guest directory (vm-bhyve's ``lib/vm-run``; names and first lines kept for compatibility; the names
are defined in ``hivectl/model/layout.py``):
- ``run.lock``: first line the host name (vm-bhyve reads only that); hivectl adds ``pid=<supervisor>``,
  ``start=<its start time>`` and ``boot=<boot id>`` so a stale lock (dead supervisor, reused pid, rebooted
  host) can be told from a live one;
- ``hivectl.state``: JSON written atomically by the supervisor: ``{"state": "spawning"|"running"|
  "bootloader"|"stopping", "pid": <hypervisor pid>, "start": <its start time>, ...}``; ``spawning`` is the
  intent written before the hypervisor is started (with the time and the program), so a hypervisor whose
  supervisor died before recording its pid is still found, by name and start time.

A recorded pid is only believed together with its start time and a command line naming the guest
(``hivectl/host/identity.py``): a pid reused by another process reads as gone, so ``list`` never shows
that process as the guest and ``start``/``stop`` never adopt or signal it.
- ``console``: ``comN=/dev/nmdm-NAME.NB`` lines and ``vnc=ip:port``;
- ``NAME.save``: suspended state.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from hivectl.host import identity
from hivectl.model.layout import CONSOLE, RUN_LOCK, SUPERVISOR_STATE, suspend_name
from hivectl.records import record


@cache
def hostname() -> str:
    """This host's name as ``socket.gethostname()`` gives it: uname(2)'s nodename, which is what
    gethostname(3) reads on Linux (glibc) and FreeBSD (kern.hostname), without importing ``socket``."""
    return os.uname().nodename


@cache
def boot_id() -> str:
    """An identifier that changes at every host boot (a lock from an earlier boot is stale)."""
    for path in ("/proc/sys/kernel/random/boot_id",):
        try:
            return Path(path).read_text().strip()
        except OSError:
            continue
    from hivectl.errors import HivectlError
    from hivectl.host.local import LocalHost

    try:
        return LocalHost().run(["sysctl", "-n", "kern.boottime"], check=False).stdout.strip()
    except (OSError, HivectlError):
        return ""


@record(frozen=True)
class Lock:
    """The parsed ``run.lock``."""

    host: str
    pid: int = 0
    boot: str = ""
    start: str = ""  # the supervisor's start time (``hivectl.host.identity``); empty in older locks

    @property
    def local(self) -> bool:
        return self.host == hostname()

    @property
    def from_earlier_boot(self) -> bool:
        return bool(self.boot) and self.boot != boot_id()


def _read(path: str) -> bytes:
    """A small run-time file with three system calls (``list`` and a metrics scrape read two per running
    guest; pathlib's path handling and a text-mode ``open()`` cost more than the read). FileNotFoundError
    when it is missing, as ``Path.read_text``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:  # a short read of a regular file is its end
            chunks.append(os.read(fd, 1 << 16))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_lock(directory: Path) -> Lock | None:
    try:
        text = _read(f"{directory}/{RUN_LOCK}").decode(errors="replace")
    except FileNotFoundError:
        return None
    lines = text.splitlines()
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    pid = int(fields["pid"]) if fields.get("pid", "").isdigit() else 0
    # An empty lock is what a power loss leaves behind (vm-bhyve PR#555): treat it as ours and stale.
    host = lines[0].strip() if lines and lines[0].strip() else hostname()
    return Lock(host, pid, fields.get("boot", "") if lines else "stale", fields.get("start", ""))


def supervisor_alive(lock: Lock) -> bool:
    """The lock's supervisor still runs: the same pid with the same start time (a lock without one, from
    an older hivectl, is not trusted: its guest reads as stale unless its hypervisor is identified)."""
    return bool(lock.pid) and identity.matches(lock.pid, lock.start)


def hypervisor_pid(state: dict[str, object], name: str) -> int | None:
    """The live hypervisor (or loader) of a run, by its recorded identity; else one found by name that
    started after the run's recorded intent and carries its token (its supervisor died between spawning it
    and recording it)."""
    raw_pid = state.get("pid")
    if isinstance(raw_pid, int) and identity.matches(raw_pid, state.get("start"), name):
        return raw_pid
    intent, program, token = state.get("intent"), state.get("program"), state.get("token")
    if state.get("state") == "spawning" and isinstance(intent, int | float) and isinstance(program, str) \
            and isinstance(token, str) and token:
        found = identity.find(name, program, after=float(intent), token=token)
        if len(found) == 1:
            return found[0].pid
    return None


def read_json(path: Path) -> dict[str, object]:
    """A JSON object from a state file; missing or damaged files read as empty."""
    try:
        data = json.loads(_read(str(path)).decode())  # invalid UTF-8 is a ValueError, as read_text's
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_state(directory: Path) -> dict[str, object]:
    return read_json(directory / SUPERVISOR_STATE)


@record(frozen=True)
class GuestState:
    """A guest's state as ``list`` shows it."""

    state: str  # Running, Bootloader, Stopping, Stopped, Locked, Suspended
    pid: int | None = None  # the hypervisor (or loader) process
    host: str | None = None
    stale: bool = False  # Stopped (or Suspended) with a dead run of this host left to clear (lock, taps, VM)
    supervisor: int | None = None  # None when the supervisor is gone but the hypervisor still runs

    @property
    def running(self) -> bool:
        return self.state in ("Running", "Bootloader", "Stopping", "Starting")

    def label(self) -> str:
        if self.running and self.pid:
            return f"{self.state} ({self.pid})"
        if self.state == "Locked":
            return f"Locked ({self.host})"
        return self.state


def guest_state(directory: Path, name: str) -> GuestState:
    """Decide the state from the lock, the supervisor's state file and the saved-state file.

    A guest runs while its supervisor *or* its hypervisor is alive: the hypervisor outlives a supervisor
    killed with SIGKILL, and ``list`` must keep showing it as running (``start`` adopts it again).

    A run of this host that is provably over (its lock is from an earlier boot, or neither the lock's
    supervisor nor the recorded hypervisor is still the process that was recorded: dead, or its pid now
    belongs to another process) is not a lock: the guest is Stopped (or Suspended), with ``stale`` set so
    that the next ``start`` or ``stop`` tears down what that run left (``hivectl/runner/stale.py``).
    vm-bhyve's ``list`` (lib/vm-core) shows ``Locked (HOST)`` for any ``run.lock`` of a stopped guest,
    because its lock holds only a host name and a leftover cannot be told from a live run; hivectl keeps
    that for such a lock (one vm-bhyve wrote) and for another host's lock, and tells its own apart.
    """
    lock = read_lock(directory)
    at_rest = "Suspended" if os.path.exists(f"{directory}/{suspend_name(name)}") else "Stopped"
    if lock is None:
        return GuestState(at_rest)
    if not lock.local:
        return GuestState("Locked", host=lock.host)
    if lock.from_earlier_boot:
        return GuestState(at_rest, host=lock.host, stale=True)
    if not lock.pid:
        # Written by vm-bhyve (host name only): we cannot tell from files alone; show it as vm-bhyve does.
        return GuestState("Locked", host=lock.host)
    state = read_state(directory)
    watching = supervisor_alive(lock)
    raw_pid = state.get("pid")
    if watching and state.get("state") != "spawning":
        # Our live supervisor wrote this pid; it is still checked, as the hypervisor may have exited.
        hyp_pid = raw_pid if isinstance(raw_pid, int) and identity.matches(raw_pid, state.get("start"), name) \
            else None
    else:
        hyp_pid = None if watching else hypervisor_pid(state, name)
    if not watching and hyp_pid is None:
        return GuestState(at_rest, host=lock.host, stale=True)
    label = {"running": "Running", "bootloader": "Bootloader", "stopping": "Stopping",
             "starting": "Starting", "spawning": "Starting"}.get(str(state.get("state", "")), "Running")
    if not watching and state.get("state") == "spawning":
        label = "Running"
    return GuestState(label, hyp_pid, lock.host, supervisor=lock.pid if watching else None)


def console_lines(directory: Path) -> dict[str, str]:
    """``comN``/``vnc`` entries of the ``console`` file written while the guest runs."""
    result: dict[str, str] = {}
    try:
        text = (directory / CONSOLE).read_text(errors="replace")
    except FileNotFoundError:
        return result
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key not in result:
            result[key] = value
    return result
