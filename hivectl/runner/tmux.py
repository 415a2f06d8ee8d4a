"""console=tmux: a guest's supervisor runs in the foreground inside a detached tmux session.

vm-bhyve's tmux mode (``lib/vm-run``) gives each guest a session named after it with ``.`` replaced
by ``~`` (tmux uses ``.`` and ``:`` in target syntax, so they cannot appear in session names); com1 is the
session's terminal. Two vm-bhyve bugs are avoided here: ``console`` looks the session up by the *mapped*
name, and always with ``=`` (exact match), because tmux otherwise falls back to a prefix match and
``hivectl console g1`` would attach to ``g10`` once ``g1``'s session is gone.

Commands are argv lists: given more than one argument, tmux (3.0+) executes the command directly, not
through a shell; they run through the local ``Host``. The supervisor's environment is passed with ``-e``:
an already running tmux server gives new sessions *its* environment, not the caller's, so without it
``HIVECTL_VM_DIR`` and friends would be lost.
"""

from __future__ import annotations

import os
import shutil

from hivectl.errors import HivectlError
from hivectl.host.local import LocalHost

PREFIX = "tmux/"  # how the ``console`` file marks a tmux session (vm-bhyve's format)
FORWARDED = ("PATH", "PYTHONPATH")  # besides every HIVECTL_* variable


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        raise HivectlError("console=tmux but tmux is not installed (pkg install tmux), or use "
                           "'hivectl set console=nmdm'")


def forwarded_environment() -> dict[str, str]:
    """What the supervisor must see of this process's environment (the environment contract)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("HIVECTL_")}
    env.update({k: os.environ[k] for k in FORWARDED if k in os.environ})
    return env


def new_session_argv(session: str, command: list[str], env: dict[str, str]) -> list[str]:
    argv = ["tmux", "new-session", "-d", "-s", session, "-c", "/"]
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    return [*argv, *command]


def new_session(session: str, command: list[str], env: dict[str, str]) -> None:
    """Start ``command`` in a new detached session; tmux's own complaint becomes the error."""
    require_tmux()
    done = LocalHost().run(new_session_argv(session, command, env), check=False)
    if done.status != 0:
        said = done.stderr.strip().splitlines()
        raise HivectlError(f"tmux new-session -s {session} failed with status {done.status}"
                           + (f": {said[-1]}" if said else ""))


def has_session(session: str) -> bool:
    return LocalHost().run(["tmux", "has-session", "-t", f"={session}"], check=False).status == 0


def attach_argv(session: str) -> list[str]:
    """Attach from a plain terminal; from inside tmux, switch this client instead of nesting tmux."""
    if os.environ.get("TMUX"):
        return ["tmux", "switch-client", "-t", f"={session}"]
    return ["tmux", "attach-session", "-t", f"={session}"]
