"""Test-only step counter: kills a hivectl process (CLI or supervisor) just before its Nth step.

Loaded into every Python process of a test run through ``PYTHONWARNINGS=ignore::hivectl_faultpoint.Unused``
with this directory on ``PYTHONPATH``: the warnings filter names a category by module path, so the
interpreter imports this module at start-up, even under ``python -S`` (the supervisor), where
``sitecustomize`` is not read. It then installs a ``sys.addaudithook`` hook (PEP 578) that counts the
audit events that change the file system or start a process. Only processes whose role it recognises
count: ``python -m hivectl`` or ``python -S bin/hivectl`` ("cli"), ``python -m hivectl.runner.supervisor`` and
the child a CLI forks (``start``'s supervisor) ("supervisor"); the simulated host's stand-ins (also Python)
are left alone.

Environment: ``HIVECTL_FAULT_DIR`` (each counting process appends one line per step to
``<dir>/<role>.<pid>``), ``HIVECTL_FAULT_AT=ROLE:N`` (SIGKILL itself before step N of that role).
This file is test infrastructure and never part of hivectl.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
STEP_EVENTS = frozenset({
    "os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate", "os.chmod",
    "os.chown", "os.symlink", "os.link", "subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork",
})


class Unused(Warning):
    """The category the PYTHONWARNINGS filter names (never issued)."""


def _role(argv: list[str]) -> str | None:
    """The role from the interpreter's own arguments: the ``-m`` module, or the launcher script."""
    args = argv[1:]
    for index, arg in enumerate(args):
        if arg == "-m":
            module = args[index + 1] if index + 1 < len(args) else ""
            return {"hivectl": "cli", "hivectl.runner.supervisor": "supervisor"}.get(module)
        if not arg.startswith("-"):  # the script: bin/hivectl is the CLI, anything else (a stand-in) is not
            script = os.path.abspath(arg)
            is_launcher = os.path.basename(script) == "hivectl" and os.path.basename(os.path.dirname(script)) == "bin"
            return "cli" if is_launcher else None
    return None


def _is_step(event: str, args: tuple[Any, ...]) -> bool:
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return True
        return isinstance(flags, int) and bool(flags & WRITE_FLAGS)
    return event in STEP_EVENTS


def _install() -> None:
    directory = os.environ.get("HIVECTL_FAULT_DIR")
    role = _role(list(getattr(sys, "orig_argv", [])))
    if not directory or role is None:
        return
    at_role, _, at_text = os.environ.get("HIVECTL_FAULT_AT", "").partition(":")
    state: dict[str, Any] = {"quiet": True}

    def open_log(as_role: str) -> None:
        # A supervisor execs itself (through the lean waiter and back) under the same pid: its steps go on
        # counting from where the previous image stopped, so step N means one point of the whole run.
        path = os.path.join(directory, f"{as_role}.{os.getpid()}")
        log = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        state.update(log=log, path=path, kill_at=int(at_text) if at_role == as_role and at_text else 0,
                     count=os.pread(log, os.fstat(log).st_size, 0).count(b"\n"), quiet=False)

    def forked() -> None:
        # ``hivectl start`` forks its supervisor (hivectl/host/process.fork_detached): from the fork on, the
        # child counts as a supervisor of its own (the os.fork step itself is the command line's).
        old, state["quiet"] = state["log"], True  # the log's own open is no step of either process
        open_log("supervisor")
        os.close(old)

    open_log(role)
    if role == "cli":
        os.register_at_fork(after_in_child=forked)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if state["quiet"] or not _is_step(event, args):
            return
        state["count"] += 1
        what = str(args[0])[:200] if args else ""
        line = f"{state['count']}\t{event}\t{what}\n".encode(errors="replace")
        try:
            os.write(state["log"], line)
        except OSError:  # the forked supervisor closes every descriptor it did not keep: open the log again
            state["quiet"] = True
            state["log"] = os.open(state["path"], os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            state["quiet"] = False
            os.write(state["log"], line)
        if state["count"] == state["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)


_install()
