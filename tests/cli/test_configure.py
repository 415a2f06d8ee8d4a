"""``configure`` with a real editor: valid edits saved atomically, invalid ones refused.

Moved from tests/test_lifecycle_more.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

from pathlib import Path

from hivectl.safety.filelock import lock_name
from tests.cli_helpers import hivectl

EDITOR = """#!/bin/sh
# A real editor for the test: set memory to $NEW_MEMORY in the file it is given.
sed -i "s/^memory=.*/memory=\\"$NEW_MEMORY\\"/" "$1"
"""


def test_configure_saves_valid_edits_atomically_and_refuses_invalid_ones(vmdir: Path, tmp_path: Path) -> None:
    result = hivectl("create", "-s", "1G", "c1")
    assert result.status == 0, result.err
    conf = vmdir / "c1" / "c1.conf"
    conf.chmod(0o640)
    editor = tmp_path / "editor"
    editor.write_text(EDITOR)
    editor.chmod(0o755)
    env = {"EDITOR": str(editor), "NEW_MEMORY": "2G"}
    before = conf.stat()
    result = hivectl("configure", "c1", env=env, input_text="")
    assert result.status == 0, result.err
    after = conf.stat()
    assert 'memory="2G"' in conf.read_text().splitlines()
    assert after.st_ino != before.st_ino, "replaced by rename, not rewritten in place"
    assert after.st_mode & 0o777 == 0o640, "the mode is kept"
    # The config's flock'd sibling lock (hivectl/safety/filelock.py) stays by design; nothing else may.
    left = sorted(p.name for p in (vmdir / "c1").iterdir())
    assert left == [lock_name("c1.conf"), "c1.conf", "disk0.img"], "no temp files left"

    text, inode = conf.read_bytes(), conf.stat().st_ino
    result = hivectl("configure", "c1", env={**env, "NEW_MEMORY": "4Q"}, input_text="")
    assert result.status == 1
    assert f"{conf}: memory='4Q'" in result.err, result.err
    assert conf.read_bytes() == text and conf.stat().st_ino == inode, "unchanged"
    assert "is unchanged" in result.err
