"""Long-running and interactive processes: the only module outside ``Host.run`` that starts a program.

``Host.run`` covers short commands whose output is collected. Everything else hivectl starts goes through
here, so the project's process rules hold in one checkable place (ruff's subprocess rules are on
everywhere except ``hivectl/host/``):

- ``spawn``: a boot loader, a hypervisor (``bhyve``, QEMU), swtpm, an adopting supervisor; returns the
  ``Process`` handle whose ``wait``/``poll``/``kill`` the caller uses; stdio, environment, inherited
  descriptors and a new session are explicit arguments;
- ``spawn_detached``: a program that must outlive the caller and never become its zombie (a supervisor
  started by a caller with threads, such as hivectld), through a double fork (``hivectl/host/detach.py``);
- ``fork_detached``: a supervisor for a fresh start, forked from ``hivectl start`` itself so that it
  neither starts a second interpreter nor imports again what the command line already has
  (benchmarks/README.md, "start");
- ``fork_serving``: a child of the start-up server (``hivectl zygote``) that runs one command and leaves
  with its status; ``reexec`` makes that server a fresh copy of itself;
- ``run_hook``: a user's hook (vm-bhyve's ``prestart``) run to completion with a time limit;
- ``interactive``: a program that shares the terminal (``$EDITOR``); returns its exit status;
- ``replace``: this process becomes another program (``cu``, ``tmux attach``), as vm-bhyve's ``console``
  does with ``exec``;
- ``become_waiter``: a supervisor becomes its lean waiting phase (``hivectl/host/waiter.py``) while its
  hypervisor runs, and ``Child`` waits for that hypervisor by pid once it is back (docs/architecture.md,
  "Supervision memory").

Argv lists only, never ``shell=True``, never a command string: a guest's name or a path with spaces or
semicolons is one argument, as execve(2) passes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hivectl.errors import HivectlError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import NoReturn

Process = subprocess.Popen[bytes]
"""A started program: ``pid``, ``args``, ``wait(timeout)``, ``poll()``, ``terminate()``, ``kill()``."""
TimeoutExpired = subprocess.TimeoutExpired
"""Raised by ``Process.wait(timeout)`` while the program still runs."""
DEVNULL = subprocess.DEVNULL
"""For ``spawn``'s stdio arguments: the null device."""


def spawn(argv: Sequence[str], *, stdin: int | None = DEVNULL, stdout: int | None = DEVNULL,
          stderr: int | None = DEVNULL, env: Mapping[str, str] | None = None, cwd: str | Path = "/",
          pass_fds: Sequence[int] = (), new_session: bool = False) -> Process:
    """Start ``argv`` and return at once; ``None`` for a stdio argument means "inherit mine".

    ``env`` is the whole environment of the child (callers merge ``os.environ`` themselves, so what a
    child sees is decided at the call site); ``None`` inherits this process's environment. Descriptors
    other than 0-2 and ``pass_fds`` are closed in the child.
    """
    args = [str(arg) for arg in argv]
    if not args:
        raise ValueError("empty argv")
    try:
        return subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=stderr,
                                env=None if env is None else dict(env), cwd=cwd, close_fds=True,
                                pass_fds=tuple(pass_fds), start_new_session=new_session)
    except FileNotFoundError:
        raise HivectlError(f"{args[0]}: command not found") from None


DETACH = Path(__file__).resolve().with_name("detach.py")
"""The double fork's middle program (``hivectl/host/detach.py``), run by path: it imports nothing of hivectl."""


def spawn_detached(argv: Sequence[str], *, env: Mapping[str, str], pass_fds: Sequence[int] = (),
                   timeout: float = 60.0) -> int:
    """Start ``argv`` in its own session as init's child, not this process's, and return its pid.

    For callers that cannot ``fork_detached`` (they run threads) and do not wait for what they start: a
    ``spawn`` child that exits is this process's zombie until someone reaps it, and hivectld, which starts
    supervisors for guests that run for months, never does (docs/architecture.md, "Running a guest").
    ``detach.py`` forks once more and exits as soon as the program is exec'd; this reaps it at once, and
    the program, re-parented to init, is reaped there. Why a double fork rather than a reaper in the
    daemon is in ``detach.py``. The program gets the null device on 0-2, ``env`` as its environment,
    ``pass_fds`` and no other descriptor, ``/`` as its directory; a program that cannot be run is a
    ``HivectlError`` here, as with ``spawn``.
    """
    args = [str(arg) for arg in argv]
    if not args:
        raise ValueError("empty argv")
    if "/" in args[0]:
        program: str | None = args[0]
    else:
        import shutil  # here, not at the top: the start path's imports are counted (benchmarks/README.md)

        program = shutil.which(args[0], path=env.get("PATH", os.defpath))
    if program is None:
        raise HivectlError(f"{args[0]}: command not found")
    unset = [] if "LC_CTYPE" in env else ["--unset", "LC_CTYPE"]  # what the middle interpreter adds (PEP 538)
    middle = subprocess.Popen([sys.executable, "-I", "-S", str(DETACH), *unset, "--", os.path.abspath(program),
                               *args[1:]],
                              stdin=DEVNULL, stdout=subprocess.PIPE, stderr=DEVNULL, env=dict(env), cwd="/",
                              close_fds=True, pass_fds=tuple(pass_fds))
    try:
        said, _ = middle.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        middle.kill()
        middle.wait()
        raise HivectlError(f"cannot start {args[0]}: {DETACH.name} gave no answer within {timeout:g} s") from None
    line = said.decode(errors="replace").strip()
    if middle.returncode == 0 and line.isdigit():
        return int(line)
    raise HivectlError(line.removeprefix("error: ") or f"cannot start {args[0]}: {DETACH.name} exited with "
                       f"status {middle.returncode}")


def single_threaded() -> bool:
    """Whether this process runs one thread only, so that fork(2) may be used (``fork_detached``).

    A daemon or an API caller with threads must not fork: the child would inherit every lock another
    thread held at that moment, held for ever. ``threading`` not imported means no thread was started
    through it; otherwise it is asked.
    """
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() <= 1


def _fork(refusal: str) -> int:
    """fork(2) for ``fork_detached`` and ``fork_serving``: refused with ``refusal`` in a process with other
    threads (``single_threaded``), and after this process's buffered output is written, so that the child
    does not write it a second time."""
    if not single_threaded():
        raise HivectlError(refusal)
    sys.stdout.flush()
    sys.stderr.flush()
    return os.fork()


def fork_detached(body: Callable[[], int], *, env: Mapping[str, str], keep_fds: Sequence[int] = ()) -> int:
    """Run ``body`` in a forked child in its own session and return the child's pid at once.

    The child is what ``spawn(..., new_session=True)`` would give a program: a new session (setsid(2)),
    ``/`` as its directory, the null device on 0-2, every other descriptor closed but ``keep_fds`` (so no
    descriptor, and no flock(2) held through one, outlives the parent's use of it; fcntl(2) locks are
    never inherited by fork(2)), ``env`` as its whole environment (``os.environ``, so what it execs later
    sees the same). It leaves with os._exit(2) and ``body``'s status: nothing of the parent's (atexit
    handlers, buffered output) runs twice. The caller must have no other threads (fork(2) copies only
    the calling one).
    """
    pid = _fork("fork_detached: this process runs several threads; spawn a program instead")
    if pid:
        return pid
    status = 70  # EX_SOFTWARE, sysexits(3): the child failed before ``body`` decided
    try:
        os.setsid()
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        keep = sorted({fd for fd in keep_fds if fd > 2})
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, max(os.sysconf("SC_OPEN_MAX"), low))
        os.environ.clear()
        os.environ.update(env)
        status = body()
    except KeyboardInterrupt:
        status = 130  # SIGINT ends a detached supervisor (after its cleanup): the shell's 128 + 2
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else 1
    except BaseException:  # a forked child must never return into the parent's code
        status = 70
    finally:
        os._exit(status)


def fork_serving(body: Callable[[], NoReturn]) -> int:
    """Fork a child that runs ``body`` (which leaves with os._exit(2) itself) and return its pid.

    For the start-up server (``hivectl.cli.zygote.server``): unlike ``fork_detached`` the child keeps its
    descriptors and environment, because it takes the caller's over itself before anything else. Only
    a single-threaded process may fork (``single_threaded``).
    """
    pid = _fork("fork_serving: this process runs several threads")
    if pid:
        return pid
    try:
        body()
    finally:
        os._exit(70)  # EX_SOFTWARE: ``body`` returned or raised, which it must not


def reexec() -> NoReturn:
    """Become a fresh copy of this program: the same interpreter and the same command line
    (``sys.orig_argv``), so that it imports its modules again from their files."""
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, *sys.orig_argv[1:]]
    os.execv(argv[0], argv)


def run_hook(argv: Sequence[str], *, cwd: Path, timeout: float) -> int:
    """Run a user's hook to completion without a terminal; its exit status (OSError/TimeoutExpired raised)."""
    done = subprocess.run([str(arg) for arg in argv], cwd=cwd, stdin=DEVNULL, capture_output=True,
                          timeout=timeout, check=False)
    return done.returncode


def interactive(argv: Sequence[str]) -> int:
    """Run a program on this terminal (an editor) and return its exit status; OSError if it cannot start."""
    return subprocess.call([str(arg) for arg in argv])


def replace(argv: Sequence[str]) -> NoReturn:
    """Become ``argv`` (execvp(3), looked up on PATH); a one-line error if it cannot be run."""
    args = [str(arg) for arg in argv]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(args[0], args)
    except OSError as error:
        raise HivectlError(f"cannot run {args[0]}: {error.strerror}") from None


def capture(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 10.0) -> str:
    """A short query's standard output, whatever its exit status (``ps -p PID`` exits 1 for no such
    process, which simply reads as no output); OSError if it cannot be started."""
    try:
        done = subprocess.run([str(arg) for arg in argv], stdin=DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False, env=None if env is None else dict(env))
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout


class Child:
    """A child known by its pid only: the hypervisor a supervisor spawned before it exec'd through the
    lean waiter and back (``become_waiter``). It is still this process's child, so waitpid(2) works; this
    offers the ``Process`` methods a supervisor uses (``wait``, ``poll``, ``terminate``, ``kill``).

    ``returncode`` may be given when the waiter already reaped the child and passed its status on.
    """

    def __init__(self, pid: int, returncode: int | None = None) -> None:
        self.pid = pid
        self.returncode = returncode

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -9  # reaped elsewhere, or not ours: it is gone, its status unknown
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


WAITER = Path(__file__).resolve().with_name("waiter.py")
"""The lean waiter program (``hivectl/host/waiter.py``), run by path: it imports nothing of hivectl."""


def waiter_argv(child: int, trap: Sequence[int], back: Sequence[str]) -> list[str]:
    """The waiter's command line: ``python3 -I -S waiter.py --child PID [--trap N,..] -- BACK...``."""
    argv = [sys.executable, "-I", "-S", str(WAITER), "--child", str(child)]
    if trap:
        argv += ["--trap", ",".join(str(int(number)) for number in trap)]
    return [*argv, "--", *back]


def become_waiter(child: int, trap: Sequence[int], back: Sequence[str], blocked: Sequence[int]) -> None:
    """Exec this process into the lean waiter (docs/architecture.md, "Supervision memory"); returns only
    when that cannot be done (``HivectlError``), with the signal mask as it was.

    ``blocked`` are blocked across the exec (execve(2) keeps the mask and pending signals), so a signal
    that arrives before the waiter installed its handler waits for it instead of killing the process.
    """
    argv = waiter_argv(child, trap, back)
    if not WAITER.is_file():
        raise HivectlError(f"{WAITER}: missing")
    sys.stdout.flush()
    sys.stderr.flush()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        os.execv(argv[0], argv)
    except OSError as error:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        raise HivectlError(f"cannot run {argv[0]}: {error.strerror}") from None
