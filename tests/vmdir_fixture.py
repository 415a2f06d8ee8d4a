"""A scratch vm_dir on the Linux side (no simulated FreeBSD host needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def vmdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An initialised, empty vm_dir selected through HIVECTL_VM_DIR, with its own rc.conf file."""
    root = tmp_path / "vm"
    root.mkdir()
    rc = tmp_path / "rc.conf"
    rc.write_text('vm_list=""\n')
    monkeypatch.setenv("HIVECTL_VM_DIR", str(root))
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    monkeypatch.setenv("HIVECTL_PLATFORM", "linux")
    monkeypatch.delenv("HIVECTL_HOST_ROOT", raising=False)
    from hivectl.cli.main import main

    assert main(["init"]) == 0
    yield root
