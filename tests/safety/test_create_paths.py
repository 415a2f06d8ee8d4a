"""``create`` never reaches outside the guest: images naming other host files, file disks outside the guest directory.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli_helpers import hivectl


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


def test_create_never_makes_a_file_disk_outside_the_guest_directory(vmdir: Path) -> None:
    template = vmdir / ".templates" / "escape.conf"
    template.write_text('loader="bhyveload"\ncpu=1\nmemory=256M\ndisk0_type="virtio-blk"\n'
                        'disk0_name="../escaped.img"\ndisk0_size="1M"\n')
    result = hivectl("create", "-t", "escape", "g")
    assert result.status == 1
    assert f"{template}: disk0_name='../escaped.img'" in result.err, result.err
    assert not (vmdir / "escaped.img").exists() and not (vmdir / "g").exists()
