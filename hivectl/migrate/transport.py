"""How the sender reaches the other host: ``call`` an operation there, or open a ``stream`` sub-command.

``Transport`` is the two methods the migration needs of a remote, and the ``Remote`` of ``hivectl remote``
(issue 12, item 1: hivectl on the far side of ``ssh``) has them: ``call(op, args)`` runs one operation of
the catalog there and returns its result; ``stream(words)`` opens a byte pipe to ``hivectl _stream WORDS``
there (the migration's sub-commands are in ``hivectl/migrate/streams.py``). ``CommandTransport`` is the same
pair over any command that reaches a hivectl: ``ssh [-p PORT] [USER@]HOST hivectl`` for an
``ssh://`` address, this host's own hivectl with another ``HIVECTL_VM_DIR`` (``local:VM_DIR``: a guest
moves between two vm_dirs of one machine), or any command given as ``exec:COMMAND`` (how the tests reach
their second simulated host, and how a guest goes into a jail's hivectl).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from hivectl.errors import UsageError
from hivectl.host.pipes import duplex


class Pipe(Protocol):
    """Both directions of one stream: ``stdin`` is the far end's standard input, ``stdout`` its output
    (``hivectl.remote.Streams``, ``host.pipes.Duplex``)."""

    stdin: IO[bytes]
    stdout: IO[bytes]


class Transport(Protocol):
    """What a migration needs of the other host."""

    name: str

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """Run catalog operation ``op`` with ``args`` there; its result, or its error raised."""

    def stream(self, words: list[str]) -> contextlib.AbstractContextManager[Pipe]:
        """A pipe to ``hivectl _stream WORDS`` there."""


class CommandTransport:
    """A ``Transport`` over a command that runs hivectl on the other host (``argv`` + ``_stream WORDS``)."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env or {})

    def __repr__(self) -> str:
        return f"CommandTransport({self.name!r}, {self.argv!r})"

    @contextlib.contextmanager
    def stream(self, words: list[str]) -> Iterator[Pipe]:
        with duplex([*self.argv, "_stream", *words], self.env) as pipe:
            yield pipe

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """``hivectl _serve`` there, asked as ``Remote.call`` asks it (hivectl/remote/wire.py)."""
        from hivectl.remote import wire as remote_wire

        with duplex([*self.argv, "_serve"], self.env) as pipe:
            pipe.stdin.write(remote_wire.request("call", op=op, args=args, dry_run=False))
            pipe.stdin.close()
            text = pipe.stdout.read().decode("utf-8", errors="replace").strip()
        return remote_wire.decode_answer(self.name, text.splitlines()[-1] if text else "")


_SSH = re.compile(r"ssh://(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
                  r"(?::(?P<port>[0-9]{1,5}))?/?")


def this_hivectl() -> list[str]:
    """The command that runs this very hivectl (the launcher of this checkout, under this interpreter)."""
    launcher = Path(__file__).resolve().parent.parent.parent / "bin" / "hivectl"
    if launcher.is_file():
        return [sys.executable, "-S", str(launcher)]
    return [sys.executable, "-m", "hivectl"]


def connect(remote: str, where: Any = None) -> Transport:
    """The transport for a REMOTE argument: ``ssh://[USER@]HOST[:PORT]``; ``local:VM_DIR``; ``exec:COMMAND``
    (a command that runs hivectl there, split into words like a shell would but never run by one, e.g.
    ``exec:jexec web hivectl``); or the name of a remote added with ``hivectl remote add`` (found in the
    vm_dir of ``where``, a ``Context``)."""
    if remote.startswith("exec:"):
        import shlex

        argv = shlex.split(remote[len("exec:"):])  # words only: no shell ever sees them
        if not argv:
            raise UsageError(f"REMOTE {remote!r}: exec: takes the command that runs hivectl there")
        return CommandTransport(remote, argv)
    if remote.startswith("local:"):
        vm_dir = remote[len("local:"):]
        if not vm_dir.startswith("/"):
            raise UsageError(f"REMOTE {remote!r}: local: takes an absolute vm_dir path")
        return CommandTransport(remote, this_hivectl(), {"HIVECTL_VM_DIR": vm_dir})
    found = _SSH.fullmatch(remote)
    if found:
        target = f"{found.group('user')}@{found.group('host')}" if found.group("user") else found.group("host")
        port = ["-p", found.group("port")] if found.group("port") else []
        return CommandTransport(remote, ["ssh", "-o", "BatchMode=yes", *port, target, "hivectl"])
    if remote.startswith("ssh:"):
        raise UsageError(f"REMOTE {remote!r}: expected ssh://[USER@]HOST[:PORT]")
    from hivectl.remote import connect as named

    found_remote: Transport = named(where, remote)
    return found_remote


def command_prefix(remote: str) -> list[str]:
    """The words that run a command on REMOTE (for a host without hivectl: ``--to-vm-bhyve``):
    ``ssh [-p PORT] [USER@]HOST`` for ``ssh://``, the words themselves for ``exec:WORDS``."""
    found = _SSH.fullmatch(remote)
    if found:
        target = f"{found.group('user')}@{found.group('host')}" if found.group("user") else found.group("host")
        return ["ssh", "-o", "BatchMode=yes", *(["-p", found.group("port")] if found.group("port") else []), target]
    if remote.startswith("exec:"):
        import shlex

        words = shlex.split(remote[len("exec:"):])
        if words:
            return words
    raise UsageError(f"REMOTE {remote!r}: a vm-bhyve host is reached by ssh://[USER@]HOST[:PORT] or exec:COMMAND")
