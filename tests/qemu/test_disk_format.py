"""The QEMU driver never takes a disk's format from content the guest wrote.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


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
