"""Run a planned QEMU boot for real: spawn it as the supervisor would, read its serial socket, wait.

This is test scaffolding around the driver, not a second driver: the command line, the prepare actions,
the watcher and the control calls are all the product's own; only process spawning (the supervisor's job)
and a serial reader are done here.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

from hivectl.drivers.base import BootPlan
from hivectl.drivers.qemu.driver import QemuDriver
from hivectl.drivers.qemu.events import EventWatch
from hivectl.plan import Plan
from hivectl.store import GuestRef

READY_RE = re.compile(r"HIVECTL-GUEST-READY ip=(\S+) mac=(\S+) disks=(\S+) boot=(\S+)\n")


class Run:
    """One QEMU process started from a ``BootPlan``; always stopped when the ``with`` block ends."""

    def __init__(self, driver: QemuDriver, ref: GuestRef, plan: BootPlan, extra: tuple[str, ...] = ()) -> None:
        self.driver = driver
        self.ref = ref
        self.plan = plan
        self.argv = [*plan.hypervisor, *extra]
        self.log = ref.directory / "qemu.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.watcher: EventWatch | None = None
        self._text = ""
        self._cond = threading.Condition()
        self._eof = False
        self._serial: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, watch: bool = True, serial: bool = True, timeout: float = 10.0) -> Run:
        Plan(list(self.plan.prepare)).apply(self.driver.host)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if watch:
            self.watcher = self.driver.watch(self.ref, self.proc)
        if serial:
            self._serial = self._connect(self.driver.sockets(self.ref).serial("com1", True), timeout)
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _connect(self, path: Path, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
            if self.proc.poll() is not None:
                raise AssertionError(f"qemu exited with {self.proc.returncode}: {self.qemu_log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} never appeared: {self.qemu_log()}")
            time.sleep(0.01)

    def wait_control(self, timeout: float = 60.0) -> None:
        """Wait until QEMU's control monitor answers a command (QEMU is up and has parsed its whole command
        line). The socket listens, and its greeting comes from the monitor's own I/O thread, early in QEMU's
        set-up; commands run in the main loop only, which QEMU reaches after it has set up every device
        and locked its memory (``-overcommit mem-lock=on``: 4-5 s here for a 64 MB TCG guest)."""
        from hivectl.drivers.qemu import qmp

        deadline = time.monotonic() + timeout
        path = self.driver.sockets(self.ref).control
        self._connect(path, timeout).close()
        qmp.command(path, "query-status", timeout=max(1.0, deadline - time.monotonic()))

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"qemu still running after {timeout} s\n{self.tail()}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.watcher is not None:
            self.watcher.stop()
        if self._serial is not None:
            with contextlib.suppress(OSError):
                self._serial.shutdown(socket.SHUT_RDWR)
            self._serial.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serial ----------------------------------------------------------------------------------------
    def _read(self) -> None:
        assert self._serial is not None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                chunk = self._serial.recv(65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    return
                self._text += decoder.decode(chunk).replace("\r", "")
                self._cond.notify_all()

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                match = regex.search(self._text)
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(min(left, 0.5))
        raise AssertionError(f"no {regex.pattern!r} on the serial console within {timeout} s\n{self.tail()}")

    def send(self, text: str) -> None:
        assert self._serial is not None
        self._serial.sendall(text.encode())

    @property
    def text(self) -> str:
        with self._cond:
            return self._text

    def qemu_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def tail(self) -> str:
        return f"--- serial ---\n{self.text[-2500:]}\n--- qemu ---\n{self.qemu_log()}"
