"""The ``ssh`` command line that reaches a remote: OpenSSH's client, argv only, never a shell here.

Options (ssh(1), ssh_config(5)):

* ``BatchMode=yes``: never ask for a password or a passphrase; a host that needs one fails at once;
* ``ControlMaster=auto``, ``ControlPersist=60``, ``ControlPath=DIR/%C``: the first call opens a master
  connection that later calls share for a minute, so the second call pays no TCP, key exchange or
  authentication (docs/remotes.md has the measured figures). ``DIR`` is a directory of this user's, mode
  0700 (``$XDG_RUNTIME_DIR/hivectl-ssh``, else ``/tmp/hivectl-ssh-UID``); if it cannot be made safe the
  connection is not shared. ``%C`` is a hash of the local host, remote host, port and user, short enough
  for a socket path. ``HIVECTL_SSH_CONTROL=no`` turns sharing off;
* ``ConnectTimeout``: an unreachable host is an error within seconds (``list --all-remotes``);
* ``-T``: no terminal; the request and the answer are the session's stdin and stdout;
* ``--`` before the destination, which is validated anyway (hivectl/remote/config.py), so that nothing the
  file holds can be read as an option.

The command the remote runs is ``COMMAND _serve`` (or ``_stream``): sshd hands it to the remote user's
shell, so the command path is quoted for it (and may hold no shell characters in the first place); the
request itself travels on stdin as JSON, never on a command line (where ``ps`` would show it).
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from hivectl.remote.config import RemoteSpec

CONNECT_TIMEOUT = 10
PERSIST = 60


def control_dir() -> Path | None:
    """Where master sockets live: a directory of ours, mode 0700, or None (no sharing) when it is not."""
    if os.environ.get("HIVECTL_SSH_CONTROL", "").lower() in ("no", "0", "off"):
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    where = Path(runtime, "hivectl-ssh") if runtime else Path(f"/tmp/hivectl-ssh-{os.getuid()}")
    try:
        where.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(where)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # someone else's, or open to others: a socket there could be another user's master
    return where


def argv(remote: RemoteSpec, words: list[str]) -> list[str]:
    """``ssh ... -- DESTINATION 'COMMAND' WORDS...`` for ``remote``; ``words`` are fixed hivectl words."""
    line = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
    sockets = control_dir()
    if sockets is not None:
        line += ["-o", "ControlMaster=auto", "-o", f"ControlPersist={PERSIST}", "-o", f"ControlPath={sockets}/%C"]
    else:
        line += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    if remote.identity is not None:
        line += ["-o", "IdentitiesOnly=yes", "-i", remote.identity]
    if remote.known_hosts is not None:
        line += ["-o", f"UserKnownHostsFile={remote.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    if remote.port is not None:
        line += ["-p", str(remote.port)]
    if remote.user is not None:
        line += ["-l", remote.user]
    return [*line, "--", remote.host, " ".join([shlex.quote(remote.command), *(shlex.quote(w) for w in words)])]
