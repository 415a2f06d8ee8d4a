"""The remote end of replication: ``hivectl _stream replica WORDS...`` (registered in hivectl/remote/streams.py).

Words, after ``replica``:

- ``state NAME``: the guest's datasets here as JSON (:func:`hivectl.transfer.side.state`);
- ``recv NAME REL full|incremental|resume keep|drop``: the session's stdin goes into ``zfs recv`` of the
  guest's dataset (``REL`` ``/`` for the guest's own, ``/disk0`` for a zvol below it); ``keep`` receives
  with ``-s``;
- ``do VERB ...``: one request of :func:`hivectl.transfer.peer.run_request` (hold, release-all,
  clear-pending, prune, abort, mark, running); its result as JSON.

Every name is checked before it reaches ``zfs`` (side.py names guests, never datasets).
"""

from __future__ import annotations

import json
from typing import IO, cast

from hivectl.errors import UsageError

CHUNK = 1 << 16


def stream(words: list[str], source: object, sink: object) -> None:
    """Handle one ``_stream replica`` session on this host's vm_dir."""
    from hivectl.context import Context
    from hivectl.transfer import peer, side

    reader, writer = cast("IO[bytes]", source), cast("IO[bytes]", sink)
    ctx = Context()
    if words[:1] == ["state"] and len(words) == 2:
        writer.write(json.dumps(side.state(ctx, words[1])).encode())
    elif words[:1] == ["recv"] and len(words) == 5 and words[4] in ("keep", "drop"):
        rel = "" if words[2] == "/" else words[2]
        with side.receiving(ctx, words[1], rel, words[3], words[4] == "keep") as into:
            while chunk := reader.read(CHUNK):
                into.write(chunk)
    elif words[:1] == ["do"]:
        writer.write(json.dumps(peer.run_request(ctx, words[1:])).encode())
    else:
        raise UsageError(f"replica: unknown stream request {' '.join(words[:2])!r}")
    writer.flush()
