"""``hivectl zygote``: import hivectl once, listen on a unix socket, fork a child per command.

    hivectl zygote [--socket PATH] [--group NAME]

The server is one thread (fork(2) copies only the calling thread, so nothing else may run) and does as
little as it can per request: accept, fork, and later reap the child with wait4(2), send ``signal N`` to
the launcher if the child died of a signal (a child that exits says ``exit N`` itself), and log one line
with the child's CPU time and its own. Everything else (reading the request, checks, credentials, the
command) happens in the child (``hivectl.cli.zygote.child``).

The socket (default ``/var/run/hivectl/zygote.sock``, or ``HIVECTL_ZYGOTE_SOCKET``) is made mode 0660
under a umask that never lets it be wider, owned by ``--group`` (default: the server's own group), in a
directory that must belong to root or to the server's user and be writable by nobody else: otherwise
another user could put their own socket there. A live server's socket is refused, a dead one's replaced.
A root server serves anyone who can connect, each child taking the caller's uid and groups; a server
run by another user serves that user only.

When hivectl's files change (an upgrade), the next child declines and the server re-execs itself, so the
new code is what it imports (``hivectl.cli.zygote.stamp``). SIGTERM or SIGINT ends the server; the children
and everything they started (guests and their supervisors) carry on without it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import select
import signal
import socket
import stat
import sys
import time

from hivectl.cli.zygote import DECLINED_STATUS, DEFAULT_SOCKET, SOCKET_ENV, STALE_STATUS, stamp
from hivectl.errors import HivectlError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

SUN_PATH_MAX = 104  # FreeBSD's sockaddr_un.sun_path (Linux allows 108): the stricter of the two
SKIPPED = ("hivectl.daemon",)
"""Not imported ahead: the REST daemon's modules (FastAPI, pydantic) are not the command line's."""

USAGE = "usage: hivectl zygote [--socket PATH] [--group NAME]"
HELP = f"""{USAGE}

Run the start-up server: hivectl imported once, listening on a unix socket. bin/hivectl hands it each
command, which runs in a forked child with the caller's uid and groups, directory, environment, standard
input and output: the same output, exit status and effects as the command run directly, without the cost
of a fresh interpreter and its imports ('hivectl start' reaches the hypervisor in about half the time).
It is optional: without it every command runs in its own process. Commands that need the caller's
terminal (console, configure, start -f/-i, install -f/-i) always run in the caller's own process.

options:
  --socket PATH  the socket (default {DEFAULT_SOCKET}, or ${SOCKET_ENV};
                 callers with {SOCKET_ENV}=off never use one). It is made mode 0660, in a
                 directory that belongs to root or to the server's user and that nobody else may write;
                 a live server's socket is refused, a dead one's replaced
  --group NAME   the socket's group, i.e. who may connect (default: the server's own group)

A server run by root serves everyone who may connect, each as themselves; one run by another user serves
that user only. When hivectl's files change (an upgrade) the server re-execs itself before it serves
again. SIGTERM or SIGINT ends it; guests and their supervisors carry on. At boot:
hivectl/rc.d/hivectl_zygote (FreeBSD) or hivectl/systemd/hivectl-zygote.service (Linux). Design:
docs/architecture.md, "The zygote".
"""


def preload() -> int:
    """Import every module of hivectl the command line may use (all but ``SKIPPED`` and ``__main__``s);
    how many hivectl modules are then imported. One that cannot be imported here (an optional
    dependency missing) is left to the child, which imports it as the command line would."""
    import importlib
    import pkgutil

    import hivectl
    import hivectl.cli.main  # the entry point first: the rest follows its import order

    for info in pkgutil.walk_packages(hivectl.__path__, "hivectl.",
                                      onerror=lambda _name: None):
        name = info.name
        if name.endswith(".__main__") or name.startswith(SKIPPED):
            continue
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    warm()
    return sum(1 for name in sys.modules if name == "hivectl" or name.startswith("hivectl."))


def warm() -> None:
    """Do now what hivectl defers to first use, once for every child: compile each module-level (or
    class-level) ``hivectl.patterns.Pattern`` and each record class's ``__init__``. Nothing that reads
    the host is done ahead (a cached host name or boot id would outlive a change)."""
    from hivectl.patterns import Pattern
    from hivectl.records import compile_now

    for name, module in list(sys.modules.items()):
        if not name.startswith("hivectl.") or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Pattern):
                value.compiled()
            elif isinstance(value, type) and value.__module__ == name:
                compile_now(value)
                for member in list(vars(value).values()):
                    if isinstance(member, Pattern):
                        member.compiled()


def check_directory(directory: str) -> None:
    """Refuse a socket directory another user could put a socket (or a link) in."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise HivectlError(f"{directory}: does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise HivectlError(f"{directory}: not a directory")
    if st.st_uid not in (0, os.getuid()):
        raise HivectlError(f"{directory}: owned by uid {st.st_uid}: the socket's directory must belong to root "
                           f"or to uid {os.getuid()}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HivectlError(f"{directory}: mode {stat.S_IMODE(st.st_mode):04o} lets others write in it: "
                           "the socket's directory must be writable by its owner only")


def _live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def listen(path: str, group: str | None) -> socket.socket:
    """The listening socket at ``path`` (see the module docstring for what is refused)."""
    if not os.path.isabs(path) or len(os.fsencode(path)) >= SUN_PATH_MAX:
        raise UsageError(f"--socket {path!r}: must be an absolute path shorter than {SUN_PATH_MAX} bytes")
    gid = None
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise UsageError(f"--group {group!r}: no such group") from None
    directory = os.path.dirname(path)
    if path == DEFAULT_SOCKET and not os.path.exists(directory):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    check_directory(directory)
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise HivectlError(f"{path}: exists and is not a socket")
        if _live(path):
            raise HivectlError(f"{path}: another zygote is listening there")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # born 0660 at most: never a moment when others may connect
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if gid is not None:
        os.chown(path, -1, gid)
    sock.listen(64)
    return sock


class Server:
    """The accept/fork/reap loop (one thread)."""

    def __init__(self, sock: socket.socket, path: str, package: str) -> None:
        self.sock = sock
        self.path = path
        self.inode = os.stat(path).st_ino
        self.package = package
        self.stamp = stamp.take(package)
        self.children: dict[int, tuple[socket.socket, float]] = {}
        self.stopping = False
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def run(self) -> int:
        signal.set_wakeup_fd(self.wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.reap()  # children of a previous image of this process (re-exec) are ours to reap
        log(f"listening on {self.path} ({os.getpid()}, {self.package})")
        while not self.stopping:
            try:
                ready, _, _ = select.select([self.sock.fileno(), self.wake_read], [], [])
            except InterruptedError:
                continue
            if self.wake_read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_read, 512)
                if self.reap():
                    return self.reexec()
            if self.sock.fileno() in ready and not self.stopping:
                self.accept()
        self.close()
        log("stopped")
        return 0

    def _stop(self, _number: int, _frame: object) -> None:
        self.stopping = True

    def accept(self) -> None:
        began = time.process_time()
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        from hivectl.cli.zygote import child
        from hivectl.host import process

        close = [self.sock.fileno(), self.wake_read, self.wake_write]
        try:
            pid = process.fork_serving(lambda: child.serve(conn, close, self.package, self.stamp))
        except (OSError, HivectlError) as error:  # no memory or no process left: the launcher runs it itself
            log(f"cannot fork: {error}")
            conn.close()
            return
        self.children[pid] = (conn, time.process_time() - began)

    def reap(self) -> bool:
        """Collect every child that ended; whether one declined because the files changed."""
        stale = False
        while True:
            began = time.process_time()
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return stale
            if pid == 0:
                return stale
            conn, spent = self.children.pop(pid, (None, 0.0))
            code = os.waitstatus_to_exitcode(status)
            answer = f"signal {-code}" if code < 0 else f"exit {code}"
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(f"{answer}\n".encode())
                conn.close()
            outcome = {STALE_STATUS: "stale", DECLINED_STATUS: "declined"}.get(code, answer.replace(" ", ":"))
            if code == STALE_STATUS and stamp.changed(self.package, self.stamp):
                stale = True
            spent += time.process_time() - began
            log(f"served pid={pid} status={outcome} child_cpu={usage.ru_utime + usage.ru_stime:.6f} "
                f"zygote_cpu={spent:.6f}")

    def close(self) -> None:
        """Stop listening; remove the socket if it is still this server's (not a successor's)."""
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        self.sock.close()

    def reexec(self) -> NoReturn:
        """hivectl's files changed: become a fresh server that imports them (same command line)."""
        log("hivectl's files changed: restarting to load them")
        self.close()
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        from hivectl.host import process

        process.reexec()


def log(line: str) -> None:
    """One line on the server's standard error (the service manager's log)."""
    with contextlib.suppress(OSError):
        sys.stderr.write(f"hivectl-zygote: {line}\n")
        sys.stderr.flush()


def parse(argv: list[str]) -> tuple[str, str | None]:
    path = os.environ.get(SOCKET_ENV, "") or DEFAULT_SOCKET
    group = None
    args = list(argv)
    while args:
        option = args.pop(0)
        if option in ("-h", "--help"):
            sys.stdout.write(HELP)
            raise SystemExit(0)
        if option == "--socket" and args:
            path = args.pop(0)
        elif option.startswith("--socket="):
            path = option.split("=", 1)[1]
        elif option == "--group" and args:
            group = args.pop(0)
        elif option.startswith("--group="):
            group = option.split("=", 1)[1]
        else:
            raise UsageError(f"zygote: unexpected argument {option!r} ({USAGE})")
    if path == "off":
        raise UsageError(f"{SOCKET_ENV}=off: the zygote is switched off; give --socket PATH")
    return path, group


def main(argv: list[str]) -> int:
    """``hivectl zygote``'s entry point (called by ``hivectl.cli.main``)."""
    path, group = parse(argv)
    count = preload()
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        raise HivectlError("zygote: importing hivectl started a thread; a forking server must have one")
    import hivectl

    package = os.path.realpath(hivectl.__path__[0])
    sock = listen(path, group)
    log(f"{count} hivectl modules imported")
    server = Server(sock, path, package)
    import gc

    # What is imported now is never freed: out of the collector's sight, a child's collections neither
    # walk it nor write to its pages (which copy-on-write would copy into every child: CPU and memory).
    gc.collect()
    gc.freeze()
    return server.run()
