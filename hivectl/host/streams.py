"""Streaming a host command's standard output or input (``zfs send`` / ``zfs recv``).

``Host.run`` collects output as text, which does not fit a many-gigabyte ``zfs send`` stream. These two
context managers stream instead, with the same rules as ``Host.run``: argv lists only (never a shell), the
same PATH, and the exit status and stderr of the command checked and reported as ``CommandFailed``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from typing import IO

from hivectl.host.base import CommandFailed, Result


@contextlib.contextmanager
def reading(argv: Sequence[str]) -> Iterator[IO[bytes]]:
    """Run ``argv`` and yield its standard output as a binary stream; fail if it exits non-zero."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        yield proc.stdout
        rest = proc.stdout.read()
        del rest
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    err = proc.stderr.read().decode("utf-8", errors="replace")
    proc.stderr.close()
    if proc.wait() != 0:
        raise CommandFailed(Result(tuple(argv), proc.returncode, "", err))


@contextlib.contextmanager
def writing(argv: Sequence[str]) -> Iterator[IO[bytes]]:
    """Run ``argv`` and yield its standard input as a binary stream; fail if it exits non-zero."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        yield proc.stdin
    except BrokenPipeError:  # the command stopped reading: its own error says why
        err = proc.stderr.read().decode("utf-8", errors="replace")
        raise CommandFailed(Result(tuple(argv), proc.wait() or 1, "", err)) from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    err = proc.stderr.read().decode("utf-8", errors="replace")
    proc.stderr.close()
    if proc.wait() != 0:
        raise CommandFailed(Result(tuple(argv), proc.returncode, "", err))
