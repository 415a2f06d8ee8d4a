"""A running bhyve stand-in: how the guest ends and what stays behind (bhyve(8), bhyvectl(8), vmm(4))."""

from __future__ import annotations

import shutil
import signal

from tests.simhost.fixture import SimHost

FW = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"


def uefi_vm(name: str, *extra: str) -> list[str]:
    return ["bhyve", "-c", "1", "-m", "256M", *extra, "-s", "0,hostbridge", "-s", "31,lpc",
            "-l", f"com1,/dev/nmdm-{name}.1A", "-l", f"bootrom,{FW}", name]


def test_sigterm_is_the_power_button(simhost: SimHost) -> None:
    proc = simhost.start(uefi_vm("vm1"))
    rec = simhost.wait_running("vm1", proc)
    assert rec["pid"] == proc.pid
    assert simhost.vm_exists("vm1")
    if shutil.which("pgrep"):  # the process title is "bhyve: NAME", as vm-bhyve expects
        # (other hosts in parallel tests may run a "vm1" too)
        assert str(proc.pid) in simhost.run(["pgrep", "-fx", "bhyve: vm1"]).stdout.split()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 1
    assert "vm1" not in simhost.running() and "vm1" not in simhost.state()["running"]
    assert simhost.vm_exists("vm1")  # bhyve never destroys its VM
    assert not simhost.path("/dev/nmdm-vm1.1A").exists()


def test_guest_exit_status_from_control_file(simhost: SimHost) -> None:
    proc = simhost.start(uefi_vm("vm1"))
    simhost.wait_running("vm1", proc)
    simhost.exit_guest("vm1", 3)
    assert proc.wait(timeout=10) == 3
    assert not (simhost.root / "control" / "vm1.exit").exists()
    # reboot: a UEFI guest keeps its VM and starts again on it
    proc = simhost.start(uefi_vm("vm1"))
    simhost.wait_running("vm1", proc)
    simhost.exit_guest("vm1", 0)
    assert proc.wait(timeout=10) == 0


def test_bhyvectl_force_reset_and_poweroff(simhost: SimHost) -> None:
    proc = simhost.start(uefi_vm("vm1"))
    simhost.wait_running("vm1", proc)
    stats = simhost.run(["bhyvectl", "--vm=vm1", "--get-stats"])
    resident = [line for line in stats.stdout.splitlines() if line.startswith("Resident memory")]
    assert stats.returncode == 0 and stats.stdout.startswith("vcpu0 stats:\n")
    assert resident and resident[0].split()[2] == str(256 << 20 >> 2)
    assert simhost.run(["bhyvectl", "--vm", "vm1", "--force-reset"]).returncode == 0
    assert proc.wait(timeout=10) == 0
    proc = simhost.start(uefi_vm("vm1", "-D"))
    simhost.wait_running("vm1", proc)
    assert simhost.run(["bhyvectl", "--vm=vm1", "--force-poweroff"]).returncode == 0
    assert proc.wait(timeout=10) == 1
    assert not simhost.vm_exists("vm1")  # -D: destroyed on power-off


def test_bhyvectl_destroy_removes_the_vm(simhost: SimHost) -> None:
    proc = simhost.start(uefi_vm("vm1"))
    simhost.wait_running("vm1", proc)
    result = simhost.run(["bhyvectl", "--vm=vm1", "--destroy"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not simhost.vm_exists("vm1")
    assert proc.wait(timeout=10) == 1
    missing = simhost.run(["bhyvectl", "--vm=vm1", "--destroy"])
    assert (missing.returncode, missing.stderr) == (1, "vm_open: vm1 could not be opened: No such file or "
                                                       "directory\n")
    usage = simhost.run(["bhyvectl", "--destroy", "--bogus"])
    assert usage.returncode == 1 and "Usage: bhyvectl --vm=<vmname>" in usage.stderr
    assert simhost.run(["bhyvectl", "--vm=x", "--create", "--destroy"]).returncode == 1
    assert simhost.run(["bhyvectl", "--vm=x", "--create"]).returncode == 0
    assert simhost.vm_exists("x")


def test_sigkill_and_acpi_modes(simhost: SimHost) -> None:
    simhost.set_guest_acpi("vm1", "off")
    proc = simhost.start(uefi_vm("vm1"))
    simhost.wait_running("vm1", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    simhost.set_guest_acpi("vm1", "poweroff")
    proc = simhost.start(uefi_vm("vm1"))
    simhost.wait_running("vm1", proc)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert "vm1" in simhost.state()["running"]  # a killed bhyve cannot clean up ...
    assert "vm1" not in simhost.running()  # ... but its record is recognised as stale
    proc = simhost.start(uefi_vm("vm1"))  # and does not block the next start
    simhost.wait_running("vm1", proc)
