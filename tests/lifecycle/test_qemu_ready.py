"""``hivectl start`` of a QEMU guest reports success only once QEMU's monitor answers (``Driver.wait_ready``).

QEMU sets up its devices, chardevs and displays before its main loop, and only the main loop answers
QMP; a start that fails there (a VNC port taken, a tap busy) makes QEMU exit after that set-up. On a
loaded host the set-up can outlast the supervisor's one-second survival check: CI saw ``start`` print
"started" and QEMU exit on a taken VNC port a moment later. A stand-in ``qemu-system-x86_64`` first on
PATH makes the slowness certain: it listens on the monitor sockets QEMU is given but answers nothing
for 2.5 s, then either fails as QEMU does on a taken port or starts serving QMP.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

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
    vm = tmp_path / "vm"
    guest = vm / "g1"
    (vm / ".config").mkdir(parents=True)
    (vm / ".config" / "system.conf").write_text("")
    guest.mkdir()
    (guest / "g1.conf").write_text('loader="grub"\ncpu=1\nmemory=64M\nqemu_kernel="kernel"\n')
    (guest / "kernel").write_text("")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stand_in = bindir / "qemu-system-x86_64"
    stand_in.write_text(STAND_IN.replace("PYTHON", sys.executable, 1))
    stand_in.chmod(0o755)
    return {**os.environ, "HIVECTL_VM_DIR": str(vm), "HIVECTL_RC_CONF": str(tmp_path / "rc.conf"),
            "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg",
            "PYTHONPATH": str(REPO), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "STAND_IN_MODE": mode, "STAND_IN_MARKER": str(tmp_path / "answered")}


def hivectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "bin" / "hivectl"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def wait_unlocked(tmp_path: Path) -> None:
    lock = tmp_path / "vm" / "g1" / "run.lock"
    deadline = time.monotonic() + 60
    while lock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not lock.exists(), "the supervisor did not clean up after its stand-in QEMU"


def test_a_qemu_that_fails_after_the_first_second_fails_the_start(tmp_path: Path) -> None:
    env = bed(tmp_path, "fail")
    started = hivectl(env, "start", "g1")
    assert started.returncode == 1, (started.stdout, started.stderr)
    assert "Failed to bind socket: Address already in use" in started.stderr, started.stderr
    wait_unlocked(tmp_path)
    assert "Stopped" in hivectl(env, "list").stdout


def test_start_returns_once_the_monitor_answers(tmp_path: Path) -> None:
    env = bed(tmp_path, "serve")
    started = hivectl(env, "start", "g1")
    try:
        assert started.returncode == 0, started.stderr
        assert "g1: started" in started.stdout
        assert (tmp_path / "answered").exists(), "start reported success before QEMU's monitor answered"
    finally:
        off = hivectl(env, "poweroff", "-f", "g1")
        wait_unlocked(tmp_path)
    assert off.returncode == 0, off.stderr
