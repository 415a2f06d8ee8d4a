"""The migration's ``hivectl _stream`` sub-commands (registered in hivectl/remote/streams.py).

- ``migrate-facts``: one JSON request line (name, datastore, config text) in, one answer line out: the
  target's preflight (``hivectl/migrate/facts.py``);
- ``migrate-recv NAME DATASTORE``: the sender's frames in, acknowledgements out (``hivectl/migrate/receive.py``);
- ``migrate-zfs NAME DATASTORE``: the control session of a migration whose disks travel as ``zfs send``
  streams (``hivectl/migrate/zfsrecv.py``; the streams themselves are replication's ``_stream replica``).

SIGHUP, SIGTERM and SIGPIPE (ssh gone) are turned into an exception while receiving, so the receiver
unwinds and removes what it staged instead of dying with it in place.
"""

from __future__ import annotations

import json
import signal
from typing import IO, Any

from hivectl.errors import HivectlError, UsageError


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def facts(words: list[str], source: IO[bytes], sink: IO[bytes]) -> None:
    from hivectl.context import Context
    from hivectl.migrate import wire
    from hivectl.migrate.facts import facts as answer

    if words:
        raise UsageError("_stream migrate-facts takes no words (its request comes on stdin)")
    try:
        request = json.loads(source.readline(1 << 20) or b"{}")
    except ValueError as error:
        raise UsageError(f"migrate-facts: the request is not JSON: {error}") from None
    if not isinstance(request, dict):
        raise UsageError("migrate-facts: the request must be one JSON object")
    ctx = Context()
    wire.write_answer(sink, answer(ctx.store, ctx.host, ctx.driver_impl(), request))


def receive(words: list[str], source: IO[bytes], sink: IO[bytes]) -> None:
    from hivectl.migrate.receive import receive as run

    _receiving("migrate-recv", run, words, source, sink)


def receive_zfs(words: list[str], source: IO[bytes], sink: IO[bytes]) -> None:
    from hivectl.migrate.zfsrecv import receive as run

    _receiving("migrate-zfs", run, words, source, sink)


def _receiving(word: str, run: Any, words: list[str], source: IO[bytes], sink: IO[bytes]) -> None:
    from hivectl.context import Context

    if len(words) != 2:
        raise UsageError(f"_stream {word} takes NAME DATASTORE")
    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, _interrupted)
    ctx = Context()

    def start(name: str) -> None:
        from hivectl.ops import lifecycle

        outcome = lifecycle.start(ctx, lifecycle.StartRequest((name,)))
        if outcome.errors:
            raise HivectlError(outcome.errors[0])

    if run(ctx.store, ctx.host, words[0], words[1], source, sink, start) != 0:
        raise HivectlError(f"{word} {words[0]}: the guest was not received (nothing was kept)")
