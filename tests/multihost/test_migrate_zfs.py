"""``hivectl migrate`` of ZFS guests by ``zfs send``/``zfs recv`` between two simulated FreeBSD hosts.

Both hosts have their vm_dir on ``zroot/vm`` of their own simulated pool (tests/simhost/zfs.py: datasets,
zvols, snapshots, incremental and resumable streams, renames); the target is reached through an ``exec:``
wrapper over the same ``_stream`` words ssh carries (tests/multihost/migrate_bed.py). The real zfs-fuse
pools and a real QEMU guest are tests/multihost/test_migrate_zfs_qemu.py; this file covers what zfs-fuse
cannot show: zvol disks, resumable receives, and the failure paths, each checked on the hosts' own state
(their datasets, snapshots, ``list`` and disks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.model.layout import STOPPING
from hivectl.storage.sparse import file_digest
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, state_of, wait_for
from tests.multihost.migrate_bed import OtherHost

RELAY = Path(__file__).resolve().parent / "relay.py"


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


def _write(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _zfs(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["zfs", *argv], env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          check=False, timeout=120)


def _names(env: dict[str, str] | None = None, kind: str = "all") -> list[str]:
    return _zfs(["list", "-H", "-o", "name", "-t", kind, "-r", "zroot/vm"], env).stdout.split()


def _migration_snapshots(env: dict[str, str] | None = None) -> list[str]:
    return [n for n in _names(env, "snapshot") if "@hivectl-migrate-" in n]


def test_a_stopped_zfs_guest_travels_as_zfs_send_and_lands_in_the_vm_dir_layout(
        zsource: Any, ztarget: OtherHost) -> None:
    guest = make_guest(zsource, "g1")
    disk = guest / "disk0.img"
    _write(disk, 0, os.urandom(300_000))
    _write(disk, 700 << 20, os.urandom(1 << 20))
    (guest / "uefi-vars.fd").write_bytes(b"VARS" * 1000)
    digest, conf_text = file_digest(disk), (guest / "g1.conf").read_text()
    _zfs(["snapshot", "zroot/vm/g1@mine"])  # the administrator's own snapshot: not migrated, not removed here

    done = hivectl("migrate", "--json", "--keep-source", "g1", ztarget.remote)
    assert done.status == 0, done.err
    result = done.json()
    assert result["transport"] == "zfs"
    assert result["disks"] == ["disk0 (file disk0.img): zfs send of zroot/vm/g1"], result
    assert len(result["rounds"]) == 1 and result["rounds"][0]["files"] == 1  # one full stream
    assert "zroot/vm/g1" in _names(ztarget.env, "filesystem")
    landed = ztarget.vm_dir / "g1"
    assert file_digest(landed / "disk0.img") == digest
    assert (landed / "g1.conf").read_text() == conf_text
    assert (landed / "uefi-vars.fd").read_bytes() == b"VARS" * 1000
    assert ztarget.guests()["g1"]["state"] == "Stopped"
    assert _migration_snapshots() == [] and _migration_snapshots(ztarget.env) == []
    assert "zroot/vm/g1@mine" in _names(None, "snapshot")
    assert not (ztarget.root / "zroot" / "vm" / ".config" / ".migrate-g1.incoming").exists()
    assert ztarget.run("start", "g1").status == 0
    assert ztarget.run("stop", "g1").status == 0


def test_rename_moves_the_dataset_and_the_config_and_the_source_goes(zsource: Any, ztarget: OtherHost) -> None:
    guest = make_guest(zsource, "g1")
    _write(guest / "disk0.img", 4096, os.urandom(1 << 20))
    digest = file_digest(guest / "disk0.img")
    done = hivectl("migrate", "--json", "--rename", "g2", "g1", ztarget.remote)
    assert done.status == 0, done.err
    assert done.json()["transport"] == "zfs"
    assert set(ztarget.guests()) == {"g2"}
    landed = ztarget.vm_dir / "g2"
    assert (landed / "g2.conf").is_file() and not (landed / "g1.conf").exists()
    assert file_digest(landed / "disk0.img") == digest
    assert "zroot/vm/g2" in _names(ztarget.env) and "zroot/vm/g1" not in _names(ztarget.env)
    assert "zroot/vm/g1" not in _names()  # no --keep-source: the dataset and its snapshots went here
    assert _migration_snapshots(ztarget.env) == []


def test_a_zvol_guest_sends_its_zvol_below_its_dataset(zsource: Any, ztarget: OtherHost) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "64M", "zv").status == 0
    zvol = zsource.root / "dev" / "zvol" / "zroot" / "vm" / "zv" / "disk0"
    _write(zvol, 1 << 20, os.urandom(3 << 20))
    dry = hivectl("migrate", "--dry-run", "--json", "zv", ztarget.remote)
    assert dry.status == 0, dry.err
    assert dry.json()["disks"] == ["disk0 (sparse-zvol disk0): zfs send of zroot/vm/zv/disk0"], dry.json()
    assert dry.json()["problems"] == [] and ztarget.guests() == {}
    done = hivectl("migrate", "--json", "--keep-source", "zv", ztarget.remote)
    assert done.status == 0, done.err
    assert [r["files"] for r in done.json()["rounds"]] == [2]  # the dataset's stream, the zvol's
    there = ztarget.root / "dev" / "zvol" / "zroot" / "vm" / "zv" / "disk0"
    assert there.read_bytes() == zvol.read_bytes()
    assert _migration_snapshots() == [] and _migration_snapshots(ztarget.env) == []
    assert ztarget.run("start", "zv").status == 0
    assert ztarget.run("stop", "zv").status == 0


def test_a_zvol_guest_to_a_directory_datastore_is_refused_and_a_file_guest_falls_back(
        zsource: Any, tmp_path: Path) -> None:
    flat = OtherHost(tmp_path, name="flat")  # vm_dir a plain directory there
    try:
        assert flat.run("switch", "create", "public").status == 0
        assert hivectl("create", "-t", "freebsd-zvol", "-s", "64M", "zv").status == 0
        refused = hivectl("migrate", "zv", flat.remote)
        assert refused.status == 1
        assert ("disk0 (sparse-zvol disk0): a zvol, which only a zfs send can carry (datastore default on "
                f"{flat.remote} is not its vm_dir dataset on ZFS)") in refused.err, refused.err
        assert flat.guests() == {} and state_of("zv")["state"] == "Stopped"
        guest = make_guest(zsource, "g1")
        _write(guest / "disk0.img", 0, os.urandom(1 << 20))
        done = hivectl("migrate", "--json", "g1", flat.remote)
        assert done.status == 0, done.err
        result = done.json()
        assert result["transport"] == "file"
        assert result["disks"][0] == "disk0 (file disk0.img): file stream (sparse-aware)"
        assert result["disks"][1].startswith("fallback: ") and "zroot/vm/g1 go as the file stream" in result["disks"][1]
        assert set(flat.guests()) == {"g1"}
    finally:
        flat.close()


def test_warm_zfs_migration_sends_incremental_rounds_while_the_guest_writes(
        zsource: Any, ztarget: OtherHost) -> None:
    guest = make_guest(zsource, "g1")
    disk = guest / "disk0.img"
    _write(disk, 0, os.urandom(4 << 20))
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    writing = threading.Event()
    writing.set()

    def guest_writes() -> None:  # the stand-in bhyve does not write: this thread is the guest's I/O
        offset = 16 << 20
        while writing.is_set() and not (guest / STOPPING).exists():
            _write(disk, offset % (900 << 20), os.urandom(64 << 10))
            offset += 3 << 20
            time.sleep(0.05)

    writer = threading.Thread(target=guest_writes)
    writer.start()
    try:
        done = hivectl("migrate", "--warm", "--max-downtime", "20", "--keep-source", "--json", "g1",
                       ztarget.remote, timeout=600)
    finally:
        writing.clear()
        writer.join()
    assert done.status == 0, done.err
    result = done.json()
    assert result["transport"] == "zfs" and result["mode"] == "warm" and result["started"]
    assert len(result["rounds"]) >= 3 and all(r["files"] == 1 for r in result["rounds"]), result
    assert result["downtime"] > 0 and set(result["phases"]) == {"stop", "final", "commit"}
    assert file_digest(ztarget.vm_dir / "g1" / "disk0.img") == file_digest(disk)  # every write arrived
    wait_for(lambda: ztarget.guests()["g1"]["state"].startswith("Running"), what="g1 running on the target")
    assert state_of("g1")["state"] == "Stopped"
    assert _migration_snapshots() == [] and _migration_snapshots(ztarget.env) == []
    assert ztarget.run("stop", "g1").status == 0


def _relayed(other: OtherHost, limit: int, **extra: str) -> tuple[str, dict[str, str]]:
    return (f"exec:{sys.executable} {RELAY} {other.wrapper}",
            {"RELAY_MODE": "self", "RELAY_LIMIT": str(limit), **extra})


def test_a_stream_cut_every_time_leaves_the_guest_running_here_and_nothing_there(
        zsource: Any, ztarget: OtherHost) -> None:
    guest = make_guest(zsource, "g1")
    _write(guest / "disk0.img", 0, os.urandom(6 << 20))
    digest = file_digest(guest / "disk0.img")
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    remote, env = _relayed(ztarget, 2 << 20)  # every disk stream is cut after 2 MiB, like a killed ssh
    failed = hivectl("migrate", "--json", "g1", remote, env=env, timeout=300)
    assert failed.status == 1, failed.out
    assert "g1" in failed.err
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running here again")
    assert file_digest(guest / "disk0.img") == digest
    assert ztarget.guests() == {}
    assert _names(ztarget.env) == ["zroot/vm"]  # no dataset, no partial receive left there
    assert not (ztarget.root / "zroot" / "vm" / ".config" / ".migrate-g1.incoming").exists()
    assert _migration_snapshots() == []
    there = [json.loads(line) for line in ztarget.run("events", "--json").out.splitlines()]
    assert [e["details"]["phase"] for e in there if e["type"] == "migration"] == ["refused"]
    assert hivectl("stop", "g1").status == 0


def test_a_stream_cut_once_resumes_from_the_receive_token(zsource: Any, ztarget: OtherHost, tmp_path: Path) -> None:
    guest = make_guest(zsource, "g1")
    _write(guest / "disk0.img", 0, os.urandom(8 << 20))
    digest = file_digest(guest / "disk0.img")
    assert _zfs(["snapshot", "zroot/vm/g1@probe"]).returncode == 0  # how long the full stream is
    full = len(subprocess.run(["zfs", "send", "zroot/vm/g1@probe"], capture_output=True, check=True).stdout)
    assert _zfs(["destroy", "zroot/vm/g1@probe"]).returncode == 0
    remote, env = _relayed(ztarget, int(full * 0.8), RELAY_ONCE=str(tmp_path / "cut"))
    done = hivectl("migrate", "--json", "g1", remote, env=env, timeout=300)
    assert done.status == 0, done.err
    result = done.json()
    assert (tmp_path / "cut").exists()
    [retry] = result["retries"]
    had = retry["bytes"]
    assert full * 0.7 < had < full, (had, full)
    resent = result["rounds"][0]["bytes"] - had  # what the second attempt sent: the rest only
    assert resent < full * 0.3, (resent, full)
    assert file_digest(ztarget.vm_dir / "g1" / "disk0.img") == digest
    assert _migration_snapshots(ztarget.env) == [] and set(ztarget.guests()) == {"g1"}


def test_an_existing_dataset_there_is_never_received_over(zsource: Any, ztarget: OtherHost) -> None:
    make_guest(zsource, "g1")
    assert _zfs(["create", "zroot/vm/g1"], ztarget.env).returncode == 0  # someone's data, not a guest
    (ztarget.vm_dir / "g1" / "precious").write_text("keep me\n")
    failed = hivectl("migrate", "g1", ztarget.remote)
    assert failed.status == 1
    assert "dataset zroot/vm/g1 exists here and is not a guest" in failed.err, failed.err
    assert (ztarget.vm_dir / "g1" / "precious").read_text() == "keep me\n"
    assert state_of("g1")["state"] == "Stopped" and _migration_snapshots() == []
