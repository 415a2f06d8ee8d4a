"""zfs keeps real data behind datasets, snapshots, rollbacks, clones and streams (zfs(8))."""

from __future__ import annotations

import subprocess

from tests.simhost.fixture import SimHost


def test_datasets_snapshots_clones(simhost: SimHost) -> None:
    run = simhost.run
    assert run(["zfs", "create", "zroot/vm"]).returncode == 0
    assert run(["zfs", "create", "-p", "zroot/vm/web/extra"]).returncode == 0
    mountpoint = run(["zfs", "get", "-H", "-o", "value", "mountpoint", "zroot/vm/web"]).stdout.strip()
    assert mountpoint == str(simhost.root / "zroot" / "vm" / "web")
    web = simhost.root / "zroot" / "vm" / "web"
    assert web.is_dir() and (web / "extra").is_dir()
    assert run(["zfs", "create", "-sV", "20G", "-o", "volmode=dev", "zroot/vm/web/disk0"]).returncode == 0
    zvol = simhost.path("/dev/zvol/zroot/vm/web/disk0")
    assert zvol.stat().st_size == 20 << 30
    exists = run(["zfs", "create", "zroot/vm"])
    assert (exists.returncode, exists.stderr) == (1, "cannot create 'zroot/vm': dataset already exists\n")
    orphan = run(["zfs", "create", "zroot/nope/x"])
    assert (orphan.returncode, orphan.stderr) == (1, "cannot create 'zroot/nope/x': parent does not exist\n")
    assert run(["zfs", "create", "-V", "1X", "zroot/v"]).stderr.startswith("bad volume size '1X'")
    assert run(["zfs", "create", "-o", "volmode=dev", "zroot/fs"]).returncode == 1
    assert run(["zfs", "frobnicate"]).returncode == 2
    (web / "web.conf").write_text("loader=\"uefi\"\n")
    assert run(["zfs", "snapshot", "-r", "zroot/vm/web@s1"]).returncode == 0
    again = run(["zfs", "snapshot", "zroot/vm/web@s1"])
    assert again.stderr == "cannot create snapshot 'zroot/vm/web@s1': dataset already exists\n"
    (web / "web.conf").write_text("changed\n")
    (web / "new.txt").write_text("x")
    assert run(["zfs", "snapshot", "zroot/vm/web@s2"]).returncode == 0
    older = run(["zfs", "rollback", "zroot/vm/web@s1"])
    assert older.returncode == 1 and older.stderr.splitlines() == [
        "cannot rollback to 'zroot/vm/web@s1': more recent snapshots or bookmarks exist",
        "use '-r' to force deletion of the following snapshots and bookmarks:", "zroot/vm/web@s2"]
    assert run(["zfs", "rollback", "-r", "zroot/vm/web@s1"]).returncode == 0
    assert (web / "web.conf").read_text() == "loader=\"uefi\"\n" and not (web / "new.txt").exists()
    assert (web / "extra").is_dir()  # a child dataset's mountpoint is not part of the rollback
    assert run(["zfs", "clone", "zroot/vm/web@s1", "zroot/vm/web2"]).returncode == 0
    assert (simhost.root / "zroot" / "vm" / "web2" / "web.conf").read_text() == "loader=\"uefi\"\n"
    assert simhost.datasets()["zroot/vm/web2"]["origin"] == "zroot/vm/web@s1"
    names = run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", "zroot/vm"]).stdout.split("\n")
    assert names[:4] == ["zroot/vm", "zroot/vm/web", "zroot/vm/web@s1", "zroot/vm/web/disk0"]
    dependent = run(["zfs", "destroy", "zroot/vm/web@s1"])
    assert dependent.returncode == 1 and dependent.stderr.splitlines() == [
        "cannot destroy 'zroot/vm/web@s1': snapshot has dependent clones",
        "use '-R' to destroy the following datasets:", "zroot/vm/web2"]
    children = run(["zfs", "destroy", "zroot/vm/web"])
    assert children.stderr.startswith("cannot destroy 'zroot/vm/web': filesystem has children\n"
                                      "use '-r' to destroy the following datasets:\n")
    assert run(["zfs", "destroy", "-R", "zroot/vm/web@s1"]).returncode == 0
    assert "zroot/vm/web2" not in simhost.datasets()
    assert not (simhost.root / "zroot" / "vm" / "web2").exists()
    assert run(["zfs", "destroy", "-r", "zroot/vm/web"]).returncode == 0
    assert not web.exists() and not zvol.exists()
    assert [n for n in simhost.datasets() if n.startswith("zroot/vm/web")] == []


def test_send_receive_and_busy_zvol(simhost: SimHost, tmp_path) -> None:
    run = simhost.run
    assert run(["zfs", "create", "-p", "zroot/vm/a"]).returncode == 0
    assert run(["zfs", "create", "-V", "64M", "zroot/vm/a/disk0"]).returncode == 0
    zvol = simhost.path("/dev/zvol/zroot/vm/a/disk0")
    with open(zvol, "r+b") as fh:
        fh.seek(1 << 20)
        fh.write(b"bootsector")
    (simhost.root / "zroot/vm/a/a.conf").write_text("cpu=1\n")
    assert run(["zfs", "snapshot", "-r", "zroot/vm/a@img"]).returncode == 0
    stream = tmp_path / "a.zfs"
    with open(stream, "wb") as out:
        sent = subprocess.run(["zfs", "send", "-R", "zroot/vm/a@img"], stdout=out, check=False)
    assert sent.returncode == 0
    data = stream.read_bytes().decode()
    received = run(["zfs", "recv", "zroot/vm/b"], input=data)
    assert received.returncode == 0, received.stderr
    assert (simhost.root / "zroot/vm/b/a.conf").read_text() == "cpu=1\n"
    copy = simhost.path("/dev/zvol/zroot/vm/b/disk0")
    assert copy.stat().st_size == 64 << 20
    with open(copy, "rb") as fh:
        fh.seek(1 << 20)
        assert fh.read(10) == b"bootsector"
    assert "zroot/vm/b@img" in simhost.datasets() and "zroot/vm/b/disk0@img" in simhost.datasets()
    again = run(["zfs", "recv", "zroot/vm/b"], input=data)
    assert again.stderr.splitlines() == [
        "cannot receive new filesystem stream: destination 'zroot/vm/b' exists",
        "must specify -F to overwrite it"]
    # a zvol held open by a running bhyve cannot be destroyed
    proc = simhost.start(["bhyve", "-m", "256M", "-s", "0,hostbridge", "-s", "31,lpc",
                          "-s", "4,virtio-blk,/dev/zvol/zroot/vm/a/disk0",
                          "-l", "bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd", "a"])
    simhost.wait_running("a", proc)
    busy = run(["zfs", "destroy", "-r", "zroot/vm/a"])
    assert (busy.returncode, busy.stderr) == (1, "cannot destroy 'zroot/vm/a/disk0': dataset is busy\n")
    simhost.exit_guest("a", 1)
    assert proc.wait(timeout=10) == 1
    assert run(["zfs", "destroy", "-r", "zroot/vm/a"]).returncode == 0
    listing = run(["zfs", "list", "-r", "zroot/vm"]).stdout.splitlines()
    assert listing[0].split() == ["NAME", "USED", "AVAIL", "REFER", "MOUNTPOINT"]
    assert [line.split()[0] for line in listing[1:]] == ["zroot/vm", "zroot/vm/b", "zroot/vm/b/disk0"]
    assert run(["zpool", "list", "-H", "-o", "name"]).stdout == "zroot\n"


def test_hold_and_release_refuse_the_whole_command_as_zfs_does(simhost: SimHost) -> None:
    run = simhost.run
    assert run(["zfs", "create", "-p", "zroot/h/a"]).returncode == 0
    assert run(["zfs", "snapshot", "-r", "zroot/h@s"]).returncode == 0

    def holds() -> list[str]:
        out = run(["zfs", "holds", "-H", "-r", "zroot/h@s"]).stdout
        return sorted(f"{line.split()[0]}:{line.split()[1]}" for line in out.splitlines())

    assert run(["zfs", "hold", "keep", "zroot/h/a@s"]).returncode == 0
    again = run(["zfs", "hold", "-r", "keep", "zroot/h@s"])  # zroot/h/a@s has it: nothing is held
    assert (again.returncode, again.stderr) == (
        1, "cannot hold snapshot 'zroot/h/a@s': tag already exists on this dataset\n")
    assert holds() == ["zroot/h/a@s:keep"]
    assert run(["zfs", "hold", "-r", "other", "zroot/h@s"]).returncode == 0
    assert holds() == ["zroot/h/a@s:keep", "zroot/h/a@s:other", "zroot/h@s:other"]
    missing = run(["zfs", "release", "-r", "keep", "zroot/h@s"])  # zroot/h@s lacks it: nothing released
    assert (missing.returncode, missing.stderr) == (
        1, "cannot release hold from snapshot 'zroot/h@s': no such tag on this dataset\n")
    assert holds() == ["zroot/h/a@s:keep", "zroot/h/a@s:other", "zroot/h@s:other"]
    assert run(["zfs", "release", "-r", "other", "zroot/h@s"]).returncode == 0
    assert run(["zfs", "release", "keep", "zroot/h/a@s"]).returncode == 0
    assert holds() == []
    assert run(["zfs", "hold", "keep"]).returncode == 2
