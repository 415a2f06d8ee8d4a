"""The start-up server (``hivectl zygote``, docs/architecture.md "The zygote") on the simulated FreeBSD host.

Every test runs real processes: the zygote started by the launcher, commands run by the launcher with
``HIVECTL_ZYGOTE_SOCKET`` pointing at it (or ``off``), the stand-ins of tests/simhost recording the host
commands. Whether the zygote or the launcher itself ran a command is read from the zygote's log (one
``served`` line per child), so a silent fallback cannot pass for the zygote.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import HIVECTL
from tests.lifecycle_helpers import make_guest, state_of, wait_for
from tests.zygote.helpers import Zygote, copy_checkout, direct, through


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    where = tmp_path / "zygote"
    where.mkdir(mode=0o700)
    server = Zygote(where / "z.sock", tmp_path / "zygote.log")
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def test_the_socket_is_0660_and_the_same_commands_give_the_same_results(host: Any, zygote: Zygote) -> None:
    mode = os.stat(zygote.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    make_guest(host, "g1")
    commands = [["list"], ["start", "--dry-run", "g1"], ["info", "g1"], ["li", "--json"], ["version"],
                ["bogus"], ["info", "nosuch"], ["start", "--bogus-option", "g1"], ["--version"], ["help", "stop"]]
    for number, argv in enumerate(commands, 1):
        served = through(zygote.socket, *argv)
        assert zygote.wait_served(number)[-1].split("status=")[1].split()[0] == f"exit:{served.status}"
        alone = direct(*argv)
        assert (served.status, served.out, served.err) == (alone.status, alone.out, alone.err), argv
    assert [line.split("status=")[1].split()[0] for line in zygote.served()] == [
        "exit:0", "exit:0", "exit:0", "exit:0", "exit:0", "exit:2", "exit:1", "exit:2", "exit:0", "exit:0"]


def test_stdin_cwd_and_the_environment_are_the_callers(host: Any, zygote: Zygote, tmp_path: Path) -> None:
    make_guest(host, "g1")
    other = tmp_path / "other"  # the environment: another vm_dir, named only in the caller's environment
    other.mkdir()
    assert direct("init", env={"HIVECTL_VM_DIR": str(other)}).status == 0
    assert "g1" not in through(zygote.socket, "list", env={"HIVECTL_VM_DIR": str(other)}).out
    assert "g1" in through(zygote.socket, "list").out
    script = ("#!/bin/sh\nbhyve -c 2 -m 1G -U 8a291b00-5126-460a-810c-59d9acda3ed9 -s 0,hostbridge "
              "-s 3,virtio-blk,/tmp/d.img -s 31,lpc -l com1,stdio "
              "-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd imported\n")
    (tmp_path / "run.sh").write_text(script)
    runs = []
    for socket_path in (zygote.socket, "off"):
        env = {**os.environ, "HIVECTL_ZYGOTE_SOCKET": str(socket_path)}
        relative = subprocess.run([*HIVECTL, "import", "--script", "run.sh", "--dry-run"], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, check=False, timeout=60)
        piped = subprocess.run([*HIVECTL, "import", "--script", "/dev/stdin", "--dry-run"], env=env, input=script,
                               capture_output=True, text=True, check=False, timeout=60)
        runs.append([(r.returncode, re.sub(r"staging-imported-[0-9a-f]+", "staging", r.stdout), r.stderr)
                     for r in (relative, piped)])
    assert runs[0] == runs[1]
    assert runs[0][0][0] == 0 and "disk0_name=/tmp/d.img" in runs[0][0][1], runs[0]
    assert runs[0][0] == runs[0][1], "the script read from stdin is the one read from the directory"
    assert len(zygote.wait_served(4)) == 4


def test_a_real_start_and_stop_record_the_same_host_commands(host: Any, zygote: Zygote) -> None:
    guest = make_guest(host, "g1")

    def cycle(run: Any) -> list[list[str]]:
        host.clear_commands()
        started = run("start", "g1")
        assert started.status == 0, started.err
        assert state_of("g1")["state"].startswith("Running")
        stopped = run("stop", "--timeout", "20", "g1")
        assert stopped.status == 0, stopped.err
        wait_for(lambda: not (guest / "run.lock").exists(), what="the supervisor's cleanup")
        return host.commands()

    alone = cycle(direct)
    served = cycle(lambda *a: through(zygote.socket, *a))
    assert len(zygote.wait_served(2)) == 2, "start and stop both ran in the zygote's children"
    assert served == alone
    assert any(c[0] == "bhyve" for c in served)


def test_the_supervisor_outlives_a_zygote_killed_during_the_start(host: Any, zygote: Zygote, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    began = tmp_path / "began"
    hook = tmp_path / "prestart.sh"
    hook.write_text(f"#!/bin/sh\n: > {began}\nwhile [ ! -e {gate} ]; do sleep 0.05; done\nexit 0\n")
    hook.chmod(0o755)
    guest = make_guest(host, "g1", prestart=str(hook))
    env = {**os.environ, "HIVECTL_ZYGOTE_SOCKET": str(zygote.socket)}
    start = subprocess.Popen([*HIVECTL, "start", "g1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for(began.exists, timeout=60, what="the prestart hook, run by the forked supervisor")
        zygote.proc.send_signal(signal.SIGKILL)  # mid-start: the child waits for its supervisor's answer
        zygote.proc.wait(timeout=20)
        gate.write_text("")
        out, err = start.communicate(timeout=60)
    finally:
        gate.write_text("")
        if start.poll() is None:
            start.kill()
            start.wait()
    assert start.returncode == 0, err
    assert "Starting g1" in out or out  # whatever start prints, it reached the caller
    assert zygote.served() == [], "the zygote died before it could reap the child"
    assert state_of("g1")["state"].startswith("Running")
    supervisor = int((guest / "run.lock").read_text().split("pid=")[1].split()[0])
    os.kill(supervisor, 0)  # alive, reparented (the zygote and its child are gone)
    stopped = direct("stop", "--timeout", "20", "g1")
    assert stopped.status == 0, stopped.err
    wait_for(lambda: not (guest / "run.lock").exists(), what="the supervisor's cleanup")
    assert state_of("g1")["state"] == "Stopped" and not host.vm_exists("g1")
    assert direct("start", "g1").status == 0, "a consistent host: the guest starts again"
    assert direct("stop", "--timeout", "20", "g1").status == 0


def test_interactive_and_unknown_callers_run_in_the_launcher(host: Any, zygote: Zygote) -> None:
    make_guest(host, "g1")
    for argv in (["console", "g1"], ["configure", "nosuch"], ["edit", "nosuch"], ["start", "-i", "nosuch"],
                 ["start", "-fi", "nosuch"], ["install", "-f", "nosuch", "x.iso"]):
        served = through(zygote.socket, *argv, timeout=30)
        alone = direct(*argv, timeout=30)
        assert (served.status, served.err) == (alone.status, alone.err), argv
    served = zygote.wait_served(6)
    assert len(served) == 6 and all("status=declined" in line for line in served), \
        "each child declined; the command ran in the launcher"


def test_absent_refused_or_silent_servers_fall_back(host: Any, tmp_path: Path) -> None:
    make_guest(host, "g1")
    want = direct("list")
    assert want.status == 0
    regular = tmp_path / "file.sock"
    regular.write_text("")
    dead = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(dead))
    listener.close()  # a socket file nobody listens on: connect(2) is refused
    for path in (tmp_path / "absent.sock", regular, dead):
        got = through(path, "list")
        assert (got.status, got.out, got.err) == (want.status, want.out, want.err), path

    def fake(path: Path, answer: bytes) -> tuple[socket.socket, threading.Thread]:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(4)

        def serve() -> None:
            conn, _ = server.accept()
            conn.recv(1 << 20)
            if answer:
                conn.sendall(answer)
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        return server, thread

    for name, answer in (("decline", b"decline not today\n"), ("closes", b""), ("garbage", b"what?\n")):
        server, thread = fake(tmp_path / f"{name}.sock", answer)
        try:
            got = through(tmp_path / f"{name}.sock", "list")
            assert (got.status, got.out, got.err) == (want.status, want.out, want.err), name
        finally:
            thread.join(timeout=30)
            server.close()


def test_a_zygote_of_another_checkout_or_with_changed_files_is_not_used(host: Any, tmp_path: Path) -> None:
    make_guest(host, "g1")
    copy = copy_checkout(tmp_path / "checkout")
    where = tmp_path / "zsock"
    where.mkdir(mode=0o700)
    server = Zygote(where / "z.sock", tmp_path / "copy.log", launcher=copy)
    try:
        server.wait_listening()
        want = direct("list")
        got = through(server.socket, "list")  # this checkout's launcher: the copy's zygote declines
        assert (got.status, got.out, got.err) == (want.status, want.out, want.err)
        assert len(server.wait_served(1)) == 1 and "status=declined" in server.served()[0]
        assert through(server.socket, "list", launcher=copy).out == want.out
        assert len(server.wait_served(2)) == 2
        # an upgrade: a module of the copy changes; the next command runs in the launcher with the new code
        changed = tmp_path / "checkout" / "hivectl" / "cli" / "registry.py"
        text = changed.read_text()
        changed.write_text(text.replace('"list guests and their state"', '"list guests (upgraded)"'))
        upgraded = through(server.socket, "help", launcher=copy)
        assert upgraded.status == 0 and "list guests (upgraded)" in upgraded.out
        assert "status=stale" in server.wait_served(3)[-1], "the child declined: files changed"
        server.wait_listening(count=2)  # re-exec'd: imports the new code
        assert "hivectl's files changed: restarting" in server.text()
        again = through(server.socket, "help", launcher=copy)
        assert "list guests (upgraded)" in again.out
        assert "status=exit:0" in server.wait_served(4)[-1], "served again, by the new code"
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_an_insecure_or_taken_socket_path_is_refused(tmp_path: Path) -> None:
    def refused(path: Path, *extra: str) -> str:
        done = subprocess.run([*HIVECTL, "zygote", "--socket", str(path), *extra], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode != 0, done.stderr
        return done.stderr

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert "lets others write in it" in refused(shared / "z.sock")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "z.sock").write_text("")
    assert "exists and is not a socket" in refused(private / "z.sock")
    assert "no such group" in refused(private / "y.sock", "--group", "no-such-group-here")
    assert "absolute path" in refused(Path("relative.sock"))
    server = Zygote(private / "live.sock", tmp_path / "live.log")
    try:
        server.wait_listening()
        assert "another zygote is listening there" in refused(private / "live.sock")
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert not (private / "live.sock").exists(), "a stopped zygote removes its socket"


@pytest.mark.skipif(os.getuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root (to switch users) and setpriv(1)")
def test_a_root_zygote_runs_a_callers_command_with_the_callers_uid_and_groups(tmp_path: Path) -> None:
    """The caller is ``nobody`` (setpriv(1)), with the system's Python (readable by it); what its
    ``init`` creates through a root zygote belongs to nobody:nogroup."""
    import shutil
    import tempfile

    nobody = 65534
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        pytest.skip("no /usr/bin/python3 for the unprivileged caller")
    base = Path(tempfile.mkdtemp(prefix="hvzyg."))
    try:
        base.chmod(0o755)
        where = base / "sock"
        where.mkdir(mode=0o755)
        vm_dir = base / "vm"
        vm_dir.mkdir()
        os.chown(vm_dir, nobody, nobody)
        (base / "rc.conf").write_text("")
        checkout_launcher = [python, "-S", str(Path(__file__).resolve().parents[2] / "bin" / "hivectl")]
        # the system's Python for the zygote too: its lazy imports must be readable by the caller it becomes
        server = Zygote(where / "z.sock", tmp_path / "root.log", launcher=checkout_launcher,
                        extra=["--group", "nogroup"])
        try:
            server.wait_listening()
            assert os.stat(server.socket).st_gid == nobody
            launcher = ["setpriv", "--reuid", str(nobody), "--regid", str(nobody), "--clear-groups",
                        *checkout_launcher]
            env = {"HIVECTL_VM_DIR": str(vm_dir), "HIVECTL_RC_CONF": str(base / "rc.conf"),
                   "HIVECTL_PLATFORM": "linux", "HOME": str(base)}
            done = through(server.socket, "init", launcher=launcher, env=env)
            assert done.status == 0, done.err
            assert "status=exit:0" in server.wait_served(1)[0], "served by the root zygote's child"
            made = [p for p in vm_dir.rglob("*")]
            assert made, "init created vm_dir's files"
            assert {(p.lstat().st_uid, p.lstat().st_gid) for p in made} == {(nobody, nobody)}
            # and the caller cannot do through the zygote what it cannot do itself
            owned = base / "root-only"
            owned.mkdir(mode=0o700)
            denied = through(server.socket, "init", launcher=launcher, env={**env, "HIVECTL_VM_DIR": str(owned)})
            assert denied.status == 1 and "ermission denied" in denied.err
            assert len(server.wait_served(2)) == 2
        finally:
            server.stop()
        # a zygote run by another user is not trusted by root's launcher (it would receive root's terminal)
        where.chmod(0o755)
        os.chown(where, nobody, nobody)
        theirs = Zygote(where / "theirs.sock", tmp_path / "nobody.log", launcher=checkout_launcher,
                        preexec=["setpriv", "--reuid", str(nobody), "--regid", str(nobody), "--clear-groups"])
        try:
            theirs.wait_listening()
            mine = through(theirs.socket, "version")
            assert (mine.status, mine.out, mine.err) == (0, direct("version").out, "")
            # it connected (and read the server's uid) but sent nothing: the child found no request
            assert "status=declined" in theirs.wait_served(1)[0], "root's launcher never handed nobody's zygote"
        finally:
            theirs.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
