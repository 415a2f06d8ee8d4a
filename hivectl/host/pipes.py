"""A command with both ends piped: the byte channel of a migration (``ssh HOST hivectl _stream ...``).

``streams.reading``/``writing`` pipe one direction; a migration talks both ways on one connection: the
sender writes frames to the receiver's standard input and reads its answers (acknowledgements, facts) from
its standard output. The command is an argv list run without a shell, like every command in hivectl; its
standard error is kept and reported, with the exit status, as ``CommandFailed`` when it fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO

from hivectl.host.base import CommandFailed, Result


class Duplex:
    """A running command's standard input (``stdin``, ours to write) and output (``stdout``, ours to read)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self.stdin: IO[bytes] = proc.stdin
        self.stdout: IO[bytes] = proc.stdout
        self._errors: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _drain(self) -> None:  # stderr read on the side, so a chatty command cannot block on a full pipe
        assert self._proc.stderr is not None
        self._errors.append(self._proc.stderr.read())

    def stderr(self) -> str:
        self._reader.join(timeout=5)
        return b"".join(self._errors).decode("utf-8", errors="replace")

    def finish(self) -> int:
        """Close our end of standard input and wait for the command; its exit status."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self.stdin.close()
        status = self._proc.wait()
        self.stdout.close()
        return status

    def abandon(self, grace: float = 30.0) -> None:
        """End the conversation early: close its input (the far end sees EOF and cleans up after itself),
        give it ``grace`` seconds to do so, then kill it."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self.stdin.close()
        try:
            self._proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self.stdout.close()


@contextlib.contextmanager
def duplex(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[Duplex]:
    """Run ``argv`` with both standard input and output piped to us; fail if it exits non-zero.

    ``env`` entries are added to (and override) this process's environment: a local stand-in for another
    host is this host's hivectl with another ``HIVECTL_VM_DIR``/``HIVECTL_RC_CONF``.
    """
    merged = dict(os.environ)
    merged.update(env or {})
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=merged)
    pipe = Duplex(proc)
    try:
        yield pipe
    except BaseException:
        pipe.abandon()
        raise
    status = pipe.finish()
    if status != 0:
        raise CommandFailed(Result(tuple(argv), status, "", pipe.stderr()))
