"""The ``Host`` interface: argv lists in, results out; never a shell string.

Everything hivectl does to a machine (FreeBSD tools, iproute2, QEMU) goes through ``Host.run``. That
keeps three promises checkable in one place: no shell is ever involved, ``--dry-run`` can show every
command, and tests can point the whole product at the simulated FreeBSD host by changing PATH.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from hivectl.errors import HivectlError
from hivectl.records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import contextlib
    from typing import IO, NoReturn

    from hivectl.host.process import Process

# FreeBSD paths that hivectl checks itself (device nodes, firmware). Under HIVECTL_HOST_ROOT they are
# looked up below that prefix so the simulated host can provide them; argv always keeps the real path.
MAPPED_PREFIXES = ("/dev/", "/usr/local/share/", "/boot/")


@record(frozen=True)
class Result:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    status: int
    stdout: str
    stderr: str


class CommandFailed(HivectlError):
    """A host command exited non-zero; the message quotes the command and its own error text.

    The whole text, its lines joined into one: tools such as zfs(8) put the error on the first line and
    what to do on the next ones ("cannot destroy 'P@S': snapshot has dependent clones / use '-R' to
    destroy the following datasets: / P2"), so no single line is the message.
    """

    MAX_LINES = 12  # enough for zfs's lists; a tool that dumps more is cut, and says so

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(f"{' '.join(result.argv)}: {self.why(result)}")

    @classmethod
    def why(cls, result: Result) -> str:
        detail = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
        if not detail:
            return f"exit status {result.status}"
        shown = detail[: cls.MAX_LINES]
        if len(detail) > len(shown):
            shown.append(f"({len(detail) - len(shown)} more lines)")
        return " ".join(line if line.endswith((":", ".", ";")) else line + ";" for line in shown[:-1]) \
            + (" " if len(shown) > 1 else "") + shown[-1]


class Host(ABC):
    """A machine hivectl manages: short commands (``run``), long-running and interactive processes
    (``spawn``, ``run_hook``, ``interactive``, ``exec``) and byte streams (``reading``/``writing``, the
    ``zfs send``/``recv`` pipes). Outside ``hivectl/host/`` nothing starts a process any other way.
    """

    platform: str
    root: Path

    @abstractmethod
    def run(self, argv: Sequence[str], *, check: bool = True, input_text: str | None = None,
            timeout: float | None = None, env: Mapping[str, str] | None = None) -> Result:
        """Run ``argv`` to completion and return its result; raise ``CommandFailed`` if ``check``."""

    def devpath(self, path: str) -> Path:
        """Where hivectl itself looks for a FreeBSD system path (device node, firmware file)."""
        if str(self.root) != "/" and path.startswith(MAPPED_PREFIXES):
            return Path(str(self.root) + path)
        return Path(path)

    def which(self, program: str) -> str | None:
        """The full path of ``program`` on this host's PATH, or None: ``shutil.which`` (an executable
        file, not a directory; a name with a slash is checked as it is), without importing shutil and
        its compression modules on every start."""
        if os.sep in program:
            candidates = [program]
        else:
            search = os.environ.get("PATH")
            if search is None:
                search = os.confstr("CS_PATH") or os.defpath
            candidates = [os.path.join(d, program) for d in dict.fromkeys(search.split(os.pathsep))] if search else []
        for candidate in candidates:
            if os.access(candidate, os.F_OK | os.X_OK) and not os.path.isdir(candidate):
                return candidate
        return None

    def spawn(self, argv: Sequence[str], *, stdin: int | None = -3, stdout: int | None = -3,
              stderr: int | None = -3, env: Mapping[str, str] | None = None, cwd: str | Path = "/",
              pass_fds: Sequence[int] = (), new_session: bool = False) -> Process:
        """Start a long-running program and return its handle at once (see ``hivectl.host.process``);
        -3 is ``subprocess.DEVNULL``, ``None`` inherits this process's descriptor."""
        from hivectl.host import process

        return process.spawn(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                             pass_fds=pass_fds, new_session=new_session)

    def run_hook(self, argv: Sequence[str], *, cwd: Path, timeout: float) -> int:
        """A user's hook (``prestart``) run to completion without a terminal; its exit status."""
        from hivectl.host import process

        return process.run_hook(argv, cwd=cwd, timeout=timeout)

    def interactive(self, argv: Sequence[str]) -> int:
        """A program sharing this terminal (``$EDITOR``); its exit status."""
        from hivectl.host import process

        return process.interactive(argv)

    def exec(self, argv: Sequence[str]) -> NoReturn:
        """Replace this process with ``argv`` (a console client)."""
        from hivectl.host import process

        process.replace(argv)

    def reading(self, argv: Sequence[str]) -> contextlib.AbstractContextManager[IO[bytes]]:
        """``argv``'s standard output as a stream (``zfs send``), its exit status checked at the end."""
        from hivectl.host import streams

        return streams.reading(argv)

    def writing(self, argv: Sequence[str]) -> contextlib.AbstractContextManager[IO[bytes]]:
        """``argv``'s standard input as a stream (``zfs recv``), its exit status checked at the end."""
        from hivectl.host import streams

        return streams.writing(argv)
