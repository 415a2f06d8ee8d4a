"""The other end of a transfer: a second vm_dir on this host, or a remote host.

:class:`Peer` is what :mod:`hivectl.transfer.send` needs of the receiving side. :class:`LocalPeer` runs
:mod:`hivectl.transfer.side` directly against another vm_dir of this host (a second pool used as a DR
copy, and the tests' two vm_dirs). :class:`StreamPeer` sends the same requests as words to the remote's
``hivectl _stream replica ...`` through any object with hivectl/remote's ``stream(words)`` (a context
manager giving ``.stdin``/``.stdout`` byte pipes): the remote runs the same functions on its own vm_dir
(:func:`hivectl.transfer.serve.stream`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import IO, Any, Protocol

from hivectl.context import Context
from hivectl.transfer import side


class Peer(Protocol):
    """The receiving side of a guest's replication."""

    label: str

    def state(self, name: str) -> dict[str, Any]: ...

    def receiving(self, name: str, rel: str, kind: str, keep_partial: bool) -> contextlib.AbstractContextManager[
        IO[bytes]]: ...

    def request(self, words: list[str]) -> Any: ...


def run_request(ctx: Context, words: list[str]) -> Any:
    """One request other than state/recv, by words (the same for this host and a remote)."""
    from hivectl.errors import UsageError

    if not words:
        raise UsageError("replica: no request")
    verb, args = words[0], words[1:]
    if verb == "hold" and len(args) == 2:
        side.hold(ctx, args[0], args[1])
        return None
    if verb == "release-all" and len(args) == 1:
        return side.release_all(ctx, args[0])
    if verb == "clear-pending" and len(args) >= 1:
        side.clear_pending(ctx, args[0], args[1:])
        return None
    if verb == "prune" and len(args) >= 3:
        return side.prune(ctx, args[0], args[1], args[2], args[3:])
    if verb == "abort" and len(args) == 2:
        side.abort_partial(ctx, args[0], "" if args[1] == "/" else args[1])
        return None
    if verb == "mark" and len(args) == 2:
        from hivectl.transfer import replica

        replica.mark(ctx, args[0], json.loads(args[1]))
        return None
    if verb == "running" and len(args) == 1:
        from hivectl.transfer import replica

        return replica.running_here(ctx, args[0])
    raise UsageError(f"replica: unknown request {' '.join(words[:1])!r}")


class LocalPeer:
    """Another vm_dir of this host (``local:zfs:pool/vm`` as a job's target)."""

    def __init__(self, ctx: Context, label: str) -> None:
        self.ctx = ctx
        self.label = label

    def state(self, name: str) -> dict[str, Any]:
        return side.state(self.ctx, name)

    def receiving(self, name: str, rel: str, kind: str, keep_partial: bool) -> contextlib.AbstractContextManager[
            IO[bytes]]:
        return side.receiving(self.ctx, name, rel, kind, keep_partial)

    def request(self, words: list[str]) -> Any:
        return run_request(self.ctx, words)


class StreamPeer:
    """A remote host through ``remote.stream(["replica", ...])`` (hivectl/remote's ``Remote``)."""

    def __init__(self, remote: Any, label: str) -> None:
        self.remote = remote
        self.label = label

    def _answer(self, words: list[str]) -> Any:
        with self.remote.stream(["replica", *words]) as pipes:
            pipes.stdin.close()
            data = pipes.stdout.read()
        return json.loads(data.decode("utf-8")) if data.strip() else None

    def state(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._answer(["state", name])
        return answer

    @contextlib.contextmanager
    def receiving(self, name: str, rel: str, kind: str, keep_partial: bool) -> Iterator[IO[bytes]]:
        words = ["replica", "recv", name, rel or "/", kind, "keep" if keep_partial else "drop"]
        with self.remote.stream(words) as pipes:
            yield pipes.stdin

    def request(self, words: list[str]) -> Any:
        return self._answer(["do", *words])
