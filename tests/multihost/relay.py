"""A stand-in for ssh that dies (or kills the far end) halfway through a stream.

``relay.py COMMAND...`` runs COMMAND with its standard output passed straight through and its standard
input pumped by us. Once more than ``RELAY_LIMIT`` bytes went through:

- ``RELAY_MODE=self``: the relay SIGKILLs itself, as a killed ssh client: the far end sees its input end;
- ``RELAY_MODE=far``: it SIGKILLs the far end (a receiver killed outright, no chance to clean up) and
  then exits with it.

Streams shorter than the limit (the preflight, the operation calls) pass untouched. With ``RELAY_ONCE=PATH``
only the first stream over the limit is cut (the relay that cuts it makes PATH; later ones see it and pass
everything): a connection that breaks once and comes back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def main() -> int:
    limit = int(os.environ.get("RELAY_LIMIT", "0"))
    mode = os.environ.get("RELAY_MODE", "self")
    once = os.environ.get("RELAY_ONCE")
    if once and os.path.exists(once):
        limit = 0
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)
    assert child.stdin is not None
    passed = 0
    while True:
        data = os.read(0, 1 << 16)
        if not data:
            break
        try:
            child.stdin.write(data)
            child.stdin.flush()
        except BrokenPipeError:
            break
        passed += len(data)
        if limit and passed > limit:
            if once:
                open(once, "w").close()
            if mode == "self":
                os.kill(os.getpid(), signal.SIGKILL)
            child.kill()
            return child.wait() or 1
    child.stdin.close()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
