"""``swtpm socket`` (swtpm(8)): a TPM 2.0 emulator listening on a UNIX control socket, for bhyve's
``-l tpm,swtpm,SOCKET`` (its check of the socket: tests/simhost/bhyve.py, ``check_tpm``).

Takes what swtpm(8) takes for that use and refuses the rest: ``--tpmstate dir=DIR`` (an existing
directory: swtpm keeps the TPM's NV state there and fails without it), ``--ctrl type=unixio,path=PATH``,
``--tpm2``, ``--pid file=FILE``, ``--log file=FILE|fd=N[,level=N]``, ``--flags ...``. It binds the socket,
writes the pid file, keeps a ``tpm2-00.permall`` state file in DIR (created on first start, as swtpm's
libtpms NV store is) and runs until SIGTERM (swtpm's graceful end), then removes its socket. Each one
is listed in the host's state (``swtpm``: pid, start time, socket) while it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

from . import paths, state
from .common import die, proc_starttime, run

PROG = "swtpm"
STATE_FILE = "tpm2-00.permall"


def _options(text: str, allowed: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq or key not in allowed:
            die(PROG, f"Unknown parameter '{part}' for {option}", 1)
        out[key] = value
    return out


def main(args: list[str]) -> int:
    if not args or args[0] != "socket":
        die(PROG, "Unsupported TPM interface: use 'swtpm socket'", 1)
    args = args[1:]
    opts: dict[str, dict[str, str]] = {}
    tpm2 = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--tpm2":
            tpm2 = True
            i += 1
            continue
        allowed = {"--tpmstate": ("dir", "mode", "backend-uri"), "--ctrl": ("type", "path", "mode", "fd"),
                   "--pid": ("file", "fd"), "--log": ("file", "fd", "level", "truncate"),
                   "--flags": ("not-need-init", "startup-clear", "startup-state", "startup-deactivated",
                               "startup-none", "disable-auto-shutdown")}
        if arg not in allowed or i + 1 >= len(args):
            die(PROG, f"unrecognized option '{arg}'", 1)
        opts[arg] = _options(args[i + 1], allowed[arg], arg)
        i += 2
    if not tpm2:
        die(PROG, "this stand-in emulates TPM 2.0 only (--tpm2); bhyve's TPM is 2.0 only", 1)
    state_dir = opts.get("--tpmstate", {}).get("dir")
    if not state_dir or not os.path.isdir(paths.host_path(state_dir)):
        die(PROG, f"SWTPM_NVRAM_Init: Could not open directory '{state_dir}'", 1)
    ctrl = opts.get("--ctrl", {})
    if ctrl.get("type") != "unixio" or not ctrl.get("path"):
        die(PROG, "--ctrl: type=unixio with a path is required here", 1)
    sock_path = paths.host_path(ctrl["path"])
    nv = os.path.join(paths.host_path(state_dir), STATE_FILE)
    if not os.path.exists(nv):
        with open(nv, "wb") as fh:
            fh.write(os.urandom(64))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(sock_path)
    except OSError as error:
        die(PROG, f"Could not bind to {ctrl['path']}: {error.strerror}", 1)
    server.listen(4)
    with state.transaction() as data:  # so the fixture can end every swtpm of its host (SimHost.close)
        me = os.getpid()
        data.setdefault("swtpm", {})[str(me)] = {"pid": me, "starttime": proc_starttime(me), "socket": ctrl["path"],
                                                 "state": state_dir}
    pid_file = opts.get("--pid", {}).get("file")
    if pid_file:
        with open(paths.host_path(pid_file), "w") as fh:
            fh.write(f"{os.getpid()}\n")

    def stop(_sig: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.unlink(sock_path)
        with state.transaction() as data:
            data.get("swtpm", {}).pop(str(os.getpid()), None)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        conn, _ = server.accept()
        conn.close()


def swtpm_main() -> int:
    return run(main)
