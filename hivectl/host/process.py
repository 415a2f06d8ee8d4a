"""Long-running and interactive processes: the only module outside ``Host.run`` that starts a program.

``Host.run`` covers short commands whose output is collected. Everything else hivectl starts goes through
here, so the project's process rules hold in one checkable place (ruff's subprocess rules are on
everywhere except ``hivectl/host/``):

- ``spawn``: a supervisor, a boot loader, a hypervisor (``bhyve``, QEMU), swtpm; returns the ``Process``
  handle whose ``wait``/``poll``/``kill`` the caller uses; stdio, environment, inherited descriptors and
  a new session are explicit arguments;
- ``run_hook``: a user's hook (vm-bhyve's ``prestart``) run to completion with a time limit;
- ``interactive``: a program that shares the terminal (``$EDITOR``); returns its exit status;
- ``replace``: this process becomes another program (``cu``, ``tmux attach``), as vm-bhyve's ``console``
  does with ``exec``.

Argv lists only, never ``shell=True``, never a command string: a guest's name or a path with spaces or
semicolons is one argument, as execve(2) passes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from hivectl.errors import HivectlError

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
