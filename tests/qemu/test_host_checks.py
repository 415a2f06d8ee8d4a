"""The Linux host checks (hivectl/drivers/hostchecks.py ``qemu``), decided from real files under a fake host
root (HIVECTL_HOST_ROOT): forced KVM without hardware KVM, passthru without IOMMU groups, memory over
MemTotal (the skip by vm_disable_host_checks is tested on the simulated host, tests/lifecycle/test_host_checks.py)."""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers import hostchecks
from hivectl.host.local import LocalHost
from hivectl.model.guest import GuestConfig
from hivectl.rcfile import RcFile


def fake_root(tmp_path: Path, *, kvm: bool, groups: int, mem_kib: int) -> Path:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vme sse2 vmx\n" if kvm else
                                           "processor\t: 0\nflags\t\t: fpu vme sse2\n")
    (root / "proc" / "meminfo").write_text(f"MemTotal:       {mem_kib} kB\nMemFree:         1024 kB\n")
    if kvm:
        (root / "dev").mkdir()
        (root / "dev" / "kvm").touch()
    (root / "sys" / "kernel" / "iommu_groups").mkdir(parents=True)
    for group in range(groups):
        (root / "sys" / "kernel" / "iommu_groups" / str(group)).mkdir()
    return root


def config(tmp_path: Path, **keys: str) -> GuestConfig:
    rc = RcFile(tmp_path / "g1.conf", "".join(f'{k}="{v}"\n' for k, v in keys.items()))
    return GuestConfig(rc, "g1")


def test_each_linux_check_has_its_line(tmp_path: Path) -> None:
    host = LocalHost("linux", fake_root(tmp_path, kvm=False, groups=0, mem_kib=4 << 20))  # 4 GiB
    found = hostchecks.qemu(host, config(tmp_path, loader="uefi", cpu="1", memory="8G", passthru0="1/0/0"), "kvm")
    assert [str(p) for p in found] == [
        "HIVECTL_QEMU_ACCEL=kvm, but this host has no hardware KVM (/dev/kvm missing, no vmx/svm flag in "
        "/proc/cpuinfo, or PVM's kvm_pvm module); unset it to run under TCG",
        "pci passthrough needs an IOMMU, but /sys/kernel/iommu_groups is empty (enable VT-d/AMD-Vi in the "
        "firmware; intel_iommu=on on the kernel command line)",
        "memory=8G is more than this host's RAM (4G, MemTotal in /proc/meminfo)"]
    assert all(p.fatal for p in found)  # type: ignore[attr-defined]
    assert hostchecks.qemu(host, config(tmp_path, memory="2G"), "tcg") == [], "TCG needs no KVM"


def test_a_capable_host_passes(tmp_path: Path) -> None:
    host = LocalHost("linux", fake_root(tmp_path, kvm=True, groups=3, mem_kib=16 << 20))
    assert hostchecks.qemu(host, config(tmp_path, memory="8G", passthru0="1/0/0"), "kvm") == []
