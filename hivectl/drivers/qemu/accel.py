"""Which accelerator QEMU gets: KVM only when it is real hardware virtualisation, else TCG.

Why not simply "``/dev/kvm`` exists": some hosts (Firecracker-style microVMs) expose a PVM flavour of KVM
(``kvm_pvm``) with no VT-x/AMD-V underneath. QEMU accepts it, ``query-kvm`` says enabled, and a stock
guest then runs hundreds of times slower than under TCG (measured: no boot after 9 minutes against 4 s),
while ``-cpu host`` aborts outright. So KVM is chosen only when ``/dev/kvm`` exists, the CPU advertises
``vmx`` or ``svm``, and ``/sys/module/kvm_pvm`` is absent. ``HIVECTL_QEMU_ACCEL=tcg|kvm`` overrides the
decision (tests, or an administrator who knows better).

The files are looked up under the host's root (``HIVECTL_HOST_ROOT``) so tests can describe a host with
real files instead of mocks.
"""

from __future__ import annotations

import os
from pathlib import Path

from hivectl.errors import ConfigError
from hivectl.patterns import Pattern

ACCEL_ENV = "HIVECTL_QEMU_ACCEL"
ACCELERATORS = ("kvm", "tcg")
_VIRT_FLAG = Pattern(r"(?m)^flags\s*:.*\b(vmx|svm)\b")


def _under(root: Path, path: str) -> Path:
    return Path(str(root).rstrip("/") + path)


def hardware_kvm(root: Path = Path("/")) -> bool:
    """True when KVM here is backed by VT-x/AMD-V (and is not PVM)."""
    if not _under(root, "/dev/kvm").exists() or _under(root, "/sys/module/kvm_pvm").exists():
        return False
    try:
        cpuinfo = _under(root, "/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return _VIRT_FLAG.search(cpuinfo) is not None


def accelerator(root: Path = Path("/")) -> str:
    """``kvm`` or ``tcg`` for this host (``HIVECTL_QEMU_ACCEL`` wins)."""
    forced = os.environ.get(ACCEL_ENV, "")
    if forced:
        if forced not in ACCELERATORS:
            raise ConfigError("environment", ACCEL_ENV, forced, "expected tcg or kvm")
        return forced
    return "kvm" if hardware_kvm(root) else "tcg"


def machine_args(accel: str) -> list[str]:
    """``-machine``/``-cpu``: ``-cpu host`` only with KVM; TCG gets ``max`` (everything TCG can emulate,
    so guests needing x86-64-v2 and later still boot), never ``host``."""
    cpu = "host" if accel == "kvm" else "max"
    return ["-machine", f"q35,accel={accel}", "-cpu", cpu]
