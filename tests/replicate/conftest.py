"""Two vm_dirs on one simulated FreeBSD host: the source ``zfs:zroot/vm`` (tests/storage/zfsfixture.py) and a
DR copy ``zfs:tank/vm`` on a second pool, each initialised with ``hivectl init``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import HIVECTL
from tests.storage.zfsfixture import ZfsVm, zfsvm  # noqa: F401

TARGET = "zfs:tank/vm"


@dataclass
class Pair:
    src: ZfsVm
    target: str  # the DR vm_dir spec

    @property
    def host(self):  # type: ignore[no-untyped-def]
        return self.src.host

    def on_target(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``hivectl ARGS`` with the DR vm_dir."""
        env = dict(os.environ, HIVECTL_VM_DIR=self.target)
        return subprocess.run([*HIVECTL, *args], capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)

    def zvol(self, dataset: str) -> Path:
        return self.host.root / "dev" / "zvol" / dataset


@pytest.fixture
def pair(zfsvm: ZfsVm) -> Iterator[Pair]:  # noqa: F811
    zfsvm.host.add_pool("tank")
    done = zfsvm.host.run(["zfs", "create", "tank/vm"])
    assert done.returncode == 0, done.stderr
    result = Pair(zfsvm, TARGET)
    init = result.on_target("init")
    assert init.returncode == 0, init.stderr
    yield result
