"""KVM only where it is real hardware virtualisation: decided from real files under a fake host root."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivectl.drivers.qemu.accel import ACCEL_ENV, accelerator, hardware_kvm, machine_args
from hivectl.errors import ConfigError

VMX = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae vmx sse2\n"
NO_VIRT = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae sse2 hypervisor\n"


def host_root(tmp_path: Path, *, kvm: bool, cpuinfo: str, pvm: bool = False) -> Path:
    (tmp_path / "dev").mkdir(parents=True)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo)
    if kvm:
        (tmp_path / "dev" / "kvm").write_text("")
    if pvm:
        (tmp_path / "sys" / "module" / "kvm_pvm").mkdir(parents=True)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ACCEL_ENV, raising=False)


@pytest.mark.parametrize(("kvm", "cpuinfo", "pvm", "expected"), [
    (True, VMX, False, "kvm"),
    (True, VMX.replace("vmx", "svm"), False, "kvm"),
    (True, VMX, True, "tcg"),  # PVM: /dev/kvm works but guests crawl
    (True, NO_VIRT, False, "tcg"),  # /dev/kvm without VT-x/AMD-V
    (False, VMX, False, "tcg"),  # no /dev/kvm
])
def test_accelerator_from_host_facts(tmp_path: Path, kvm: bool, cpuinfo: str, pvm: bool, expected: str) -> None:
    root = host_root(tmp_path, kvm=kvm, cpuinfo=cpuinfo, pvm=pvm)
    assert accelerator(root) == expected
    assert hardware_kvm(root) is (expected == "kvm")


def test_vmx_must_be_a_whole_flag(tmp_path: Path) -> None:
    root = host_root(tmp_path, kvm=True, cpuinfo="flags\t\t: fpu vmxnotreally sse2\n")
    assert accelerator(root) == "tcg"


def test_environment_overrides_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = host_root(tmp_path, kvm=False, cpuinfo=NO_VIRT)
    monkeypatch.setenv(ACCEL_ENV, "kvm")
    assert accelerator(root) == "kvm"
    monkeypatch.setenv(ACCEL_ENV, "tcg")
    assert accelerator(host_root(tmp_path / "x", kvm=True, cpuinfo=VMX)) == "tcg"
    monkeypatch.setenv(ACCEL_ENV, "hvf")
    with pytest.raises(ConfigError, match="HIVECTL_QEMU_ACCEL='hvf': expected tcg or kvm"):
        accelerator(root)


def test_cpu_host_only_with_kvm() -> None:
    assert machine_args("kvm") == ["-machine", "q35,accel=kvm", "-cpu", "host"]
    tcg = machine_args("tcg")
    assert tcg[:2] == ["-machine", "q35,accel=tcg"] and "host" not in tcg
