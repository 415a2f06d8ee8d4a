"""The launcher's side of the zygote: hand a command to a running zygote, or say that it cannot.

``bin/hivectl`` calls ``request`` before it imports the command line. ``None`` means "run the command
yourself": no zygote listens, it is not trusted, it declined (another checkout or interpreter, changed
files, an interactive command, a caller it does not serve), or it did not answer in time. Once the child
has said ``run`` and this side has answered ``go``, the command is the child's, and this process only
relays signals and waits for its exit status; it never runs the command a second time.

Trust: the environment, directory and terminal of the caller are handed over, so the server must be root
or the caller itself (its credentials read from the connected socket: SO_PEERCRED on Linux,
LOCAL_PEERCRED on FreeBSD; where neither exists, the socket file's owner).

This module imports only built-in modules (``_socket``, ``_signal``): it runs in the launcher, where every
import is paid on every command.
"""

import os
import sys

from hivectl.cli.zygote import FIRST_ANSWER_TIMEOUT, MAGIC

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from _socket import socket as Socket
    from collections.abc import Sequence

FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
"""Signals the launcher passes on to the child: the terminal sends them to the launcher's process group,
and the child, forked by the zygote, is in none of the terminal's groups."""


def encode(package: str, argv: "Sequence[str]", cwd: bytes, umask: int, environ: dict[bytes, bytes]) -> bytes:
    """A request: ``MAGIC``, the body's length (4 bytes, big-endian), and NUL-separated fields.

    Fields: the package directory the launcher would import, the interpreter's cache tag
    (``cpython-311``), the directory, the umask (octal), the number of arguments, the arguments, then
    ``NAME=VALUE`` for each environment variable. None of them may hold a NUL: execve(2) cannot pass
    one either, and the command line refuses NUL in arguments (``hivectl.safety.text.argv_words``).
    """
    fields = [os.fsencode(package), sys.implementation.cache_tag.encode(), cwd, b"%o" % umask,
              b"%d" % len(argv), *(os.fsencode(arg) for arg in argv),
              *(name + b"=" + value for name, value in environ.items())]
    if any(b"\0" in field for field in fields):
        raise ValueError("NUL in a request field")
    body = b"\0".join(fields)
    return MAGIC + len(body).to_bytes(4, "big") + body


def server_uid(sock: "Socket", path: str) -> int:
    """The uid of the process that listens on ``sock`` (connected), as the kernel recorded it."""
    import _socket

    if hasattr(_socket, "SO_PEERCRED"):  # Linux: struct ucred {pid_t pid; uid_t uid; gid_t gid;}
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        return int.from_bytes(cred[4:8], sys.byteorder)
    if sys.platform.startswith("freebsd"):  # struct xucred {u_int cr_version; uid_t cr_uid; ...} (unix(4))
        cred = sock.getsockopt(0, getattr(_socket, "LOCAL_PEERCRED", 1), 76)
        return int.from_bytes(cred[4:8], sys.byteorder)
    return os.stat(path).st_uid


def _read_line(sock: "Socket", pending: bytearray) -> bytes:
    """The next ``\\n``-terminated answer (without it); ``b""`` at end of stream."""
    while b"\n" not in pending:
        chunk = sock.recv(256)
        if not chunk:
            return b""
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def request(path: str, package: str, argv: "Sequence[str]") -> int | None:
    """Run ``hivectl ARGV`` in the zygote at ``path``; its exit status, or ``None``: run it yourself."""
    import _socket

    try:
        cwd = os.getcwdb()
        payload = encode(package, argv, cwd, _umask(), dict(os.environb))
    except (OSError, ValueError):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(FIRST_ANSWER_TIMEOUT)
        try:
            sock.connect(path)
            if server_uid(sock, path) not in (0, os.getuid()):
                return None
            fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
            sent = sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            if sent < len(payload):
                sock.sendall(payload[sent:])
            pending = bytearray()
            first = _read_line(sock, pending)
            if not first.startswith(b"run "):
                return None  # b"decline REASON", or the zygote went away: nothing has run
            child = int(first[4:])
            sock.sendall(b"go\n")
        except (OSError, ValueError):
            return None  # not sent, refused, timed out: the child runs nothing without our "go"
        sock.settimeout(None)
        return _await_status(sock, pending, child)
    finally:
        sock.close()


def _await_status(sock: "Socket", pending: bytearray, child: int) -> int:
    """Relay the terminal's signals to ``child`` until it reports ``exit N`` (or the zygote ``signal N``)."""
    import _signal  # type: ignore[import-not-found]  # signal's C part: no enum to import

    def relay(number: int, _frame: object) -> None:
        try:  # noqa: SIM105  contextlib would cost the launcher an import
            os.kill(child, number)
        except OSError:  # the child is gone: its status is on its way
            pass

    for name in FORWARDED_SIGNALS:
        _signal.signal(getattr(_signal, name), relay)
    try:
        answer = _read_line(sock, pending)
    except OSError:
        answer = b""
    word, _, value = answer.partition(b" ")
    if word == b"exit" and value.isdigit():
        return int(value)
    if word == b"signal" and value.isdigit():  # die of it as the command did, so the shell sees the same
        number = int(value)
        _signal.signal(number, _signal.SIG_DFL)
        os.kill(os.getpid(), number)
        return 128 + number
    os.write(2, b"hivectl: the zygote's child ended without an exit status\n")
    return 1


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
