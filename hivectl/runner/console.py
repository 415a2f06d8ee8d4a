"""A minimal serial-console client for consoles exposed as unix sockets (the QEMU driver).

On a terminal it works like ``cu``: raw mode, and ``~.`` at the start of a line leaves. Without a
terminal (scripts, tests) it sends standard input to the guest and prints what the guest says until
input ends and the guest has been quiet for a moment.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import termios
import time
import tty
from pathlib import Path

from hivectl.errors import HivectlError

QUIET_AFTER_EOF = 1.5


def relay(path: Path) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as error:
        raise HivectlError(f"cannot connect to console {path}: {error.strerror} "
                           "(is another client attached?)") from None
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    interactive = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if interactive else None
    if interactive:
        sys.stderr.write("[connected; type ~. at the start of a line to leave]\r\n")
        tty.setraw(stdin)
    line_start = True
    tilde = False
    eof_at: float | None = None
    try:
        while True:
            watch = [sock] if eof_at is not None else [sock, stdin]
            ready, _, _ = select.select(watch, [], [], 0.2)
            if eof_at is not None and not ready and time.monotonic() - eof_at > QUIET_AFTER_EOF:
                return 0
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return 0
                os.write(stdout, data)
                if eof_at is not None:
                    eof_at = time.monotonic()
            if stdin in ready:
                data = os.read(stdin, 1024)
                if not data:
                    eof_at = time.monotonic()
                    continue
                if interactive:
                    out = bytearray()
                    for byte in data:
                        if tilde and byte == ord("."):
                            return 0
                        if line_start and byte == ord("~") and not tilde:
                            tilde = True
                            continue
                        if tilde:
                            out.append(ord("~"))
                            tilde = False
                        out.append(byte)
                        line_start = byte in (10, 13)
                    data = bytes(out)
                sock.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            sys.stderr.write("\r\n[disconnected]\r\n")
        with contextlib.suppress(OSError):
            sock.close()
