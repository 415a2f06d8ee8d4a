"""One request, in the child the zygote forked for it: become the caller, then run the command line.

The order is what makes it safe:

1. the request is read and checked while nothing has changed yet: protocol, the package directory and
   interpreter the launcher would use (another checkout or Python: declined), hivectl's files against the
   zygote's stamp (changed: declined, and the server re-execs), the caller (a non-root zygote serves its
   own uid only), the command (``console`` and ``configure`` need a controlling terminal, which a forked
   child cannot have: declined);
2. the caller's credentials (from the socket, ``credentials.peer_of``), then its directory, umask,
   environment and standard descriptors; a step that fails declines, and the launcher runs the command;
3. ``run PID`` is sent and the launcher's ``go`` awaited: only then does the command run, so a launcher
   that gave up waiting (and runs the command itself) never sees it run twice;
4. ``hivectl.cli.main.main`` runs as in a fresh interpreter (``sys.argv``, ``sys.std*`` built anew over
   the caller's descriptors, atexit handlers at the end), and ``exit N`` goes back to the launcher.

The child is in a session of its own (setsid(2)): a signal to the zygote's process group does not reach
it, and the zygote's death changes nothing for it. What it forks (a guest's supervisor) is forked as the
command line forks it (``hivectl.host.process.fork_detached``): the same code path, state files and events.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

from hivectl.cli.zygote import DECLINED_STATUS, FIRST_ANSWER_TIMEOUT, MAGIC, STALE_STATUS, stamp
from hivectl.cli.zygote.credentials import Peer, become, peer_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

INTERACTIVE = frozenset({"console", "configure", "edit"})
"""Commands that need the caller's terminal as their controlling terminal (cu, tmux attach, $EDITOR)."""
HIDDEN = frozenset({"zygote", "_serve", "_stream"})
"""Words the command line runs that are not for a zygote: itself, and the long-lived ends of ``-H``."""
MAX_REQUEST = 4 << 20  # arguments plus environment: far above ARG_MAX on both platforms


class Declined(Exception):
    """The request is not served here; the launcher runs the command itself."""

    def __init__(self, reason: str, status: int = DECLINED_STATUS) -> None:
        super().__init__(reason)
        self.status = status


class Request:
    """A decoded request (``hivectl.cli.zygote.client.encode``) and the descriptors that came with it."""

    def __init__(self, fields: list[bytes], fds: list[int]) -> None:
        if len(fields) < 5 or not fields[4].isdigit():
            raise Declined("malformed request")
        self.package = os.fsdecode(fields[0])
        self.cache_tag = fields[1].decode("ascii", "replace")
        self.cwd = fields[2]
        self.umask = int(fields[3] or b"22", 8)
        count = int(fields[4])
        if len(fields) < 5 + count:
            raise Declined("malformed request")
        self.argv = [os.fsdecode(arg) for arg in fields[5:5 + count]]
        self.environ = {}
        for entry in fields[5 + count:]:
            name, sep, value = entry.partition(b"=")
            if sep and name:
                self.environ[name] = value
        self.fds = fds


def receive(conn: socket.socket) -> Request:
    """Read one request and its three descriptors (SCM_RIGHTS) from ``conn``."""
    fds: list[int] = []
    data = bytearray()
    head, ancillary, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(3 * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(int.from_bytes(payload[i:i + 4], sys.byteorder) for i in range(0, len(payload) - 3, 4))
    data += head
    if data[:4] != MAGIC or len(data) < 8:
        raise Declined("not a hivectl zygote request of this version")
    size = int.from_bytes(data[4:8], "big")
    if size > MAX_REQUEST:
        raise Declined("request too large")
    while len(data) < 8 + size:
        chunk = conn.recv(min(1 << 20, 8 + size - len(data)))
        if not chunk:
            raise Declined("request cut short")
        data += chunk
    if len(fds) != 3:
        raise Declined("expected three descriptors")
    return Request(bytes(data[8:8 + size]).split(b"\0"), fds)


def command_word(argv: list[str]) -> str | None:
    """The command a command line names (after the global options, as ``main`` reads them), resolved;
    ``start -f``/``-i`` and ``install -f``/``-i`` (the console on this terminal) count as ``console``."""
    from hivectl.cli.main import parse_command, resolve
    from hivectl.errors import UsageError

    args = list(argv)
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("--driver", "-H") and args:
            args.pop(0)
    if not args:
        return None
    if args[0] in HIDDEN:
        return args[0]
    try:
        command = resolve(args[0])
        namespace, _ = parse_command(command, args[1:])
    except (UsageError, SystemExit):
        return None  # main says so, in its own words
    if getattr(namespace, "foreground", False) or getattr(namespace, "interactive", False):
        return "console"
    return command.name


def check(request: Request, peer: Peer, package: str, recorded: stamp.Stamp) -> None:
    """Decline what this zygote must not run (see the module docstring, step 1)."""
    if os.path.realpath(request.package) != package:
        raise Declined(f"this zygote runs {package}, not {request.package}")
    if request.cache_tag != sys.implementation.cache_tag:
        raise Declined(f"this zygote runs {sys.implementation.cache_tag}, not {request.cache_tag}")
    if os.getuid() != 0 and peer.uid != os.getuid():
        raise Declined(f"this zygote serves uid {os.getuid()} only")
    word = command_word(request.argv)
    if word in INTERACTIVE or word in HIDDEN:
        raise Declined(f"{word} runs in the caller's own process")
    if stamp.changed(package, recorded):
        raise Declined("hivectl's files changed since the zygote started", STALE_STATUS)


def take_over(request: Request, peer: Peer) -> None:
    """Become the caller: credentials, directory, umask, environment, descriptors 0-2."""
    if os.getuid() == 0:
        become(peer)
    os.chdir(request.cwd)
    os.umask(request.umask)
    environ = os.environb
    environ.clear()
    environ.update(request.environ)
    for target, fd in enumerate(request.fds):
        os.dup2(fd, target)
    for fd in set(request.fds):
        if fd > 2:
            os.close(fd)


def _stdio() -> None:
    """``sys.stdin``/``stdout``/``stderr`` over the caller's descriptors, buffered as a fresh interpreter
    buffers them (stdout line-buffered on a terminal only, stderr line-buffered always)."""
    import io

    def text(fd: int, mode: str, like: object, line: bool | None) -> io.TextIOWrapper:
        encoding = getattr(like, "encoding", None) or "utf-8"
        errors = getattr(like, "errors", None) or "strict"
        raw = io.FileIO(fd, mode, closefd=False)
        buffered: io.BufferedReader | io.BufferedWriter = (io.BufferedReader(raw) if mode == "r"
                                                           else io.BufferedWriter(raw))
        # line-buffered on a terminal, as a fresh interpreter's stdout is (stderr: always)
        return io.TextIOWrapper(buffered, encoding=encoding, errors=errors,
                                line_buffering=raw.isatty() if line is None else line)

    sys.stdin = text(0, "r", sys.__stdin__, None)
    sys.stdout = text(1, "w", sys.__stdout__, None)
    sys.stderr = text(2, "w", sys.__stderr__, True)


def _reset_signals() -> None:
    """The zygote's handlers are not the command line's: back to a fresh interpreter's dispositions."""
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def serve(conn: socket.socket, close: list[int], package: str, recorded: stamp.Stamp) -> NoReturn:
    """The forked child's whole life (never returns: os._exit with the command's status)."""
    status = 70  # EX_SOFTWARE: failed before the command decided
    try:
        _reset_signals()
        for fd in close:
            os.close(fd)
        os.setsid()
        conn.settimeout(FIRST_ANSWER_TIMEOUT)
        try:
            peer = peer_of(conn)
            request = receive(conn)
            check(request, peer, package, recorded)
            take_over(request, peer)
        except Declined as declined:
            _say(conn, f"decline {declined}")
            status = declined.status
            _exit(status)
        except (OSError, ValueError) as error:
            _say(conn, f"decline {error}")
            status = DECLINED_STATUS
            _exit(status)
        conn.sendall(b"run %d\n" % os.getpid())
        answer = b""
        while len(answer) < 3 and (chunk := conn.recv(3 - len(answer))):
            answer += chunk
        if answer != b"go\n":
            status = DECLINED_STATUS  # the launcher gave up waiting and runs the command itself
            _exit(status)
        conn.settimeout(None)
        status = run(request.argv)
        _say(conn, f"exit {status}")
    except BaseException:  # a forked child must never return into the zygote's loop
        with contextlib.suppress(BaseException):
            import traceback

            os.write(2, ("hivectl: the zygote's child failed:\n" + traceback.format_exc()).encode())
    _exit(status)


def run(argv: list[str]) -> int:
    """``hivectl ARGV`` as the launcher's ``sys.exit(main())`` runs it, to its exit status."""
    import atexit

    from hivectl.cli.main import main

    _stdio()
    sys.argv = ["hivectl", *argv]
    try:
        status = main(argv)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        status = 1
    try:
        sys.stdout.flush()
    except OSError:
        status = status or 120  # what the interpreter returns when it cannot flush stdout at exit
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    return int(status or 0) & 0xFF


def _say(conn: socket.socket, line: str) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(line.encode("utf-8", "replace") + b"\n")


def _exit(status: int) -> NoReturn:
    os._exit(status)
