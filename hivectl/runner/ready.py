"""How a supervisor tells the waiting ``start`` whether the guest came up: one line, ``ok PID`` or
``error: WHY``, written once the first boot has passed (or failed) its start-up checks.

Two carriers, because ``start`` launches supervisors two ways:
- a detached supervisor is ``start``'s own child, so it inherits the write end of a pipe
  (``HIVECTL_READY_FD``); when the supervisor dies without answering, the pipe reports end-of-file;
- with console=tmux the tmux *server* spawns the supervisor, and no file descriptor can cross that
  boundary. ``start`` then makes a FIFO in a private temporary directory and passes its path
  (``HIVECTL_READY_FIFO``, through ``tmux new-session -e``). The supervisor opens it first thing and says
  ``hello PID``; from then on end-of-file means it died, as with the pipe. Before the hello, end-of-file
  means nothing (a FIFO nobody has opened for writing yet reads as end-of-file on some systems), so the
  reader asks a liveness callback (``tmux has-session``) instead, and a session that vanished without a
  word is a failed start rather than a minute-long wait.

Polling the guest's lock and state files would also work across tmux, but could only say *that* the start
failed; the channel carries *why* (the loader's or bhyve's last words), which is what the user needs.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable

FD_ENV = "HIVECTL_READY_FD"
FIFO_ENV = "HIVECTL_READY_FIFO"
HELLO = "hello"
LIVENESS_EVERY = 0.5


def open_writer() -> int:
    """The supervisor's end (-1 when nobody waits); the variables are removed so children never see them."""
    fd_text = os.environ.pop(FD_ENV, "")
    fifo = os.environ.pop(FIFO_ENV, "")
    if fd_text.isdigit():
        return int(fd_text)
    if not fifo:
        return -1
    try:
        # Non-blocking open fails at once (ENXIO) if ``start`` already gave up and closed its end.
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return -1
    os.set_blocking(fd, True)
    with contextlib.suppress(OSError):
        os.write(fd, f"{HELLO} {os.getpid()}\n".encode())
    return fd


def send(fd: int, message: str) -> None:
    """Write the one answer and close; a reader that gave up (EPIPE) is not an error."""
    with contextlib.suppress(OSError):
        os.write(fd, (message.strip() + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)


def await_answer(fd: int, timeout: float, alive: Callable[[], bool] | None = None) -> str:
    """The first line that is not a hello, or "" on end-of-file or timeout.

    ``alive`` is only consulted until the writer has said hello (FIFO carrier); without it, end-of-file
    is final at once (pipe carrier).
    """
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + LIVENESS_EVERY
    connected = alive is None
    data = b""
    while True:
        while b"\n" in data:
            line, data = data.split(b"\n", 1)
            text = line.decode(errors="replace").strip()
            if text.split(" ", 1)[0] == HELLO:
                connected = True
            elif text:
                return text
        now = time.monotonic()
        if now >= deadline:
            return ""
        ready, _, _ = select.select([fd], [], [], min(deadline - now, 0.2))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                chunk = None
            if chunk:
                data += chunk
                continue
            if chunk == b"" and connected:
                return data.decode(errors="replace").strip()
            time.sleep(0.05)  # end-of-file before any writer: nothing to read yet
        if not connected and alive is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + LIVENESS_EVERY
            if not alive():
                return _drain(fd, data)


def _drain(fd: int, data: bytes) -> str:
    """Whatever the writer managed to say before it vanished (it may have answered and exited at once)."""
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 4096):
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        text = line.strip()
        if text and text.split(" ", 1)[0] != HELLO:
            return text
    return ""
