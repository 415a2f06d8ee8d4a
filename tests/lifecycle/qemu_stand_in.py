"""A vm_dir with one QEMU guest and a stand-in ``qemu-system-x86_64`` first on PATH, for tests that run a
real ``hivectl start`` without booting anything (tests/lifecycle/test_start_imports.py, test_qemu_ready.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The guest's name is a host-wide one (QEMU's process title, bhyve's /dev/vmm name): another test's ``g1``
# running on the other xdist worker would be a hypervisor "hivectl did not start" here. So: a name of its own.
NAME = "standin1"


def qemu_bed(tmp_path: Path, stand_in: str, **extra_env: str) -> dict[str, str]:
    """``tmp_path/vm`` with guest ``NAME`` (direct kernel boot, so no firmware is needed) and ``stand_in`` as the
    executable QEMU; returns the environment that points hivectl at both (the QEMU driver, TCG)."""
    vm = tmp_path / "vm"
    guest = vm / NAME
    (vm / ".config").mkdir(parents=True)
    (vm / ".config" / "system.conf").write_text("")
    guest.mkdir()
    (guest / f"{NAME}.conf").write_text('loader="grub"\ncpu=1\nmemory=64M\nqemu_kernel="kernel"\n')
    (guest / "kernel").write_text("")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "qemu-system-x86_64").write_text(stand_in)
    (bindir / "qemu-system-x86_64").chmod(0o755)
    return {**os.environ, "HIVECTL_VM_DIR": str(vm), "HIVECTL_RC_CONF": str(tmp_path / "rc.conf"),
            "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg",
            "PYTHONPATH": str(REPO), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", **extra_env}


def wait_cleaned_up(tmp_path: Path, timeout: float = 60) -> None:
    """Until the guest's run lock is gone: the supervisor has cleaned up after its stand-in QEMU."""
    lock = tmp_path / "vm" / NAME / "run.lock"
    deadline = time.monotonic() + timeout
    while lock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not lock.exists(), "the supervisor did not clean up after its stand-in QEMU"
