"""Cooperative cancellation and progress for a running operation, at the granularity of host commands.

Every change hivectl makes goes through a ``Host`` (docs/architecture.md: plans are applied through it,
argv lists only), so a ``Host`` that checks a flag before each command is a cancellation point between
the plan's steps that needs nothing from the operations themselves. The first command after a cancel
request raises ``Cancelled``; the plan's rollback (``Plan.apply`` undoes what it applied) then runs its own
commands normally, so a cancelled plan leaves the host as it found it rather than half-changed.

The same checks count the steps: an operation's progress is the number of host commands run so far and
the name of the last program (never its arguments, which may hold a path a viewer need not see).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from hivectl.errors import HivectlError
from hivectl.host.base import Host, Result
from hivectl.host.process import Process


class Cancelled(HivectlError):
    """The operation was cancelled before it finished (its applied steps were rolled back)."""

    code = "cancelled"


class CancelToken:
    """Shared by an operation's worker thread (which checks it) and the API (which sets it)."""

    def __init__(self, on_step: Callable[[int, str], None] | None = None) -> None:
        self._requested = threading.Event()
        self._fired = False
        self._lock = threading.Lock()
        self.steps = 0
        self.last = ""
        self._on_step = on_step

    def cancel(self) -> None:
        self._requested.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def fired(self) -> bool:
        """True once a step was refused because of the cancel request."""
        return self._fired

    def checkpoint(self, argv: Sequence[str]) -> None:
        """Before a host command: raise ``Cancelled`` once if cancel was asked, else count the step."""
        with self._lock:
            if self._requested.is_set() and not self._fired:
                self._fired = True
                raise Cancelled(f"cancelled before {Path(argv[0]).name if argv else 'the next step'}")
            self.steps += 1
            self.last = Path(argv[0]).name if argv else ""
        if self._on_step is not None:
            self._on_step(self.steps, self.last)


class SteppedHost(Host):
    """A ``Host`` that asks a ``CancelToken`` before every command and otherwise is ``inner``."""

    def __init__(self, inner: Host, token: CancelToken) -> None:
        self._inner = inner
        self._token = token
        self.platform = inner.platform
        self.root = inner.root

    def __getattr__(self, name: str) -> Any:  # what a concrete host adds beyond the interface
        return getattr(self._inner, name)

    def run(self, argv: Sequence[str], *, check: bool = True, input_text: str | None = None,
            timeout: float | None = None, env: Mapping[str, str] | None = None) -> Result:
        self._token.checkpoint(argv)
        return self._inner.run(argv, check=check, input_text=input_text, timeout=timeout, env=env)

    def devpath(self, path: str) -> Path:
        return self._inner.devpath(path)

    def which(self, program: str) -> str | None:
        return self._inner.which(program)

    def spawn(self, argv: Sequence[str], *, stdin: int | None = -3, stdout: int | None = -3,
              stderr: int | None = -3, env: Mapping[str, str] | None = None, cwd: str | Path = "/",
              pass_fds: Sequence[int] = (), new_session: bool = False) -> Process:
        self._token.checkpoint(argv)
        return self._inner.spawn(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                                 pass_fds=pass_fds, new_session=new_session)

    def run_hook(self, argv: Sequence[str], *, cwd: Path, timeout: float) -> int:
        self._token.checkpoint(argv)
        return self._inner.run_hook(argv, cwd=cwd, timeout=timeout)

    def interactive(self, argv: Sequence[str]) -> int:
        raise HivectlError(f"{argv[0] if argv else 'a program'} needs a terminal: not available through the API")

    def exec(self, argv: Sequence[str]) -> NoReturn:
        program = argv[0] if argv else "a program"
        raise HivectlError(f"{program} would replace the daemon: not available through the API")

    def reading(self, argv: Sequence[str]) -> contextlib.AbstractContextManager[IO[bytes]]:
        self._token.checkpoint(argv)
        return self._inner.reading(argv)

    def writing(self, argv: Sequence[str]) -> contextlib.AbstractContextManager[IO[bytes]]:
        self._token.checkpoint(argv)
        return self._inner.writing(argv)
