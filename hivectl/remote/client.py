"""``Remote``: calls, command lines and byte streams to one remote's ``hivectl`` over ssh.

Each call is one ssh session (shared over the master connection of hivectl/remote/ssh.py) running
``hivectl _serve`` on the remote; the request goes in on stdin, the answer comes back on stdout. ssh's own
exit status 255 means it could not reach the host or log in (ssh(1), "EXIT STATUS"); the remote's hivectl
never exits with it, so that is always reported as the remote being unreachable, with ssh's last line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from hivectl.host.base import Host
from hivectl.remote import ssh, wire
from hivectl.remote.config import RemoteSpec

PIPE = -1  # subprocess.PIPE, for Host.spawn's stdio arguments
SSH_FAILED = 255


@dataclass
class Streams:
    """The two ends of a remote ``hivectl _stream``: write to ``stdin``, read from ``stdout``."""

    stdin: IO[bytes]
    stdout: IO[bytes]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class Remote:
    """One remote host, as ``hivectl remote add`` recorded it."""

    def __init__(self, spec: RemoteSpec, host: Host) -> None:
        self.spec = spec
        self.name = spec.name
        self._host = host

    def __repr__(self) -> str:
        return f"Remote({self.name!r}, {self.spec.url!r})"

    def _unreachable(self, stderr: str) -> wire.RemoteUnreachable:
        return wire.RemoteUnreachable(self.name, "unreachable",
                                      f"cannot reach {self.spec.destination} over ssh: {_last_line(stderr)}")

    def _session(self, words: list[str], stdout: int | None = PIPE) -> Any:
        return self._host.spawn(ssh.argv(self.spec, words), stdin=PIPE, stdout=stdout, stderr=PIPE)

    def call(self, op: str, args: dict[str, Any] | None = None, dry_run: bool = False) -> Any:
        """Run operation ``op`` of hivectl/catalog.py on the remote with ``args``; its result, or its error
        raised here as the matching ``RemoteError`` subclass (code and one-line message kept)."""
        proc = self._session(["_serve"])
        out, err = proc.communicate(wire.request("call", op=op, args=args or {}, dry_run=dry_run))
        text = out.decode("utf-8", errors="replace").strip()
        if proc.returncode == SSH_FAILED or (not text and proc.returncode != 0):
            raise self._unreachable(err.decode("utf-8", errors="replace"))
        return wire.decode_answer(self.name, text.splitlines()[-1] if text else "")

    def cli(self, argv: list[str]) -> tuple[int, str]:
        """Run a whole hivectl command line on the remote, its output going straight to this process's
        standard output; returns the exit status and the remote's standard error (for the caller to show)."""
        proc = self._session(["_serve"], stdout=None)
        _, err = proc.communicate(wire.request("cli", argv=argv))
        text = err.decode("utf-8", errors="replace")
        if proc.returncode == SSH_FAILED:
            raise self._unreachable(text)
        return proc.returncode, text

    @contextlib.contextmanager
    def stream(self, words: list[str]) -> Iterator[Streams]:
        """The stdin and stdout of ``hivectl _stream WORDS...`` on the remote (a handler registered in
        hivectl/remote/streams.py). Close nothing yourself: on leaving, stdin is closed, the rest of stdout
        is read, and a failure of the remote end (or of ssh) is raised as a ``RemoteError``."""
        proc = self._session(["_stream"])
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(wire.request("stream", words=list(words)))
            proc.stdin.flush()
            yield Streams(proc.stdin, proc.stdout)
        except (BrokenPipeError, ConnectionError) as error:
            # ssh (or the session on the remote) went away mid-stream: a HivectlError naming the remote,
            # so a replication run records it as the run's error instead of dying of a bare OSError.
            proc.kill()
            status = proc.wait()
            err = proc.stderr.read().decode("utf-8", errors="replace")
            why = _last_line(err) if err.strip() else f"ssh ended with status {status}"
            raise wire.RemoteUnreachable(self.name, "unreachable",
                                         f"_stream {' '.join(words[:2])}: the connection broke ({why})") from error
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError, ValueError):
                proc.stdin.close()
        with contextlib.suppress(ValueError):
            proc.stdout.read()
        err = proc.stderr.read().decode("utf-8", errors="replace")
        status = proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        if status == SSH_FAILED:
            raise self._unreachable(err)
        if status != 0:
            for line in reversed(err.splitlines()):
                if line.startswith(wire.ERROR_MARK):
                    import json

                    wire.raise_error(self.name, json.loads(line[len(wire.ERROR_MARK):]))
            raise wire.RemoteError(self.name, "failed", f"_stream {' '.join(words)}: exit status {status}: "
                                                        f"{_last_line(err)}")
