"""A small synchronous QEMU driver for the tests and the benchmark: spawn, read the serial port, type, QMP.

Deliberately independent of hivectl (which is what these guests exist to test) and stdlib-only. Sockets
live in a short private temp directory because unix socket paths are limited to 107 bytes and pytest's
tmp_path can be longer than that.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")

READY_RE = re.compile(
    r"HIVECTL-GUEST-READY ip=(?P<ip>\S+) mac=(?P<mac>\S+) disks=(?P<disks>\S+) boot=(?P<boot>\S+)\n"
)  # the trailing newline matters: without it a line still arriving could match a truncated field


class GuestError(RuntimeError):
    """The guest did not do what was expected; the message ends with the tail of its serial log."""


@dataclass(frozen=True)
class Ready:
    """The fields of one ``HIVECTL-GUEST-READY`` line."""

    ip: str
    mac: str
    disks: tuple[str, ...]
    boot: str
    seconds: float  # from QEMU launch to the line

    @classmethod
    def parse(cls, match: re.Match[str], seconds: float) -> Ready:
        disks = match["disks"]
        parts = () if disks == "none" else tuple(disks.split(","))
        return cls(match["ip"], match["mac"], parts, match["boot"], seconds)


def base_args(*, memory_mib: int = 256, machine: str = "q35") -> list[str]:
    """Machine options every test uses: TCG (KVM on the CI host is PVM and unusable), nothing implicit."""
    return ["-machine", f"{machine},accel=tcg", "-m", str(memory_mib), "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none"]  # fmt: skip


def uefi_args(vars_copy: Path) -> list[str]:
    """OVMF firmware with a private copy of the variable store (a guest writes its boot entries there)."""
    if not vars_copy.exists():
        shutil.copyfile(OVMF_VARS, vars_copy)
    return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]  # fmt: skip


class QMP:
    """Minimal QMP client over a connected socket: greeting, ``qmp_capabilities``, replies by id, events kept."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self._sock = sock
        self._sock.settimeout(timeout)
        self._file = self._sock.makefile("rb")
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise GuestError(f"unexpected QMP greeting {greeting!r}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise EOFError("QEMU closed the QMP socket")
        msg: dict[str, Any] = json.loads(line)
        return msg

    def execute(self, command: str, **arguments: Any) -> Any:
        ident = next(self._ids)
        msg: dict[str, Any] = {"execute": command, "id": ident}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif reply.get("id") == ident:
                if "error" in reply:
                    raise GuestError(f"QMP {command}: {reply['error']}")
                return reply.get("return")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()


class Guest:
    """One QEMU process with its serial port on a unix socket (read continuously) and a QMP socket.

    ``args`` are the machine-specific options; serial and QMP options are added here. Use as a context
    manager: leaving it always stops QEMU (``quit`` over QMP, then SIGKILL).
    """

    def __init__(self, args: Sequence[str], *, log_dir: Path | None = None, name: str = "guest") -> None:
        self.args = list(args)
        self.name = name
        self._sockdir = Path(tempfile.mkdtemp(prefix="tg-"))
        self.serial_path = self._sockdir / "serial.sock"
        self.qmp_path = self._sockdir / "qmp.sock"
        self.log_dir = log_dir or self._sockdir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: QMP | None = None
        self.started = 0.0
        self._text = ""
        self._cond = threading.Condition()
        self._serial: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._eof = False

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Guest:
        cmd = [QEMU, *self.args,
               "-chardev", f"socket,id=ser0,path={self.serial_path},server=on,wait=off",
               "-serial", "chardev:ser0",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]  # fmt: skip
        (self.log_dir / f"{self.name}.cmd").write_text(" ".join(cmd) + "\n")
        qlog = (self.log_dir / f"{self.name}.qemu.log").open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT)
        qlog.close()
        deadline = self.started + timeout
        self._serial = self._connect_when_listening(self.serial_path, deadline)
        self._reader = threading.Thread(target=self._read_serial, name=f"{self.name}-serial", daemon=True)
        self._reader.start()
        # QEMU makes its sockets one after another: the serial one listening says nothing of QMP's yet.
        self.qmp = QMP(self._connect_when_listening(self.qmp_path, deadline))
        return self

    def _connect_when_listening(self, path: Path, deadline: float) -> socket.socket:
        """A socket connected to ``path`` once QEMU listens there; GuestError if QEMU exits or time runs out."""
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise GuestError(f"qemu exited with {self.proc.returncode} at start: {self._qemu_log()}")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                return s
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise GuestError(f"{path.name} never appeared") from None
                time.sleep(0.01)

    def __enter__(self) -> Guest:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Hard stop (like ``bhyvectl --destroy``); a no-op if QEMU already exited."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                if self.qmp:
                    self.qmp.execute("quit")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.qmp:
            self.qmp.close()
        if self._serial:
            with contextlib.suppress(OSError):
                self._serial.shutdown(socket.SHUT_RDWR)
            self._serial.close()
        if self._reader:
            self._reader.join(2)
        (self.log_dir / f"{self.name}.serial.log").write_text(self.text)
        shutil.rmtree(self._sockdir, ignore_errors=True)

    def wait_exit(self, timeout: float) -> int:
        """Wait for QEMU to exit by itself (guest powered off); GuestError on timeout."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise self._error(f"qemu still running after {timeout} s") from None

    # ---- serial ----------------------------------------------------------------------------------------

    def _read_serial(self) -> None:
        assert self._serial is not None
        dec = codecs.getincrementaldecoder("utf-8")("replace")
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
                self._text += dec.decode(chunk).replace("\r", "")
                self._cond.notify_all()

    @property
    def text(self) -> str:
        """Everything read from the serial port so far (``\\r`` removed)."""
        with self._cond:
            return self._text

    def mark(self) -> int:
        """Current end of the serial log, to search only output that arrives after this point."""
        return len(self.text)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float, start: int = 0) -> re.Match[str]:
        """Wait until ``pattern`` matches serial output at or after offset ``start``."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._text, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(min(left, 0.5))
        why = "serial closed (qemu exited?)" if self._eof else f"timeout after {timeout} s"
        raise self._error(f"{why} waiting for {rx.pattern!r}")

    def wait_ready(self, timeout: float = 60.0, start: int = 0) -> Ready:
        m = self.wait_for(READY_RE, timeout, start)
        return Ready.parse(m, time.monotonic() - self.started)

    def send(self, text: str) -> None:
        assert self._serial is not None
        self._serial.sendall(text.encode())

    def wait_shell(self, timeout: float = 15.0) -> None:
        """Wait for the serial root shell to answer (it starts right after the ready line)."""
        token = secrets.token_hex(4)
        deadline = time.monotonic() + timeout
        start = self.mark()
        while True:
            self.send(f"printf '%s-%s\\n' {token} up\n")
            try:
                self.wait_for(f"{token}-up", min(1.0, max(0.1, deadline - time.monotonic())), start)
                return
            except GuestError:
                if time.monotonic() > deadline:
                    raise

    def run(self, command: str, timeout: float = 15.0) -> tuple[int, str]:
        """Type ``command`` into the serial shell; return (exit status, output).

        The output is framed by markers that ``printf`` assembles from two words, so the shell's echo of
        the typed line (which contains them separated by a space) can never be mistaken for them.
        """
        token = secrets.token_hex(4)
        start = self.mark()
        self.send(f"printf '%s-%s\\n' {token} begin; {command}; printf '%s-%s\\n' {token} \"rc$?\"\n")
        end = self.wait_for(rf"{token}-rc(\d+)\n", timeout, start)
        begin = self.wait_for(f"{token}-begin\n", 1, start)
        return int(end[1]), self.text[begin.end() : end.start()]

    # ---- helpers ---------------------------------------------------------------------------------------

    def _qemu_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.log_dir / f"{self.name}.qemu.log").read_text()[-2000:]
        return ""

    def _error(self, msg: str) -> GuestError:
        tail = self.text[-3000:]
        return GuestError(
            f"{self.name}: {msg}\n--- serial tail ---\n{tail}\n--- qemu ---\n{self._qemu_log()}"
        )


def tcg_only_host() -> bool:
    """True when KVM would be a trap here (PVM host or no vmx/svm): the reason every test uses TCG."""
    if os.path.isdir("/sys/module/kvm_pvm"):
        return True
    try:
        return re.search(r"\b(vmx|svm)\b", Path("/proc/cpuinfo").read_text()) is None
    except OSError:
        return True
