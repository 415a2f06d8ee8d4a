"""Who a pid is: its start time and its command line, so a recorded pid is never trusted alone.

A pid is reused once its process is gone: a state file that says "bhyve is pid 4242" may, after a crash
and a while, point at a shell or a database. hivectl therefore records with every pid the process's start
time and checks, before it shows a guest as running, adopts a hypervisor or signals anything, that the
process now behind that pid started at the same moment and still names the guest:

- FreeBSD's bhyve sets its title to ``bhyve: NAME`` (setproctitle(3) in usr.sbin/bhyve/bhyverun.c), and
  ``ps -o lstart=,command= -p PID`` (ps(1)) shows that title and the start time;
- on Linux the start time is field 22 of ``/proc/PID/stat`` (clock ticks since boot, proc(5)) and the
  command line is ``/proc/PID/cmdline``; QEMU names its guest with ``-name NAME`` or ``-name guest=NAME``
  (qemu(1)), and the simulated FreeBSD host (which runs on Linux) rewrites its bhyve's command line to the
  title the way setproctitle does.

Reading ``/proc`` spawns nothing, so ``list`` stays cheap on Linux; on FreeBSD one ``ps`` runs per
recorded live pid. A process we cannot inspect reads as "unknown" (None), which callers treat as "not
ours": hivectl would rather show a guest Stopped than signal a stranger.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from hivectl.records import record


@record(frozen=True)
class ProcessIdentity:
    """A live process as the kernel describes it: ``start`` is an exact token (equal for one process,
    different for a later process with the same pid), ``started`` the same moment in epoch seconds (for
    "started after" comparisons), ``argv`` the command line (or the title's words)."""

    pid: int
    start: str
    started: float
    argv: tuple[str, ...]

    def record(self) -> dict[str, object]:
        """The fields written next to a pid in a state or lock file."""
        return {"pid": self.pid, "start": self.start, "command": " ".join(self.argv)[:200]}

    def names(self, guest: str) -> bool:
        """Whether the command line names ``guest`` (see :func:`names_guest`)."""
        return names_guest(self.argv, guest)


def names_guest(argv: tuple[str, ...] | list[str], guest: str) -> bool:
    """True when a command line belongs to guest ``guest``: bhyve's title ``bhyve: NAME``, bhyve's last
    argument (the VM name), QEMU's ``-name NAME`` / ``-name guest=NAME,...``, a loader's ``-m``-style
    trailing name, or hivectl's supervisor (whose last argument is the guest name)."""
    words = [word for arg in argv for word in arg.split()] if len(argv) == 1 else list(argv)
    if not words:
        return False
    if " ".join(argv[:1]) == f"bhyve: {guest}" or words[-1] == guest:
        return True
    for index, word in enumerate(words[:-1]):
        if word == "-name":
            value = words[index + 1]
            first = value.split(",", 1)[0]
            if first in (guest, f"guest={guest}") or f",guest={guest}," in f",{value},":
                return True
    return False


@cache
def _boot_time() -> float:
    """Linux: the epoch second the host booted (``btime`` in /proc/stat); read once per process (it is
    constant for a boot, and /proc/stat is long: a scrape of 500 guests read it 1,000 times)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return time.time() - time.monotonic()


def _proc_read(path: str) -> bytes:
    """A small /proc file in one read (``list`` and a metrics scrape read two per running guest; pathlib's
    path parsing cost more than the read itself)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:  # a command line longer than one read
            chunks.append(os.read(fd, 1 << 16))
        return b"".join(chunks)
    finally:
        os.close(fd)


PF_KTHREAD = 0x00200000
"""The ``flags`` bit (field 9 of /proc/PID/stat, proc(5); include/linux/sched.h) of a kernel thread, whose
command line is always empty."""

EXEC_SETTLE = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032)
"""Pauses (seconds, 63 ms in all) before an empty command line of a user process is read again."""


def _linux(pid: int) -> ProcessIdentity | None:
    try:
        stat = _proc_read(f"/proc/{pid}/stat")
        raw = _proc_read(f"/proc/{pid}/cmdline")
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        if fields[0] in (b"Z", b"X"):
            return None  # a zombie has finished: nothing of it is left to trust or signal
        ticks = int(fields[19])
        kernel_thread = bool(int(fields[6]) & PF_KTHREAD)
    except (IndexError, ValueError):
        return None
    if not raw and not kernel_thread:
        raw = _settled_cmdline(pid)
    argv = tuple(part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0") if part)
    started = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    return ProcessIdentity(pid, str(ticks), round(started, 2), argv)


def _settled_cmdline(pid: int) -> bytes:
    """The command line of a user process caught inside execve(2).

    A parent's ``Popen`` returns once the child's close-on-exec pipe closes, which the kernel does in the
    middle of execve, before the new image's argument area exists: for that moment /proc/PID/cmdline
    reads empty (fs/proc/base.c get_mm_cmdline; CI caught a just-spawned hypervisor so, and adoption
    would have missed it). Such a line is read again for a few milliseconds; a process that is exiting
    (no memory left to read) stays empty and costs at most :data:`EXEC_SETTLE` in all.
    """
    for pause in EXEC_SETTLE:
        time.sleep(pause)
        try:
            raw = _proc_read(f"/proc/{pid}/cmdline")
        except OSError:
            return b""
        if raw:
            return raw
    return b""


def _freebsd(pid: int, env: Mapping[str, str] | None = None) -> ProcessIdentity | None:
    from hivectl.host import process

    try:
        out = process.capture(["ps", "-ww", "-o", "lstart=,state=,command=", "-p", str(pid)], env=env)
    except OSError:
        return None
    line = out.strip()
    # lstart is a fixed 24-character date (``Thu Dec  3 06:16:03 2026``), then the state, then the command
    # or title; a zombie (state Z) has exited and is nothing to trust or signal.
    if len(line) < 25:
        return None
    stamp, rest = line[:24], line[24:].split(None, 1)
    if not rest or rest[0].startswith("Z"):
        return None
    command = rest[1] if len(rest) > 1 else ""
    try:
        started = time.mktime(time.strptime(stamp, "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        return None
    return ProcessIdentity(pid, stamp, started, tuple(command.split()))


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process; a zombie (exited, waiting to be reaped) counts as dead.

    The one liveness test of the package: run-time state (``hivectl.runtime``) and the collection of a
    dead writer's temp files (``hivectl.rcfile``) both ask it. ``kill(pid, 0)`` (kill(2)) says whether the
    pid exists; EPERM means it exists but belongs to someone else. A zombie still has its pid, so Linux's
    ``/proc/PID/stat`` state field (proc(5)) is read too; where it cannot be read the pid counts as alive
    (the careful answer for both callers: keep a lock, keep a temp file). This says nothing about *who*
    the process is: use :func:`matches` before trusting or signalling it.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")
    except (OSError, ValueError):
        return True


def linux_proc() -> bool:
    """Whether this kernel has Linux's /proc (FreeBSD's procfs, when mounted, has no ``stat`` files)."""
    return sys.platform.startswith("linux") or Path("/proc/self/stat").is_file()


def identify(pid: int | None) -> ProcessIdentity | None:
    """The live process ``pid`` now is, or None (gone, a zombie, or not inspectable)."""
    if not pid or pid <= 0:
        return None
    return _linux(pid) if linux_proc() else _freebsd(pid)


def matches(pid: int | None, start: object, guest: str | None = None) -> bool:
    """True when ``pid`` is still the process recorded with start token ``start`` (and names ``guest``).

    A record without a start token (written by an older hivectl) is never trusted.
    """
    if not isinstance(start, str) or not start:
        return False
    current = identify(pid)
    if current is None or current.start != start:
        return False
    return guest is None or current.names(guest)


def processes() -> Iterator[ProcessIdentity]:
    """Every process this host shows (Linux: /proc; FreeBSD: one ``ps -ax``)."""
    if linux_proc():
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                found = _linux(int(entry.name))
                if found is not None:
                    yield found
        return
    from hivectl.host import process

    try:
        out = process.capture(["ps", "-ax", "-ww", "-o", "pid=,lstart=,state=,command="])
    except OSError:
        return
    for line in out.splitlines():
        pid_text, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if not pid_text.isdigit() or len(rest) < 25:
            continue
        try:
            started = time.mktime(time.strptime(rest[:24], "%a %b %d %H:%M:%S %Y"))
        except ValueError:
            continue
        tail = rest[24:].split(None, 1)
        if tail and not tail[0].startswith("Z"):
            yield ProcessIdentity(int(pid_text), rest[:24], started, tuple(tail[1].split()) if len(tail) > 1 else ())


START_SLACK = 2.0  # seconds: whole-second lstart (FreeBSD, procps) plus procps' truncated btime (Linux)

TOKEN_ENV = "HIVECTL_RUN_TOKEN"  # noqa: S105 (a variable name, not a secret)
"""Put in a hypervisor's environment by its supervisor and recorded in the run's intent, so the process
is found again by a token no other process carries (``find``'s ``token``)."""


def carries(pid: int, token: str) -> bool:
    """Whether process ``pid`` has ``HIVECTL_RUN_TOKEN=token`` in its environment (Linux:
    /proc/PID/environ; FreeBSD: ``ps -e``, which appends the environment to the command)."""
    marker = f"{TOKEN_ENV}={token}"
    if linux_proc():
        try:
            return marker.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
    from hivectl.host import process

    try:
        return marker in process.capture(["ps", "-e", "-ww", "-o", "command=", "-p", str(pid)]).split()
    except OSError:
        return False


def _head_is(word: str, program: str) -> bool:
    """A command's first word (a path, or a title such as bhyve's ``bhyve: NAME``) is ``program``."""
    base = word.rsplit("/", 1)[-1]
    return base == program or base.startswith(program) or word.startswith(f"{program}:")


def _after_options(words: list[str], with_argument: tuple[str, ...] = ()) -> list[str]:
    """``words`` from the first one that is not a leading option (``--`` ends the options); an option in
    ``with_argument`` takes the next word as its argument."""
    index = 0
    while index < len(words) and words[index].startswith("-") and words[index] != "-":
        if words[index] == "--":
            return words[index + 1:]
        index += 2 if words[index] in with_argument else 1
    return words[index:]


def runs(argv: tuple[str, ...] | list[str], program: str) -> bool:
    """Whether a command line is ``program``'s, in every form a spawned process has before it settles:

    - ``program ...`` (a path's base name; QEMU's ``qemu-system-ARCH`` for ``qemu``), or its title (bhyve's
      ``bhyve: NAME``, set by setproctitle(3) only late in its start-up);
    - a script run by its interpreter, ``python3 -S /path/program ...`` (the interpreter's options
      skipped): how ps(1) and /proc show any ``#!`` program, among them the simulated host's stand-ins;
    - ``jexec [-l] [-u USER | -U USER] JAIL program ...`` (jexec(8)): a jailed guest's hypervisor is spawned
      as jexec, which attaches itself to the jail and then execs the command in the same process (same pid,
      start time and environment, so the run's token). Until that exec the process reads as jexec's; for
      the simulated host's jexec (a Python stand-in) that lasts two interpreter start-ups, long enough for
      the next command to look, on FreeBSD a few system calls. A supervisor killed in that window left
      its jailed bhyve unfound: ``start`` took the run for stale and its ``jail -r`` killed the guest.
    """
    words = list(argv)
    if not words:
        return False
    if _head_is(words[0], program):
        return True
    wrapper = words if words[0].rsplit("/", 1)[-1] == "jexec" else _after_options(words[1:])
    if not wrapper:
        return False
    if wrapper is not words and wrapper[0].rsplit("/", 1)[-1] == program:
        return True  # the script an interpreter runs
    if wrapper[0].rsplit("/", 1)[-1] == "jexec":  # jexec itself, or the jexec script of an interpreter
        jailed = _after_options(wrapper[1:], ("-u", "-U"))[1:]  # past the options and the jail
        return bool(jailed) and runs(jailed, program)
    return False


def find(guest: str, program: str, after: float | None = None, token: str | None = None) -> list[ProcessIdentity]:
    """Live processes of ``guest`` whose command line is ``program``'s (:func:`runs`: its first word or
    title, the script of an interpreter, or the command of a jexec(8) that has not exec'd it yet), started
    at or after ``after`` (epoch seconds, with the start time's granularity allowed for: ``START_SLACK``), and
    carrying ``token`` in their environment if one is given."""
    found = []
    for proc in processes():
        if proc.pid == os.getpid() or not proc.argv or not runs(proc.argv, program):
            continue
        if not proc.names(guest):
            continue
        # ps(1)'s lstart is whole seconds; procps derives it from /proc/stat's btime, itself truncated to
        # the second, so on Linux the figure can be up to two seconds before the real start.
        if after is not None and proc.started < after - START_SLACK:
            continue
        if token is not None and not carries(proc.pid, token):
            continue
        found.append(proc)
    return found
