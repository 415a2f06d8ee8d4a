"""The remote end: ``hivectl _serve`` and ``hivectl _stream`` (hidden commands), run by sshd for a remote.

``_serve`` reads one request line (hivectl/remote/wire.py) and answers it:

* ``call``: one operation of hivectl/catalog.py through ``catalog.invoke`` (its argument checks, the
  ``dry_run`` passed through), on ``hivectl.api.Hivectl`` for this host's vm_dir; the result, or the error's
  code and one line, as one JSON line on stdout;
* ``cli``: a whole command line through this host's own CLI (``hivectl -H NAME COMMAND ...``): its output
  on stdout and stderr as the CLI writes them, its exit status as this process's.

``_stream`` runs a byte-stream sub-command of hivectl/remote/streams.py on stdin and stdout.

Every change made here is audited and journaled on this host as any other (hivectl/journal), in the name of
the ssh principal: this process's uid and user, the client address sshd puts in ``SSH_CONNECTION``
(sshd(8), "LOGIN PROCESS"). Nothing is logged here besides, so no secret a request carries is written out.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

MAX_REQUEST = 64 << 20  # a configure text or an import script, not a disk: streams are for bytes


def principal() -> dict[str, Any]:
    """The ssh principal, as the ``who`` of the audit lines and events this session writes."""
    import pwd

    uid = os.getuid()
    who: dict[str, Any] = {"uid": uid}
    with contextlib.suppress(KeyError):
        who["user"] = pwd.getpwuid(uid).pw_name
    connection = os.environ.get("SSH_CONNECTION", "").split()
    who["via"] = "ssh"
    if connection:
        who["from"] = connection[0]
    return who


def main(word: str, args: list[str]) -> int:
    if word == "_stream":
        return _stream(args)
    if args:
        sys.stderr.write("hivectl: _serve takes no arguments (its request comes on stdin)\n")
        return 2
    return _serve()


def _serve() -> int:
    from hivectl.journal.who import acting_as
    from hivectl.remote import wire

    out = sys.stdout.buffer
    try:
        request = wire.decode_request(sys.stdin.buffer.readline(MAX_REQUEST))
    except Exception as error:
        out.write(wire.answer(error=error))
        out.flush()
        return 0
    with acting_as(principal()):
        if request["kind"] == "cli":
            return _cli(request)
        try:
            result = _call(request)
        except Exception as error:
            body = wire.answer(error=error)
        else:
            body = wire.answer(result)
    out.write(body)
    out.flush()
    return 0


def _call(request: dict[str, Any]) -> Any:
    from hivectl import catalog
    from hivectl.api import Hivectl
    from hivectl.errors import UsageError

    op, args, dry_run = request.get("op"), request.get("args"), request.get("dry_run", False)
    if not isinstance(op, str) or not isinstance(args, dict) or not isinstance(dry_run, bool):
        raise UsageError("_serve: a call needs op (text), args (an object) and dry_run (true or false)")
    if request["kind"] != "call":
        raise UsageError(f"_serve: {request['kind']} is not a request _serve answers")
    try:
        operation = catalog.get(op)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None
    return catalog.invoke(Hivectl(), operation, args, dry_run=dry_run)


def _cli(request: dict[str, Any]) -> int:
    from hivectl.cli.main import main as cli_main

    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(w, str) for w in argv) or not argv:
        sys.stderr.write("hivectl: _serve: a command line is a list of words\n")
        return 2
    if argv[0].startswith("_") or argv[0] == "-H":
        sys.stderr.write(f"hivectl: _serve: {argv[0]!r} cannot be run through a remote\n")
        return 2
    try:
        return cli_main(argv)
    finally:
        sys.stdout.flush()


def _read_line(fd: int, limit: int = 1 << 20) -> bytes:
    """One line read a byte at a time, so that nothing after it is buffered away from a program that is
    handed the descriptor (a ``zfs recv`` reading the rest of the stream)."""
    line = bytearray()
    while len(line) < limit:
        byte = os.read(fd, 1)
        if not byte or byte == b"\n":
            break
        line += byte
    return bytes(line)


def _stream(args: list[str]) -> int:
    import json

    from hivectl.errors import UsageError
    from hivectl.journal.who import acting_as
    from hivectl.remote import wire
    from hivectl.remote.streams import STREAMS

    try:
        words = list(args)
        if not words:
            request = wire.decode_request(_read_line(0))
            words = request.get("words") or []
            if request["kind"] != "stream" or not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise UsageError("_stream: the request names no stream words")
        if not words or words[0] not in STREAMS:
            raise UsageError(f"_stream: unknown stream {words[0] if words else ''!r} "
                             f"(known: {', '.join(sorted(STREAMS))})")
        module, function = STREAMS[words[0]].split(":")
        __import__(module)
        handler = getattr(sys.modules[module], function)
        with acting_as(principal()):
            handler(words[1:], sys.stdin.buffer, sys.stdout.buffer)
        sys.stdout.flush()
        return 0
    except Exception as error:
        body = wire.error_object(error)
        sys.stderr.write(f"hivectl: {body['message']}\n{wire.ERROR_MARK}{json.dumps(body)}\n")
        return int(body["exit_status"]) or 1
