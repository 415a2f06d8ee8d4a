"""``hivectl start`` of a QEMU guest reports success only once QEMU's monitor answers (``Driver.wait_ready``).

QEMU sets up its devices, chardevs and displays before its main loop, and only the main loop answers
QMP; a start that fails there (a VNC port taken, a tap busy) makes QEMU exit after that set-up. On a
loaded host the set-up can outlast the supervisor's one-second survival check: CI saw ``start`` print
"started" and QEMU exit on a taken VNC port a moment later. A stand-in ``qemu-system-x86_64`` first on
PATH makes the slowness certain: it listens on the monitor sockets QEMU is given but answers nothing
for 2.5 s, then either fails as QEMU does on a taken port or starts serving QMP.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.lifecycle.qemu_stand_in import NAME, REPO, qemu_bed, wait_cleaned_up

STAND_IN = r'''#!PYTHON
import json, os, selectors, socket, sys, time
mode, marker = os.environ["STAND_IN_MODE"], os.environ["STAND_IN_MARKER"]
paths = [a.split("path=", 1)[1].split(",", 1)[0] for a in sys.argv if a.startswith("socket,id=qmp")]
listeners = []
for path in paths:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    listeners.append(s)
time.sleep(2.5)  # "setting up devices": connections wait in the backlog, unanswered
if mode == "fail":
    sys.stderr.write("qemu-system-x86_64: -vnc 127.0.0.1:77: Failed to bind socket: Address already in use\n")
    sys.exit(1)
sel = selectors.DefaultSelector()
for s in listeners:
    sel.register(s, selectors.EVENT_READ, None)
greeting = json.dumps({"QMP": {"version": {}, "capabilities": []}}).encode() + b"\n"
while True:
    for key, _ in sel.select():
        if key.data is None:
            conn, _ = key.fileobj.accept()
            conn.sendall(greeting)
            sel.register(conn, selectors.EVENT_READ, b"")
            continue
        data = key.fileobj.recv(4096)
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            continue
        for line in data.splitlines():
            request = json.loads(line)
            command = request.get("execute")
            answer = {"status": "running", "running": True} if command == "query-status" else {}
            key.fileobj.sendall(json.dumps({"return": answer, "id": request.get("id")}).encode() + b"\n")
            if command == "query-status":
                open(marker, "a").close()
            if command == "quit":
                sys.exit(0)
'''


def bed(tmp_path: Path, mode: str) -> dict[str, str]:
    return qemu_bed(tmp_path, STAND_IN.replace("PYTHON", sys.executable, 1), STAND_IN_MODE=mode,
                    STAND_IN_MARKER=str(tmp_path / "answered"))


def hivectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "bin" / "hivectl"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_qemu_that_fails_after_the_first_second_fails_the_start(tmp_path: Path) -> None:
    env = bed(tmp_path, "fail")
    started = hivectl(env, "start", NAME)
    assert started.returncode == 1, (started.stdout, started.stderr)
    assert "Failed to bind socket: Address already in use" in started.stderr, started.stderr
    wait_cleaned_up(tmp_path)
    assert "Stopped" in hivectl(env, "list").stdout


def test_start_returns_once_the_monitor_answers(tmp_path: Path) -> None:
    env = bed(tmp_path, "serve")
    started = hivectl(env, "start", NAME)
    try:
        assert started.returncode == 0, started.stderr
        assert f"{NAME}: started" in started.stdout
        assert (tmp_path / "answered").exists(), "start reported success before QEMU's monitor answered"
    finally:
        off = hivectl(env, "poweroff", "-f", NAME)
        wait_cleaned_up(tmp_path)
    assert off.returncode == 0, off.stderr
