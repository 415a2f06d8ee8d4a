"""Limits and the software TPM on a real QEMU guest (the tiny guest under TCG), on this Linux host.

The QEMU process is started as tests/qemu/running.py does (the driver's own plan and prepare actions,
swtpm included); the cgroup limits are put on it by the function the supervisor calls after each spawn
(hivectl/runner/limits.py ``apply``), and removed by the run's tear-down functions. What is checked is what
the kernel and the guest say: QEMU's CPU time from /proc, the cgroup's throttling counters, and the
guest's own /sys/class/tpm.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from hivectl.host import cgroups
from hivectl.runner import limits
from tests.qemu.guests import Scratch, tinyguest_artifact
from tests.qemu.running import READY_RE, Run

pytestmark = pytest.mark.vm


def direct_conf(extra: str = "", append: str = "") -> str:
    vmlinux, initramfs = tinyguest_artifact("vmlinux"), tinyguest_artifact("initramfs")
    return (f'loader="bhyveload"\ncpu=1\nmemory=256M\nqemu_kernel="{vmlinux}"\nqemu_initrd="{initramfs}"\n'
            f'qemu_append="console=ttyS0,115200 quiet{append}"\n{extra}')


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def used_over(pid: int, seconds: float) -> float:
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


def test_a_cpu_limit_slows_the_guest_down_and_its_cgroup_goes_with_the_run(scratch: Scratch) -> None:
    _found, missing = cgroups.groups(Path("/"), "x", {"cpu"})
    if missing:
        pytest.skip("this host has no cgroup cpu controller")  # a host property, not a missing feature
    ref = scratch.guest(f"lim{os.getpid() % 10000}", direct_conf('limit_pcpu="5"\n'))
    with Run(scratch.driver, ref, scratch.plan(ref)) as run:
        run.start()
        run.wait_for(READY_RE, 240)
        assert run.proc is not None
        pid = run.proc.pid
        run.send("while :; do :; done &\n")  # the guest's one vCPU busy from now on
        time.sleep(1)
        free = used_over(pid, 4)
        logged: list[str] = []
        limits.apply(scratch.host, ref, ref.config(), pid, logged.append)
        group = cgroups.groups(Path("/"), ref.name, {"cpu"})[0][0]
        assert str(pid) in (group.path / "cgroup.procs").read_text().split(), logged
        quota = "cpu.max" if group.v2 else "cpu.cfs_quota_us"
        assert any(f"{quota} = 5000" in line for line in logged), logged
        time.sleep(1)
        limited = used_over(pid, 4)
        stat = dict(line.split() for line in (group.path / "cpu.stat").read_text().splitlines())
        print(f"QEMU CPU use, busy guest: {free:.3f} CPU free, {limited:.3f} CPU under limit_pcpu=5; {stat}")
        assert limited < 0.05 * 1.6 + 0.02, "the limit holds: at most 5% of a CPU (+ the accounting slack)"
        assert free > 2 * limited, "the guest ran measurably slower under the limit"
        assert int(stat["nr_throttled"]) > 0
        report = limits.report(scratch.host, ref, pid)
        assert report.get(quota, "").startswith("5000"), report
    assert run.proc.poll() is not None
    limits.release_groups(scratch.host, ref)
    assert not group.path.exists(), "the run's tear-down removes the guest's cgroup"


@pytest.mark.skipif(shutil.which("swtpm") is None, reason="swtpm is not installed (scripts/setup installs it)")
def test_swtpm_gives_the_tiny_guest_a_tpm_and_stops_with_the_run(scratch: Scratch) -> None:
    # The tiny guest's direct (PVH) boot gives it no ACPI tables, where QEMU describes the TPM: its built-in
    # tpm_tis driver is told to probe the TIS registers at their standard address instead (tpm_tis.force).
    ref = scratch.guest(f"tpm{os.getpid() % 10000}", direct_conf('tpm="swtpm"\n', " tpm_tis.force=1"))
    assert scratch.driver.preflight(ref, ref.config()) == []
    plan = scratch.plan(ref)
    assert "tpm-tis,tpmdev=tpm0" in plan.hypervisor
    try:
        with Run(scratch.driver, ref, plan) as run:
            run.start()  # the prepare actions start swtpm before QEMU
            pidfile = ref.directory / "swtpm.pid"
            tpm_pid = int(pidfile.read_text())
            run.wait_for(READY_RE, 240)
            run.send("ls /sys/class/tpm; cat /sys/class/tpm/tpm0/tpm_version_major; echo TPM-LISTED\n")
            seen = run.wait_for(r"(tpm0)\s+(\d)\s+TPM-LISTED", 60)
            assert seen.group(2) == "2", run.tail()
            assert (ref.directory / "tpm").is_dir() and any((ref.directory / "tpm").iterdir()), "swtpm's state"
    finally:  # the driver's cleanup stops swtpm, also when an assertion above failed
        for action in scratch.driver.cleanup(ref):
            action.apply(scratch.host)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{tpm_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{tpm_pid}").exists() or "Z" in Path(f"/proc/{tpm_pid}/stat").read_text().split()[2]
    assert not pidfile.exists() and not (ref.directory / "swtpm.sock").exists()
