"""``limit_pcpu`` through the whole of ``hivectl start`` on a real QEMU guest (issue 13, Linux limits).

tests/limits/test_qemu_real.py checks the cgroup writer on a QEMU started by the test's own harness; this
one starts the guest as an administrator does (``create``, ``start``, ``console``, ``info``, ``stop``), so
the supervisor's own spawn path is what puts QEMU in the cgroup and its tear-down what removes it. What is
measured is what the kernel says: QEMU's CPU time from /proc while the guest spins its one vCPU.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hivectl.host import cgroups
from tests.e2e.conftest import READY, Env

pytestmark = pytest.mark.vm

BUSY = "while :; do :; done &\n"  # the guest's one vCPU busy from now on
PCPU = 20  # percent of a CPU: low enough to tell apart from a free guest's ~1.0, high enough that the
# limited guest's own boot (limited from QEMU's start) does not take a minute under TCG, as 5 % did


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cpu_use(e2e: Env, name: str) -> tuple[int, float]:
    """Start ``name``, make its guest spin, and return QEMU's pid and CPU use (in CPUs) over 4 s."""
    seen = len(e2e.console_log(name))  # the log goes on across runs: wait for this boot's ready line
    e2e.ok("start", name)
    e2e.wait_console(name, READY, after=seen, timeout=240)
    pid = e2e.state(name)["pid"]
    e2e.ok("console", name, input_text=BUSY)
    time.sleep(1.5)
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(4)
    return pid, (cpu_seconds(pid) - before) / (time.monotonic() - started)


def test_limit_pcpu_slows_a_guest_started_by_hivectl_and_goes_with_its_run(e2e: Env) -> None:
    if cgroups.groups(Path("/"), "probe", {"cpu"})[1]:
        pytest.skip("this host has no cgroup cpu controller")  # a host property, not a missing feature
    e2e.ok("create", "-t", "tiny-direct", "lim")
    conf = e2e.vm_dir / "lim" / "lim.conf"
    plain = conf.read_text()
    _pid, free = busy_cpu_use(e2e, "lim")
    e2e.ok("stop", "--timeout", "30", "lim")
    conf.write_text(plain + f'limit_pcpu="{PCPU}"\n')
    pid, limited = busy_cpu_use(e2e, "lim")
    group = cgroups.groups(Path("/"), "lim", {"cpu"})[0][0]
    assert str(pid) in (group.path / "cgroup.procs").read_text().split(), "QEMU runs in the guest's cgroup"
    limits = e2e.ok("info", "--json", "lim").json()["limits"]
    quota = "cpu.max" if group.v2 else "cpu.cfs_quota_us"
    assert limits["in_force"][quota].split()[0] == str(PCPU * 1000), limits
    print(f"QEMU CPU use of a spinning guest: {free:.3f} CPU free, {limited:.3f} under limit_pcpu={PCPU}")
    assert limited < PCPU / 100 * 1.6 + 0.02, f"at most {PCPU}% of a CPU (+ the accounting slack)"
    assert free > 2 * limited, "the guest ran measurably slower under the limit"
    # poweroff, not stop: a guest spinning at its quota can take the whole stop timeout to act on the ACPI
    # power button (30 s here), and the tear-down that removes the cgroup is the same
    e2e.ok("poweroff", "-f", "lim")
    assert not group.path.exists(), "the run's tear-down removes the guest's cgroup"
