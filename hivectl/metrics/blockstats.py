"""``query-blockstats`` of many running QEMUs at once, on one thread, one round trip each.

A scrape asks every running guest's second monitor (``NAME/qmp-ctl.sock``; the supervisor holds the
first). Done one connection after another through ``hivectl/drivers/qemu/qmp.py`` that is three round
trips per guest (greeting, ``qmp_capabilities``, the query) and a thread per concurrent guest; here every
connection is non-blocking under one ``selectors`` loop, and both commands are written at once as soon as
the socket is connected. QMP executes a connection's commands in order (QEMU's ``docs/interop/qmp-spec``:
the greeting is sent on connect, commands are read and answered sequentially, and ``qmp_capabilities``
leaves negotiation mode before the next command is read), so the query's reply, recognised by its
``id``, follows the capabilities reply. At most ``WINDOW`` connections are open at a time.

A monitor that does not answer within the timeout (another client holds it: QEMU serves one at a time) or
answers with an error is reported in the result as a one-line reason; the others are not held up.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hivectl.metrics.sample import DiskSample

WINDOW = 64
REQUEST = b'{"execute": "qmp_capabilities"}\n{"execute": "query-blockstats", "id": "hivectl-metrics"}\n'
MAX_REPLY = 4 << 20  # a QEMU with a few hundred drives answers in well under this


def disks_of(reply: Any) -> list[DiskSample]:
    """The guest's ``diskN`` drives of a ``query-blockstats`` return value (install media, 9p shares and
    nameless nodes are left out: the qemu driver names the guest's drives ``-drive id=diskN``)."""
    disks = []
    for entry in reply if isinstance(reply, list) else []:
        name = str(entry.get("device") or "") if isinstance(entry, dict) else ""
        stats = entry.get("stats") if isinstance(entry, dict) else None
        if not name.startswith("disk") or not name[4:].isdigit() or not isinstance(stats, dict):
            continue
        disks.append(DiskSample(name, int(stats.get("rd_bytes", 0)), int(stats.get("rd_operations", 0)),
                                int(stats.get("wr_bytes", 0)), int(stats.get("wr_operations", 0))))
    return disks


class _Conn:
    __slots__ = ("buffer", "key", "sock")

    def __init__(self, key: str, sock: socket.socket) -> None:
        self.key = key
        self.sock = sock
        self.buffer = b""


def _answer(buffer: bytes) -> tuple[bool, Any]:
    """(done, return value or error text) from what a monitor sent so far."""
    for line in buffer.split(b"\n")[:-1]:
        if not line.strip():
            continue
        message = json.loads(line)
        if not isinstance(message, dict):
            return True, "QEMU sent a message that is not an object"
        if "error" in message:
            error = message["error"]
            return True, str(error.get("desc", error) if isinstance(error, dict) else error)
        if message.get("id") == "hivectl-metrics":
            return True, [message.get("return")]
    return False, None


def collect(sockets: Iterable[tuple[str, Path]], timeout: float = 1.0) -> dict[str, list[DiskSample] | str]:
    """{key: disks, or why not} for each (key, monitor socket)."""
    pending = list(sockets)
    pending.reverse()
    results: dict[str, list[DiskSample] | str] = {}
    selector = selectors.DefaultSelector()
    deadlines: dict[str, float] = {}
    open_conns: dict[str, _Conn] = {}

    def finish(conn: _Conn, result: list[DiskSample] | str) -> None:
        results[conn.key] = result
        selector.unregister(conn.sock)
        conn.sock.close()
        del open_conns[conn.key]

    try:
        while pending or open_conns:
            while pending and len(open_conns) < WINDOW:
                key, path = pending.pop()
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    sock.connect(str(path))
                    sock.sendall(REQUEST)  # a few dozen bytes: fits an empty socket buffer at once
                except OSError as error:
                    sock.close()
                    results[key] = f"cannot reach QEMU's monitor {path}: {error.strerror or error}"
                    continue
                conn = _Conn(key, sock)
                open_conns[key] = conn
                deadlines[key] = time.monotonic() + timeout
                selector.register(sock, selectors.EVENT_READ, conn)
            now = time.monotonic()
            for key, conn in list(open_conns.items()):
                if deadlines[key] <= now:
                    finish(conn, f"QEMU's monitor {key} did not answer within {timeout:g} s")
            if not open_conns:
                continue
            wait = max(0.0, min(deadlines[k] for k in open_conns) - now)
            for event, _ in selector.select(wait):
                conn = event.data
                try:
                    chunk = conn.sock.recv(65536)
                except OSError as error:
                    finish(conn, f"QEMU's monitor: {error.strerror or error}")
                    continue
                if not chunk:
                    finish(conn, "QEMU closed its monitor before answering")
                    continue
                conn.buffer += chunk
                if len(conn.buffer) > MAX_REPLY:
                    finish(conn, "QEMU's monitor sent more than a blockstats reply")
                    continue
                try:
                    done, answer = _answer(conn.buffer)
                except ValueError:
                    finish(conn, "QEMU's monitor sent something that is not JSON")
                    continue
                if done:
                    finish(conn, disks_of(answer[0]) if isinstance(answer, list) else str(answer))
    finally:
        for conn in list(open_conns.values()):
            conn.sock.close()
        selector.close()
    return results
