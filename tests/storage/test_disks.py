"""Disks on a directory datastore, for real: ``create -i``, ``disk resize``, ``clone`` (sparse copy)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hivectl.rcfile import read_values
from tests.cli_helpers import hivectl, tree
from tests.lifecycle_helpers import running_stand_in

MIB = 1 << 20


def _raw_image(path: Path) -> bytes:
    """A 64 MiB raw image: a 'boot sector', data at 10 MiB, a hole between."""
    with open(path, "wb") as handle:
        handle.truncate(64 * MIB)
        handle.write(b"\xeb\x3c\x90HIVECTL" + os.urandom(MIB))
        handle.seek(10 * MIB)
        handle.write(os.urandom(2 * MIB))
    return path.read_bytes()


def test_create_from_raw_image_grows_and_stays_sparse(vmdir: Path) -> None:
    image = vmdir / ".img" / "cloud.raw"
    content = _raw_image(image)
    result = hivectl("create", "-i", "cloud.raw", "-s", "1G", "web")
    assert result.status == 0, result.err
    disk = vmdir / "web" / "disk0.img"
    assert disk.stat().st_size == 1 << 30
    with open(disk, "rb") as handle:
        assert handle.read(len(content)) == content
        assert handle.read(MIB) == bytes(MIB)
    assert disk.stat().st_blocks * 512 < 8 * MIB, "holes of the image are not written"
    dry = hivectl("create", "--dry-run", "-i", str(image), "-s", "1G", "web2")
    staging = json.loads(dry.out.splitlines()[0])[-1]  # built in a hidden staging directory, then renamed
    assert f'["dd", "if={image}", "of={staging}/disk0.img", "bs=1m", "conv=sparse"]' in dry.out


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="scripts/setup installs qemu-utils")
def test_create_from_qcow2_image(vmdir: Path, tmp_path: Path) -> None:
    raw = tmp_path / "src.raw"
    content = _raw_image(raw)
    qcow = vmdir / ".img" / "cloud.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    result = hivectl("create", "-i", "cloud.qcow2", "-s", "256M", "q")
    assert result.status == 0, result.err
    disk = vmdir / "q" / "disk0.img"
    assert disk.stat().st_size == 256 * MIB
    with open(disk, "rb") as handle:
        assert handle.read(len(content)) == content


def test_image_larger_than_disk_or_compressed_is_refused(vmdir: Path) -> None:
    _raw_image(vmdir / ".img" / "big.raw")
    (vmdir / ".img" / "c.raw").write_bytes(gzip.compress(b"x" * 1000))
    before = tree(vmdir)
    small = hivectl("create", "-i", "big.raw", "-s", "32M", "w")
    assert small.status == 1 and "the image big.raw is 64M" in small.err
    packed = hivectl("create", "-i", "c.raw", "w")
    assert packed.status == 1 and "gzip-compressed" in packed.err
    missing = hivectl("create", "-i", "nosuch.img", "w")
    assert missing.status == 1 and "not in any image store" in missing.err
    assert tree(vmdir) == before


def test_resize_file_disk(vmdir: Path) -> None:
    assert hivectl("create", "-s", "1G", "web").status == 0
    disk = vmdir / "web" / "disk0.img"
    with open(disk, "r+b") as handle:
        handle.write(b"keep me")
    dry = hivectl("disk", "resize", "--dry-run", "web", "disk0", "2G")
    assert dry.out.strip() == f'["truncate", "-s", "2G", "{disk}"]' and disk.stat().st_size == 1 << 30
    assert hivectl("disk", "resize", "web", "disk0.img", "2G").status == 0
    with open(disk, "rb") as handle:
        assert handle.read(7) == b"keep me"
    assert disk.stat().st_size == 2 << 30
    assert disk.stat().st_blocks * 512 <= 64 << 10
    shrink = hivectl("disk", "resize", "web", "0", "1G")
    assert shrink.status == 1 and "can only grow" in shrink.err and disk.stat().st_size == 2 << 30
    assert hivectl("disk", "resize", "web", "disk7", "3G").status == 1
    with running_stand_in(vmdir / "web", "web"):
        running = hivectl("disk", "resize", "web", "0", "3G")
    assert running.status == 1 and "stop it first" in running.err, running.err
    table = hivectl("disk", "list", "web").out.split()
    assert table[:7] == ["DISK", "NAME", "TYPE", "DEV", "SIZE", "USED", "PATH"] and "2G" in table


def test_clone_on_directory_datastore_copies_sparse(vmdir: Path) -> None:
    assert hivectl("create", "-s", "10G", "-C", "web").status == 0
    disk = vmdir / "web" / "disk0.img"
    with open(disk, "r+b") as handle:
        handle.seek(3 << 30)
        handle.write(b"data at 3 GiB")
    (vmdir / "web" / "vm-bhyve.log").write_text("old log\n")
    result = hivectl("clone", "web", "copy")
    assert result.status == 0, result.err
    copy = vmdir / "copy" / "disk0.img"
    assert copy.stat().st_size == 10 << 30 and copy.stat().st_blocks * 512 <= 1 * MIB
    with open(copy, "rb") as handle:
        handle.seek(3 << 30)
        assert handle.read(13) == b"data at 3 GiB"
    assert not (vmdir / "copy" / "vm-bhyve.log").exists() and not (vmdir / "copy" / "web.conf").exists()
    old, new = read_values(vmdir / "web" / "web.conf"), read_values(vmdir / "copy" / "copy.conf")
    assert new["uuid"] != old["uuid"] and new["network0_mac"] != old["network0_mac"]
    assert (vmdir / "copy" / "seed.iso").is_file()
    assert hivectl("clone", "web@snap", "c2").status == 1
