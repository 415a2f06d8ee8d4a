"""vm-bhyve's ``vm migrate`` both ways, between two simulated FreeBSD hosts with ZFS vm_dirs.

Into hivectl: a test sender takes exactly the steps of vm-bhyve's ``lib/vm-migration`` (``migration::run``,
``migrate::__send``, ``migrate::__rename_config``), each remote one through an ssh stand-in that runs the
command on the target host and records it; the target answers with hivectl's ``bin/vm`` entry and plain
zfs. Out of hivectl: ``hivectl migrate --to-vm-bhyve`` to a host of the same shape, whose recorded
commands must be vm-bhyve's, in vm-bhyve's order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.storage.sparse import file_digest
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, state_of, wait_for
from tests.multihost.migrate_bed import OtherHost


@pytest.fixture
def zsource(simhost: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This host: vm_dir on zroot/vm (the simulated pool), a public switch."""
    assert simhost.run(["zfs", "create", "zroot/vm"]).returncode == 0
    rc = tmp_path / "rc.conf"
    rc.write_text('vm_dir="zfs:zroot/vm"\n')
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)
    assert hivectl("init").status == 0
    assert hivectl("switch", "create", "public").status == 0
    simhost.vm_dir = simhost.root / "zroot" / "vm"
    return simhost


@pytest.fixture
def ztarget(zsource: Any, tmp_path: Path) -> Iterator[OtherHost]:
    target = OtherHost(tmp_path, zfs=True)
    assert target.run("switch", "create", "public").status == 0
    try:
        yield target
    finally:
        target.close()


def _fill(disk: Path) -> str:
    with open(disk, "r+b") as fh:
        fh.seek(3 << 20)
        fh.write(os.urandom(2 << 20))
    return file_digest(disk)


class VmBhyveSender:
    """vm-bhyve's ``vm migrate [-r NEW] NAME HOST`` step by step (lib/vm-migration), ssh being ``ssh``."""

    def __init__(self, ssh: Path, name: str, rename: str | None = None, datastore: str = "default") -> None:
        self.ssh, self.name, self.rname, self.ds = [str(ssh)], name, rename or name, datastore
        self.local_ds = "zroot/vm"  # VM_DS_ZFS_DATASET of the guest's datastore

    def remote(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.ssh, *argv], capture_output=True, text=True, check=False)

    def send(self, snap: str, inc: str | None, rdataset: str) -> None:
        """``zfs send -R[i INC] DS/NAME@SNAP | ssh HOST zfs recv RDS/RNAME`` (migrate::__send)."""
        flags = ["-Ri", inc] if inc else ["-R"]
        sender = subprocess.Popen(["zfs", "send", *flags, f"{self.local_ds}/{self.name}@{snap}"],
                                  stdout=subprocess.PIPE)
        receiver = subprocess.run([*self.ssh, "zfs", "recv", f"{rdataset}/{self.rname}"], stdin=sender.stdout,
                                  capture_output=True, text=True, check=False)
        assert sender.stdout is not None
        sender.stdout.close()
        assert sender.wait() == 0 and receiver.returncode == 0, receiver.stderr

    def run(self, pid: int | None, settled: Any = None) -> None:
        rdataset = self.remote("vm", "migrate", "-cd", self.ds)
        assert rdataset.returncode == 0 and rdataset.stdout.strip(), "unable to get config from the host"
        rds = rdataset.stdout.strip()
        snap1 = time.strftime("%Y%m%d%H%M%S-s1")
        assert subprocess.run(["zfs", "snapshot", "-r", f"{self.local_ds}/{self.name}@{snap1}"]).returncode == 0
        self.send(snap1, None, rds)
        snaps = [snap1]
        if pid is not None:  # "stage 2: attempting to stop guest": kill, then kill -0 every 2 s
            os.kill(pid, signal.SIGTERM)
            for _ in range(60):
                time.sleep(0.5)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
            if settled is not None:  # vm-bhyve's 'vm _run' (here: hivectl's supervisor) has cleaned up
                settled()
            snap3 = time.strftime("%Y%m%d%H%M%S-s2")
            taken = subprocess.run(["zfs", "snapshot", "-r", f"{self.local_ds}/{self.name}@{snap3}"],
                                   capture_output=True, text=True)
            assert taken.returncode == 0, taken.stderr
            self.send(snap3, snap1, rds)
            snaps.append(snap3)
        if self.rname != self.name:  # migrate::__rename_config
            mounts = self.remote("mount").stdout.splitlines()
            path = next(line.split()[2] for line in mounts if line.startswith(f"{rds} "))
            self.remote("zfs", "mount", f"{rds}/{self.rname}")  # its answer is ignored, as vm-bhyve does
            moved = self.remote("mv", f"{path}/{self.rname}/{self.name}.conf", f"{path}/{self.rname}/{self.rname}.conf")
            assert moved.returncode == 0, moved.stderr
        if pid is not None:
            started = self.remote("vm", "start", self.rname)
            assert started.returncode == 0, started.stderr
        for snap in snaps:  # "removing snapshots" (no -x)
            subprocess.run(["zfs", "destroy", f"{self.local_ds}/{self.name}@{snap}"], capture_output=True)


def test_vm_bhyve_sends_a_stopped_guest_with_rename(zsource: Any, ztarget: OtherHost) -> None:
    make_guest(zsource, "g1")
    digest = _fill(zsource.vm_dir / "g1" / "disk0.img")
    VmBhyveSender(ztarget.shell, "g1", rename="g2").run(pid=None)
    assert [c[:2] for c in ztarget.commands()] == [["vm", "migrate"], ["zfs", "recv"], ["mount"], ["zfs", "mount"],
                                                 ["mv", f"{ztarget.vm_dir}/g2/g1.conf"]]
    assert ztarget.commands()[0] == ["vm", "migrate", "-cd", "default"]
    listed = ztarget.guests()
    assert set(listed) == {"g2"} and listed["g2"]["state"] == "Stopped"
    assert file_digest(ztarget.vm_dir / "g2" / "disk0.img") == digest
    assert ztarget.run("start", "g2").status == 0
    wait_for(lambda: ztarget.guests()["g2"]["state"].startswith("Running"), what="g2 running there")
    assert "g2" in ztarget.sim.running()
    assert ztarget.run("stop", "g2").status == 0


def test_vm_bhyve_sends_a_running_guest_in_two_stages_and_starts_it_with_vm_start(
        zsource: Any, ztarget: OtherHost) -> None:
    make_guest(zsource, "g1")
    disk = zsource.vm_dir / "g1" / "disk0.img"
    _fill(disk)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    pid = int(zsource.running()["g1"]["pid"])
    VmBhyveSender(ztarget.shell, "g1").run(pid=pid, settled=lambda: wait_for(
        lambda: state_of("g1")["state"] == "Stopped", what="g1 stopped here"))
    assert [c[:2] for c in ztarget.commands()] == [["vm", "migrate"], ["zfs", "recv"], ["zfs", "recv"],
                                                 ["vm", "start"]]
    wait_for(lambda: ztarget.guests()["g1"]["state"].startswith("Running"), what="g1 running there")
    assert file_digest(ztarget.vm_dir / "g1" / "disk0.img") == file_digest(disk)
    assert ztarget.run("stop", "g1").status == 0


def test_the_vm_entry_answers_only_what_vm_bhyve_asks(ztarget: OtherHost, tmp_path: Path) -> None:
    vm = [str(ztarget.shell), "vm"]
    found = subprocess.run([*vm, "migrate", "-c", "-d", "default"], capture_output=True, text=True)
    assert found.returncode == 0 and found.stdout == "zroot/vm\n"
    missing = subprocess.run([*vm, "migrate", "-cd", "nosuch"], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stdout == ""
    directory = tmp_path / "plain"
    directory.mkdir()
    assert ztarget.run("datastore", "add", "plain", str(directory)).status == 0
    plain = subprocess.run([*vm, "migrate", "-cd", "plain"], capture_output=True, text=True)
    assert plain.returncode == 1 and plain.stdout == ""  # not ZFS: vm-bhyve's __check_config exits 1
    other = subprocess.run([*vm, "list"], capture_output=True, text=True)
    assert other.returncode == 1 and "answers only" in other.stderr


def test_hivectl_migrates_to_a_vm_bhyve_host_in_its_words(zsource: Any, ztarget: OtherHost) -> None:
    make_guest(zsource, "g1")
    disk = zsource.vm_dir / "g1" / "disk0.img"
    digest = _fill(disk)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    done = hivectl("migrate", "--to-vm-bhyve", "--rename", "g2", "--json", "g1", f"exec:{ztarget.shell}",
                   timeout=240)
    assert done.status == 0, done.err
    result = done.json()
    assert result["started"] and result["downtime"] > 0
    assert [c[:2] for c in ztarget.commands()] == [["vm", "migrate"], ["zfs", "recv"], ["zfs", "recv"], ["mount"],
                                                 ["zfs", "mount"], ["mv", f"{ztarget.vm_dir}/g2/g1.conf"],
                                                 ["vm", "start"]]
    wait_for(lambda: ztarget.guests()["g2"]["state"].startswith("Running"), what="g2 running there")
    assert file_digest(ztarget.vm_dir / "g2" / "disk0.img") == digest
    assert "g1" not in {r["name"] for r in hivectl("list", "--json").json()}
    assert ztarget.run("stop", "g2").status == 0


def test_a_failed_recv_on_the_vm_bhyve_host_leaves_the_guest_running_here(zsource: Any, ztarget: OtherHost) -> None:
    make_guest(zsource, "g1")
    _fill(zsource.vm_dir / "g1" / "disk0.img")
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    (ztarget.root / "control" / "zfs.fail").write_text("recv cannot receive: I/O error\n")  # stage 1's recv
    failed = hivectl("migrate", "--to-vm-bhyve", "g1", f"exec:{ztarget.shell}", timeout=240)
    assert failed.status == 1 and "I/O error" in failed.err
    assert state_of("g1")["state"].startswith("Running")
    assert "zroot/vm/g1" not in ztarget.sim.datasets() and ztarget.guests() == {}
    assert hivectl("stop", "g1").status == 0
