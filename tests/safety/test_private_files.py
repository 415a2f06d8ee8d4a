"""Files that hold secrets or guest output are private: configs with a vnc_password, QEMU's console log.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.cli_helpers import hivectl


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
