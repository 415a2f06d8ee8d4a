"""A real ``hivectl zygote`` for a test: started from a checkout's launcher, its log read, ended by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_helpers import HIVECTL, REPO, Outcome


class Zygote:
    """One zygote process listening on ``socket`` (its log, one line per request served, in ``log``)."""

    def __init__(self, socket: Path, log: Path, launcher: list[str] | None = None,
                 extra: list[str] | None = None, preexec: list[str] | None = None) -> None:
        self.socket = socket
        self.log = log
        argv = [*(preexec or []), *(launcher or HIVECTL), "zygote", "--socket", str(socket), *(extra or [])]
        with open(log, "wb") as sink:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                         env={**os.environ, "HIVECTL_ZYGOTE_SOCKET": "off"})

    def wait_listening(self, count: int = 1, timeout: float = 60.0) -> None:
        """Until the log says "listening" ``count`` times (a re-exec listens again)."""
        deadline = time.monotonic() + timeout
        while self.text().count(" listening on ") < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"the zygote exited with {self.proc.returncode}: {self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the zygote did not listen within {timeout} s: {self.text()}")
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def served(self) -> list[str]:
        """The "served" lines of the log: one per child reaped."""
        return [line for line in self.text().splitlines() if " served pid=" in line]

    def wait_served(self, count: int, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.served()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} requests not logged within {timeout} s: {self.text()}")
            time.sleep(0.05)
        return self.served()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


def through(socket: Path | str, *args: str, launcher: list[str] | None = None, env: dict[str, str] | None = None,
            input_text: str | None = None, timeout: float = 60, preexec: list[str] | None = None) -> Outcome:
    """``hivectl ARGS`` by the launcher with ``HIVECTL_ZYGOTE_SOCKET=socket`` (``off``: never the zygote)."""
    done = subprocess.run([*(preexec or []), *(launcher or HIVECTL), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {}), "HIVECTL_ZYGOTE_SOCKET": str(socket)},
                          input=input_text, timeout=timeout, check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


def direct(*args: str, **kwargs: object) -> Outcome:
    return through("off", *args, **kwargs)  # type: ignore[arg-type]


def copy_checkout(target: Path) -> list[str]:
    """A copy of this checkout's ``bin/hivectl`` and ``hivectl/`` under ``target``; its launcher's argv."""
    import shutil

    shutil.copytree(REPO / "hivectl", target / "hivectl", ignore=shutil.ignore_patterns("__pycache__"))
    (target / "bin").mkdir(parents=True)
    shutil.copy2(REPO / "bin" / "hivectl", target / "bin" / "hivectl")
    return [sys.executable, "-S", str(target / "bin" / "hivectl")]
