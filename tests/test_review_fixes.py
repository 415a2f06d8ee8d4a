"""Regression tests for defects found in a review pass; each fails without its fix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for
from tests.storage.zfsfixture import zfsvm  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parent.parent


def test_vnc_password_file_is_removed_when_bhyve_fails_to_start(host: Any) -> None:
    guest = make_guest(host, "gfx", loader="uefi", graphics="yes", graphics_port="5917",
                       vnc_password="s3cret", bhyve_options="-o broken")
    result = hivectl("start", "gfx")
    assert result.status == 1, result.err
    assert state_of("gfx")["state"] == "Stopped"
    assert not (guest / "bhyve.config").exists(), "the -k file holding the VNC password is removed"


def test_zfs_restore_of_a_running_guest_is_stopped_and_not_tied_to_the_original(zfsvm: Any, tmp_path: Path) -> None:  # noqa: F811
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "db").status == 0
    guest = zfsvm.root / "db"
    # The guest runs while it is backed up (allowed on ZFS: the backup is of a snapshot), so the snapshot
    # holds its run-time files: a lock naming a live supervisor and a state naming a live hypervisor.
    (guest / "run.lock").write_text(f"{os.uname().nodename}\npid={os.getpid()}\n")
    (guest / "hivectl.state").write_text(json.dumps({"state": "running", "pid": os.getpid()}) + "\n")
    (guest / "console").write_text("com1=/dev/nmdm-db.1B\n")
    assert state_of("db")["state"].startswith("Running")
    made = hivectl("backup", "--to", str(tmp_path / "b"), "db")
    assert made.status == 0, made.err
    done = hivectl("restore", made.out.strip(), "db2")
    assert done.status == 0, done.err
    assert state_of("db2")["state"] == "Stopped", "the copy is not the running original"
    for leftover in ("run.lock", "hivectl.state", "console"):
        assert not (zfsvm.root / "db2" / leftover).exists(), leftover
    assert (zfsvm.root / "db2" / "db2.conf").is_file()


def test_stop_of_several_guests_still_stops_the_running_ones_when_one_is_not_running(host: Any) -> None:
    for name in ("g1", "g2"):
        make_guest(host, name)
    host.set_guest_acpi("g1", "ignore")
    assert hivectl("start", "g1").status == 0
    assert state_of("g1")["state"].startswith("Running")
    result = hivectl("stop", "--timeout", "1", "g1", "g2")
    assert result.status == 1, "g2 was not running"
    assert "g2 is not running" in result.err and "g1: did not power off within 1 s" in result.err
    assert state_of("g1")["state"] == "Stopped", "g1 is stopped (forced) all the same"
    assert not host.vm_exists("g1")
    # Through the Python API a guest that is not running is an error, raised before any guest is touched.
    from hivectl.api import Hivectl
    from hivectl.errors import Conflict

    assert hivectl("start", "g1").status == 0
    with pytest.raises(Conflict, match="g2 is not running"):
        Hivectl().stop(["g1", "g2"], timeout=1)
    assert state_of("g1")["state"].startswith("Running")
    assert not (host.vm_dir / "g1" / "hivectl.stopping").exists(), "g1 was not asked to stop"
    assert hivectl("stop", "--timeout", "1", "g1").status == 0


def test_guest_configs_holding_a_vnc_password_are_private(vmdir: Path, tmp_path: Path) -> None:
    template = vmdir / ".templates" / "gfx.conf"
    template.write_text((vmdir / ".templates" / "default.conf").read_text() + 'vnc_password="s3cret"\n')
    assert hivectl("create", "-t", "gfx", "-s", "1M", "secret").status == 0
    conf = vmdir / "secret" / "secret.conf"
    assert conf.stat().st_mode & 0o777 == 0o600, "created private"
    assert hivectl("create", "-s", "1M", "plain").status == 0
    plain = vmdir / "plain" / "plain.conf"
    assert plain.stat().st_mode & 0o777 == 0o644
    editor = tmp_path / "editor"
    editor.write_text('#!/bin/sh\necho \'vnc_password="hunter2"\' >> "$1"\n')
    editor.chmod(0o755)
    done = hivectl("configure", "plain", env={"EDITOR": str(editor)}, input_text="")
    assert done.status == 0, done.err
    assert plain.stat().st_mode & 0o777 == 0o600, "a password added later makes the file private too"
    plain.chmod(0o640)
    assert hivectl("add", "-d", "network", "-s", "public", "plain").status == 0
    assert plain.stat().st_mode & 0o777 == 0o600, "any rewrite tightens a file that holds a password"


def test_non_root_list_shows_guests_whose_config_it_cannot_read(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    python = Path("/usr/bin/python3")
    if os.getuid() != 0 or setpriv is None or not python.exists():
        pytest.skip("needs root, setpriv and a system python3 to run hivectl as another user")
    scratch = Path(tempfile.mkdtemp(prefix="hivectl-nonroot."))
    try:
        scratch.chmod(0o755)
        root = scratch / "vm"
        env = {"HIVECTL_VM_DIR": str(root), "HIVECTL_RC_CONF": str(scratch / "rc.conf"), "HIVECTL_PLATFORM": "linux"}
        (scratch / "rc.conf").write_text("")
        root.mkdir()
        assert hivectl("init", env=env).status == 0
        for name, extra in (("open", ""), ("closed", 'vnc_password="x"\n')):
            (root / name).mkdir()
            (root / name / f"{name}.conf").write_text(f'loader="bhyveload"\ncpu="2"\nmemory="1G"\n{extra}')
        (root / "closed" / "closed.conf").chmod(0o600)
        (root / "lost+found").mkdir(mode=0o700)
        done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", str(python), "-m",
                               "hivectl", "list", "--json"], capture_output=True, text=True, check=False,
                              env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd="/")
        assert done.returncode == 0, done.stderr
        rows = {r["name"]: r for r in json.loads(done.stdout)}
        assert set(rows) == {"open", "closed"}
        assert rows["open"]["cpu"] == "2" and rows["closed"]["cpu"] == "" and rows["closed"]["state"] == "Stopped"
    finally:
        shutil.rmtree(scratch)


def test_errors_are_one_line_not_tracebacks(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "g1").status == 0
    conf = vmdir / "g1" / "g1.conf"
    before = conf.read_bytes()
    cases = [
        (["configure", "g1"], {"EDITOR": str(tmp_path / "no-such-editor")}, "cannot run the editor"),
        (["configure", "g1"], {"EDITOR": 'vi "unbalanced'}, "cannot be split into words"),
        (["restore", str(tmp_path / "missing.backup.tar.gz")], {}, "No such file or directory"),
        (["backup", "--to", str(conf), "g1"], {}, "Not a directory"),
    ]
    garbage = tmp_path / "garbage.tar"
    garbage.write_text("this is not a tar file\n")
    cases.append((["restore", str(garbage)], {}, "not a hivectl backup"))
    gz = tmp_path / "garbage.tar.gz"
    gz.write_bytes(b"\x1f\x8b" + b"not really gzip" * 4)
    cases.append((["restore", str(gz)], {}, "not a hivectl backup"))
    for args, env, expected in cases:
        result = hivectl(*args, env=env, input_text="")
        assert result.status == 1, (args, result.err)
        assert "Traceback" not in result.err, (args, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hivectl: ") and expected in lines[0], (args, result.err)
    assert conf.read_bytes() == before
    assert sorted(p.name for p in (vmdir / "g1").iterdir()) == ["disk0.img", "g1.conf"]


def test_interrupted_command_exits_1(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "g1").status == 0
    started = tmp_path / "started"
    editor = tmp_path / "editor"
    editor.write_text(f'#!/bin/sh\ntouch {started}\nexec sleep 30\n')
    editor.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "hivectl", "configure", "g1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EDITOR": str(editor)})
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert err == "hivectl: interrupted\n"


def test_a_suspended_guest_is_not_booted_afresh_where_vm_bhyve_would_resume_it(host: Any) -> None:
    guest = make_guest(host, "sus")
    (guest / "sus.save").write_bytes(b"saved memory")
    assert state_of("sus")["state"] == "Suspended"
    assert hivectl("set", "suspend=yes").status == 0
    result = hivectl("start", "sus")
    assert result.status == 1 and "cannot resume saved state" in result.err, result.err
    assert host.loader_runs() == [] and not host.vm_exists("sus"), "nothing was booted"
    assert state_of("sus")["state"] == "Suspended" and (guest / "sus.save").read_bytes() == b"saved memory"
    assert not (guest / "run.lock").exists()
    assert hivectl("set", "suspend=no").status == 0
    assert hivectl("start", "sus").status == 0, "without suspend vm-bhyve boots afresh, and so does hivectl"
    assert "suspend is not enabled" in (guest / "vm-bhyve.log").read_text()
    assert hivectl("stop", "sus").status == 0


def test_stop_cleans_up_after_a_dead_supervisor(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor_pid = int((guest / "run.lock").read_text().split("pid=")[1].split()[0])
    os.kill(supervisor_pid, signal.SIGKILL)
    time.sleep(0.3)
    assert state_of("g1")["state"].startswith("Running")
    (guest / "restart").write_text("")  # a restart asked for while nobody watched
    result = hivectl("stop", "--timeout", "10", "g1")
    assert result.status == 0, result.err
    assert state_of("g1")["state"] == "Stopped"
    assert taps(host) == [] and not host.vm_exists("g1")
    for leftover in ("run.lock", "console", "hivectl.state", "hivectl.stopping", "restart"):
        assert not (guest / leftover).exists(), leftover


def test_restart_and_reset_refuse_a_guest_nobody_would_boot_again(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor_pid = int((guest / "run.lock").read_text().split("pid=")[1].split()[0])
    os.kill(supervisor_pid, signal.SIGKILL)
    time.sleep(0.3)
    running = state_of("g1")["state"]
    for command in (["restart"], ["reset", "-f"]):
        result = hivectl(*command, "g1")
        assert result.status == 1 and "without its supervisor" in result.err, (command, result.err)
        assert state_of("g1")["state"] == running, "the guest was left running, not turned off"
    assert "adopted" in hivectl("start", "g1").out
    for command in (["restart"], ["reset", "-f"]):
        result = hivectl(*command, "g1")
        assert result.status == 1 and "was adopted" in result.err, (command, result.err)
        assert state_of("g1")["state"] == running
    assert hivectl("stop", "g1").status == 0
    assert state_of("g1")["state"] == "Stopped" and taps(host) == []


def test_qemu_never_takes_a_disk_format_from_content_the_guest_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    from hivectl.errors import ValidationErrors
    from tests.qemu.guests import QCOW2, Scratch

    monkeypatch.setenv("HIVECTL_QEMU_ACCEL", "tcg")
    root = Path(tempfile.mkdtemp(prefix="hq-", dir="/tmp"))
    try:
        scratch = Scratch(root)
        secret = root / "host-secret"
        secret.write_text("root:hash:...\n")
        evil = root / "evil.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(secret), "-F", "raw", str(evil)],
                       check=True)
        # What a guest can do to its own raw disk: write a qcow2 header naming a host file as backing file.
        header = evil.read_bytes()[:4096]
        conf = ('loader="uefi"\ncpu=1\nmemory=512M\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
                'disk1_type="nvme"\ndisk1_name="disk1.qcow2"\n')
        ref = scratch.guest("g", conf, {"disk0.img": header + b"\0" * (1 << 20), "disk1.qcow2": QCOW2})
        with pytest.raises(ValidationErrors) as caught:
            scratch.plan(ref)
        assert "disk0_name='disk0.img'" in str(caught.value) and "qcow2 header" in str(caught.value)
        (ref.directory / "disk0.img").write_bytes(b"\0" * (1 << 20))
        argv = " ".join(scratch.plan(ref).hypervisor)
        assert f"file={ref.directory / 'disk0.img'},format=raw" in argv
        assert f"file={ref.directory / 'disk1.qcow2'},format=qcow2" in argv, "a disk named *.qcow2 is qcow2"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_create_refuses_images_that_name_other_host_files(vmdir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"TOP-SECRET-HOST-DATA".ljust(1 << 20, b"\0"))
    images = vmdir / ".img"

    def qemu_img(*args: str) -> None:
        subprocess.run(["qemu-img", "create", "-q", *args], check=True, capture_output=True)

    qemu_img("-f", "qcow2", "-b", str(secret), "-F", "raw", str(images / "backing.qcow2"), "2M")
    qemu_img("-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", str(images / "datafile.qcow2"), "2M")
    qemu_img("-f", "vmdk", str(tmp_path / "parent.vmdk"), "2M")
    qemu_img("-f", "vmdk", "-b", str(tmp_path / "parent.vmdk"), "-F", "vmdk", str(images / "child.vmdk"), "2M")
    qemu_img("-f", "qcow2", str(images / "clean.qcow2"), "2M")
    for image in ("backing.qcow2", "datafile.qcow2", "child.vmdk"):
        result = hivectl("create", "-i", image, "-s", "4M", "g")
        assert result.status == 1 and "names a backing or data file" in result.err, (image, result.err)
        assert not (vmdir / "g").exists(), image
    assert hivectl("create", "-i", "clean.qcow2", "-s", "4M", "g").status == 0, "self-contained images still work"
    assert b"TOP-SECRET" not in (vmdir / "g" / "disk0.img").read_bytes()


def test_qemu_console_log_is_private(monkeypatch: pytest.MonkeyPatch) -> None:
    from hivectl.plan import Plan
    from tests.qemu.guests import Scratch

    monkeypatch.setenv("HIVECTL_QEMU_ACCEL", "tcg")
    root = Path(tempfile.mkdtemp(prefix="hq-", dir="/tmp"))
    try:
        scratch = Scratch(root)
        conf = 'loader="uefi"\ncpu=1\nmemory=512M\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
        ref = scratch.guest("g", conf, {"disk0.img": 1 << 20})
        log = ref.directory / "console.log"
        Plan(list(scratch.plan(ref).prepare)).apply(scratch.host)
        assert log.stat().st_mode & 0o777 == 0o600, "made before QEMU creates it with the umask"
        log.write_text("what the guest printed last time\n")
        log.chmod(0o644)
        Plan(list(scratch.plan(ref).prepare)).apply(scratch.host)
        assert log.stat().st_mode & 0o777 == 0o600 and log.read_text() == "what the guest printed last time\n"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_create_never_makes_a_file_disk_outside_the_guest_directory(vmdir: Path) -> None:
    template = vmdir / ".templates" / "escape.conf"
    template.write_text('loader="bhyveload"\ncpu=1\nmemory=256M\ndisk0_type="virtio-blk"\n'
                        'disk0_name="../escaped.img"\ndisk0_size="1M"\n')
    result = hivectl("create", "-t", "escape", "g")
    assert result.status == 1
    assert f"{template}: disk0_name='../escaped.img'" in result.err, result.err
    assert not (vmdir / "escaped.img").exists() and not (vmdir / "g").exists()


def test_prestart_and_priority_apply_and_rctl_limits_are_warned_about(host: Any) -> None:
    guest = make_guest(host, prestart="setup.sh", priority="7", limit_pcpu="50")
    script = guest / "setup.sh"
    script.write_text('#!/bin/sh\necho "$1 $2 $(pwd)" >> prestart.out\nexit 3\n')
    script.chmod(0o755)
    dry = hivectl("start", "--dry-run", "g1")
    assert dry.status == 0, dry.err
    assert "limit_pcpu='50' is not supported by hivectl" in dry.err and "prestart=" not in dry.err
    assert "warning: warning" not in dry.err
    assert hivectl("start", "g1").status == 0, "a failing prestart does not stop the boot (vm-bhyve's rule)"
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[16]) == 7, "bhyve runs with the guest's priority as its nice value"
    assert (guest / "prestart.out").read_text().split() == ["g1", str(guest), str(guest)]
    host.exit_guest("g1", 0)  # a guest reboot: prestart runs again
    wait_for(lambda: len((guest / "prestart.out").read_text().splitlines()) == 2, what="prestart on reboot")
    log = (guest / "vm-bhyve.log").read_text()
    assert "prestart " in log and "exited with status 3" in log
    assert hivectl("stop", "g1").status == 0
