"""A small synchronous QMP client (stdlib only): greeting, capabilities, commands by id, events.

Why our own rather than ``qemu.qmp``: hivectl has no runtime dependencies (it runs as root on hypervisor
hosts), and what it needs from QMP is a few commands and one event stream, which fit in a page.

Protocol, as QEMU speaks it on a unix socket: the server sends a greeting (``{"QMP": {...}}``); the
client sends ``qmp_capabilities`` to leave negotiation mode; then each command ``{"execute": ...,
"id": N}`` gets exactly one reply with the same id (``return`` or ``error``), and asynchronous events
(``{"event": ..., "data": ..., "timestamp": ...}``) may arrive at any point in between. One JSON object
per line.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

from hivectl.errors import HivectlError
from hivectl.jsonline import json_object

Message = dict[str, Any]


class QmpError(HivectlError):
    """QMP could not be reached, or QEMU refused a command (the message quotes QEMU's reason)."""


class QmpClient:
    """One QMP connection. Use as a context manager; ``timeout`` bounds every blocking step."""

    def __init__(self, path: Path, timeout: float | None = 5.0) -> None:
        self.path = path
        self.timeout = timeout
        self.events: deque[Message] = deque()
        self.greeting: Message = {}
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 0
        self._eof = False

    # -- connection ------------------------------------------------------------------------------------
    def connect(self) -> QmpClient:
        """Connect, read the greeting and negotiate capabilities. Raises ``OSError`` if nobody listens."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        try:
            greeting = self._read_message(self.timeout)
            if greeting is None or "QMP" not in greeting:
                raise QmpError(f"{self.path}: not a QMP greeting: {greeting!r}")
            self.greeting = greeting
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def shutdown(self) -> None:
        """Unblock a reader in another thread (the socket is closed by that reader's ``close``)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> QmpClient:
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages --------------------------------------------------------------------------------------
    def send(self, command: str, arguments: dict[str, Any] | None = None, fd: int | None = None) -> str:
        """Send a command without waiting for its reply; returns the id the reply will carry. ``fd`` goes
        along as SCM_RIGHTS ancillary data, as QMP ``getfd`` expects it (qemu-qmp-ref(7))."""
        if self._sock is None:
            raise QmpError(f"{self.path}: not connected")
        self._next_id += 1
        ident = f"hivectl-{self._next_id}"
        message: Message = {"execute": command, "id": ident}
        if arguments:
            message["arguments"] = arguments
        data = json.dumps(message).encode() + b"\n"
        try:
            if fd is None:
                self._sock.sendall(data)
            else:
                sent = socket.send_fds(self._sock, [data], [fd])
                if sent < len(data):
                    self._sock.sendall(data[sent:])
        except OSError as error:
            raise QmpError(f"{self.path}: {command}: {error.strerror or error}") from None
        return ident

    def execute(self, command: str, arguments: dict[str, Any] | None = None, fd: int | None = None) -> Any:
        """Run a command and return its ``return`` value; events read meanwhile are kept in ``events``."""
        ident = self.send(command, arguments, fd)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._read_message(left)
            if message is None:
                raise QmpError(f"{self.path}: QEMU closed the connection during {command}")
            if "event" in message:
                self.events.append(message)
            elif message.get("id") == ident:
                if "error" in message:
                    error = message["error"]
                    desc = error.get("desc", error) if isinstance(error, dict) else error
                    raise QmpError(f"QMP {command}: {desc}")
                return message.get("return")

    def next_event(self, timeout: float | None = None) -> Message | None:
        """The next event (queued ones first); None when QEMU closed the connection.

        Replies to commands sent with ``send`` are skipped. Raises ``TimeoutError`` after ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.events:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._read_message(left)
            if message is None:
                return None
            if "event" in message:
                self.events.append(message)
        return self.events.popleft()

    # -- framing ---------------------------------------------------------------------------------------
    def _read_message(self, timeout: float | None) -> Message | None:
        """One JSON line; None at end of stream. Raises ``TimeoutError`` when ``timeout`` passes."""
        if self._sock is None:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{self.path}: no answer from QEMU within {timeout} s")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            except TimeoutError:
                raise TimeoutError(f"{self.path}: no answer from QEMU within {timeout} s") from None
            except OSError:
                chunk = b""  # shut down from another thread: treat as the end of the stream
            if not chunk:
                self._eof = True
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json_object(line, QmpError, f"{self.path}: QEMU sent")


def command(path: Path, name: str, arguments: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """Connect, run one command, disconnect. Connection problems become ``QmpError`` naming the socket."""
    client = QmpClient(path, timeout)
    try:
        client.connect()
    except (OSError, TimeoutError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise QmpError(f"cannot reach QEMU's monitor {path}: {why} (is the guest running?)") from None
    with client:
        try:
            return client.execute(name, arguments)
        except TimeoutError as error:
            raise QmpError(f"QMP {name}: {error}") from None
