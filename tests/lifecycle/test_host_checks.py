"""Host checks before a start (hivectl/drivers/hostchecks.py), on the simulated FreeBSD host.

Each case changes what the host's own tools answer (sysctl values, loaded modules, the ACPI tables
``acpidump -t`` shows), then runs the real ``hivectl start``: it must refuse in one line naming the
sysctl or CPU feature, start nothing (no bhyve, no loader, no tap), and ``start --dry-run`` must show the
same line. Then ``vm_disable_host_checks="yes"`` in the settings file lets the start through to the
hypervisor, as vm-bhyve's setting does: the loader or bhyve runs (and fails on its own, where the
simulated host is as strict as the real one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, taps, wait_for

AMD = "AMD Ryzen 7 5800X 8-Core Processor"
AMD_FEATURES = str(0x1EBFFF)  # CPUID 8000000Ah EDX of a Zen 3: NP (bit 0) and the rest


@dataclass
class Case:
    sysctls: dict[str, str]
    keys: dict[str, str]
    message: str
    unload: str = ""
    acpi: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = {
    "vmm-not-loaded": Case({}, {}, "the vmm kernel module is not loaded", unload="vmm"),
    "intel-no-vtx-ept": Case({"hw.vmm.vmx.initialized": "0"}, {},
                             "sysctl hw.vmm.vmx.initialized is not 1 (VT-x with EPT missing"),
    "amd-no-npt": Case({"hw.model": AMD, "hw.vmm.vmx.initialized": "0", "hw.vmm.svm.features": "0"}, {},
                       "sysctl hw.vmm.svm.features has no nested paging bit (AMD-V with NPT missing"),
    "uefi-without-ug": Case({"hw.vmm.vmx.cap.unrestricted_guest": "0"}, {"loader": "uefi"},
                            "loader=uefi needs unrestricted guest support, which this CPU lacks (sysctl "
                            "hw.vmm.vmx.cap.unrestricted_guest is not 1)"),
    "grub-without-ug": Case({"hw.vmm.vmx.cap.unrestricted_guest": "0"}, {"loader": "grub"},
                            "loader=grub needs unrestricted guest support"),
    "smp-without-ug": Case({"hw.vmm.vmx.cap.unrestricted_guest": "0"}, {"cpu": "2"},
                           "cpu=2 needs unrestricted guest support to start the other vCPUs"),
    "passthru-iommu-disabled": Case({"hw.vmm.iommu.enable": "0"}, {"passthru0": "2/0/0"},
                                    "pci passthrough needs the I/O MMU, which vmm is told not to use (sysctl "
                                    "hw.vmm.iommu.enable is not 1"),
    "passthru-no-vtd": Case({}, {"passthru0": "2/0/0"}, "no DMAR table (acpidump -t",
                            acpi=["FACP", "APIC", "HPET", "MCFG"]),
    "passthru-amd-no-amdvi": Case({"hw.model": AMD, "hw.vmm.vmx.initialized": "0",
                                   "hw.vmm.svm.features": AMD_FEATURES}, {"passthru0": "2/0/0"},
                                  "sysctl hw.vmm.amdvi.enable is not 1"),
    "memory-over-physmem": Case({}, {"memory": "20G"}, "memory=20G is more than this host's RAM (16G, sysctl "
                                                       "hw.physmem)"),
    "wired-over-max-user-wired": Case({"vm.max_user_wired": str(2 << 30 >> 12)},
                                      {"wired_memory": "yes", "memory": "3G"},
                                      "sysctl vm.max_user_wired is 524288 pages of 4096 bytes (2G)"),
}


def describe(host: Any, case: Case) -> None:
    for name, value in case.sysctls.items():
        host.set_sysctl(name, value)
    if case.unload:
        host.unload_module(case.unload)
    if case.acpi is not None:
        host.set_acpi_tables(case.acpi)


def ran(host: Any, program: str) -> bool:
    return any(argv[0] == program for argv in host.commands())


@pytest.mark.parametrize("label", sorted(CASES))
def test_each_check_refuses_with_its_line_and_the_setting_skips_it(host: Any, label: str) -> None:
    case = CASES[label]
    make_guest(host, **case.keys)
    describe(host, case)
    host.clear_commands()
    refused = hivectl("start", "g1")
    assert refused.status == 1 and case.message in refused.err, refused.err
    assert len(refused.err.strip().splitlines()) == 1, refused.err
    assert not ran(host, "bhyve") and not ran(host, "bhyveload") and not ran(host, "grub-bhyve")
    assert host.running() == {} and taps(host) == []
    shown = hivectl("start", "--dry-run", "g1")
    lines = [line for line in shown.err.splitlines() if case.message in line]
    assert shown.status == 0 and len(lines) == 1 and lines[0].startswith("hivectl: warning: "), shown.err

    host.rc.write_text('vm_disable_host_checks="yes"\n')
    host.clear_commands()
    skipped = hivectl("start", "g1")
    assert case.message not in skipped.err, skipped.err
    assert ran(host, "bhyve") or ran(host, "bhyveload") or ran(host, "grub-bhyve"), host.commands()
    if skipped.status == 0:
        hivectl("poweroff", "-f", "g1")


def test_a_capable_amd_host_starts_a_uefi_guest(host: Any) -> None:
    """On AMD the unrestricted-guest sysctl of vmx.c reads 0 and means nothing (vm-bhyve reads it only
    on Intel); AMD-V with NPT runs UEFI guests."""
    make_guest(host, loader="uefi")
    describe(host, Case({"hw.model": AMD, "hw.vmm.vmx.initialized": "0", "hw.vmm.svm.features": AMD_FEATURES,
                         "hw.vmm.vmx.cap.unrestricted_guest": "0"}, {}, ""))
    result = hivectl("start", "g1")
    assert result.status == 0, result.err
    wait_for(lambda: "g1" in host.running(), what="bhyve running")
    assert hivectl("poweroff", "-f", "g1").status == 0


def test_passthru_on_a_vtd_host_passes_the_checks(host: Any) -> None:
    make_guest(host, passthru0="2/0/0")
    shown = hivectl("start", "--dry-run", "g1")
    assert shown.status == 0 and "passthrough" not in shown.err and "wired" not in shown.err, shown.err
    assert any('"passthru,2/0/0"' in line or "passthru" in line for line in shown.out.splitlines())


@pytest.mark.parametrize("word,skips", [("yes", True), ("YES", True), ("on", True), ("1", True), ("no", False),
                                        ("off", False), ("0", False), ("", False)])
def test_the_setting_reads_as_vm_bhyve_reads_a_yes(host: Any, word: str, skips: bool) -> None:
    """util::yesno: empty, no, false, off and 0 are false, anything else true."""
    make_guest(host)
    host.set_sysctl("hw.vmm.vmx.initialized", "0")
    host.rc.write_text(f'vm_disable_host_checks="{word}"\n')
    shown = hivectl("start", "--dry-run", "g1")
    assert ("hw.vmm.vmx.initialized" not in shown.err) is skips, shown.err
