"""A vm_dir on ZFS (``zfs:zroot/vm``) on the simulated FreeBSD host, initialised with ``hivectl init``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import HIVECTL
from tests.simhost.fixture import SimHost


@dataclass
class ZfsVm:
    host: SimHost
    root: Path  # the mountpoint of zroot/vm

    def fail_next(self, command: str, message: str) -> None:
        """Make the next ``zfs COMMAND`` fail with ``message`` (see tests/simhost/zfs.py)."""
        control = self.host.root / "control"
        control.mkdir(exist_ok=True)
        with open(control / "zfs.fail", "a") as handle:
            handle.write(f"{command} {message}\n")

    def datasets(self) -> set[str]:
        return {n for n in self.host.datasets() if n.startswith("zroot/vm")}


@pytest.fixture
def zfsvm(simhost: SimHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ZfsVm]:
    done = simhost.run(["zfs", "create", "zroot/vm"])
    assert done.returncode == 0, done.stderr
    rc = tmp_path / "rc.conf"
    rc.write_text("")
    monkeypatch.setenv("HIVECTL_VM_DIR", "zfs:zroot/vm")
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    init = subprocess.run([*HIVECTL, "init"], capture_output=True, text=True, check=False)
    assert init.returncode == 0, init.stderr
    yield ZfsVm(simhost, Path(simhost.run(["zfs", "list", "-H", "-o", "mountpoint", "zroot/vm"]).stdout.strip()))
