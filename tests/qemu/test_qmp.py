"""The QMP client and the exit classification, against a real (paused, guest-less) QEMU."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivectl.drivers.base import Outcome
from hivectl.drivers.qemu import qmp
from hivectl.drivers.qemu.events import EventWatch, outcome_for


@pytest.fixture
def paused_qemu() -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """QEMU with no guest at all (``-S``): enough for QMP, costs no CPU."""
    directory = Path(tempfile.mkdtemp(prefix="hq-", dir="/tmp"))
    path = directory / "qmp.sock"
    argv = ["qemu-system-x86_64", "-S", "-machine", "q35,accel=tcg", "-nodefaults", "-display", "none", "-m", "64",
            "-action", "reboot=shutdown", "-chardev", f"socket,id=m,path={path},server=on,wait=off",
            "-mon", "chardev=m,mode=control"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        # The socket and its greeting come early (QMP's I/O thread); commands wait for QEMU's main loop,
        # which a loaded machine can take longer than a command's 5 s to reach: wait for it once, here.
        qmp.command(path, "query-status", timeout=60)
        yield proc, path
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_commands_errors_and_events(paused_qemu: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, path = paused_qemu
    with qmp.QmpClient(path) as client:
        assert client.greeting["QMP"]["version"]["qemu"]["major"] >= 6
        assert client.execute("query-status")["status"] == "prelaunch"
        with pytest.raises(qmp.QmpError, match=r"QMP no-such-command: .*has not been found"):
            client.execute("no-such-command")
        client.execute("system_reset")  # with -action reboot=shutdown this ends QEMU
        event = client.next_event(5)
        assert event is not None and event["event"] == "SHUTDOWN"
        assert event["data"]["reason"] == "host-qmp-system-reset"
        assert client.next_event(5) is None  # QEMU closed the socket
    assert proc.wait(5) == 0


def test_one_shot_command_and_unreachable_monitor(paused_qemu: tuple[subprocess.Popen[bytes], Path],
                                                   tmp_path: Path) -> None:
    _, path = paused_qemu
    assert qmp.command(path, "query-status")["running"] is False
    with pytest.raises(qmp.QmpError, match=r"cannot reach QEMU's monitor .*missing\.sock"):
        qmp.command(tmp_path / "missing.sock", "query-status")


def test_watch_sees_every_event_until_qemu_exits(paused_qemu: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, path = paused_qemu
    watch = EventWatch(path, proc.pid).start()
    assert watch.connected.wait(10)
    assert not watch.wait(0.2)  # still holding the connection
    control = qmp.QmpClient(path, timeout=1)
    with pytest.raises(TimeoutError):
        control.connect()  # one client at a time: why the driver has a second monitor for control
    control.close()
    proc.send_signal(15)
    assert proc.wait(5) == 0
    assert watch.wait(5)
    assert watch.shutdown_reason == "host-signal"
    assert watch.outcome(0) is Outcome.KILLED


def test_watch_gives_up_when_qemu_is_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer exists: the watcher must not wait out its 10 s
    watch = EventWatch(tmp_path / "never.sock", pid=gone.pid, connect_timeout=10).start()
    assert watch.wait(2) and not watch.connected.is_set()
    assert watch.outcome(0) is Outcome.POWEROFF


@pytest.mark.parametrize(("status", "reason", "panicked", "expected"), [
    (0, "guest-reset", False, Outcome.REBOOT),
    (0, "host-qmp-system-reset", False, Outcome.REBOOT),
    (0, "guest-shutdown", False, Outcome.POWEROFF),
    (0, "host-qmp-quit", False, Outcome.POWEROFF),
    (0, "host-signal", False, Outcome.KILLED),
    (0, "guest-panic", False, Outcome.FAULT),
    (0, None, False, Outcome.POWEROFF),  # no watcher: never restart against the administrator's wish
    (0, "something-new", False, Outcome.POWEROFF),
    (-9, "guest-reset", False, Outcome.KILLED),
    (1, None, False, Outcome.ERROR),
    (1, None, True, Outcome.FAULT),
])
def test_outcome_table(status: int, reason: str | None, panicked: bool, expected: Outcome) -> None:
    assert outcome_for(status, reason, panicked) is expected
