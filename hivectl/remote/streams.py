"""The one registration point of ``hivectl _stream`` sub-commands (``Remote.stream(words)``).

A stream sub-command moves bytes, not JSON: a ``zfs send`` into a ``zfs recv`` on the other host, a
sparse file copy. Each entry maps the first word to ``"module:function"``; the module is imported only
when the remote runs that word. The function is called as ``function(words, source, sink)``: the words
after the first, the session's stdin and stdout as binary streams. It returns when done, or raises a
``HivectlError``, which reaches the caller's ``Remote.stream`` as the matching ``RemoteError``.

Features add their line here (migration, replication), nothing else: ``hivectl _stream`` refuses any word
that is not listed.
"""

from __future__ import annotations

STREAMS: dict[str, str] = {
    # "word": "hivectl.package.module:function",
    "echo": "hivectl.remote.streams:echo",  # copies stdin to stdout: the transport's own test
    "replica": "hivectl.transfer.serve:stream",  # replication's receiving side (docs/replication.md)
    "migrate-facts": "hivectl.migrate.streams:facts",  # a migration's preflight on the target
    "migrate-recv": "hivectl.migrate.streams:receive",  # a migration's receiving end (staged, commit)
    "migrate-zfs": "hivectl.migrate.streams:receive_zfs",  # a ZFS migration's control session (lock, commit)
}


def echo(words: list[str], source: object, sink: object) -> None:
    """Copy the session's stdin to its stdout (with ``fail``: refuse, to show a remote stream's error)."""
    from typing import IO, cast

    from hivectl.errors import Conflict

    if words[:1] == ["fail"]:
        raise Conflict("echo: failing as asked")
    reader, writer = cast("IO[bytes]", source), cast("IO[bytes]", sink)
    while chunk := reader.read(1 << 16):
        writer.write(chunk)
    writer.flush()
