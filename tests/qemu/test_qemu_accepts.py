"""QEMU itself accepts every golden command line, and puts each device at the planned PCI address.

Each case is started paused (``-S``: no guest code runs, ~0.3 s), checked over QMP and quit. This is what
catches a device property QEMU does not know or a bus that does not exist, which a golden file cannot.
Taps are created by QEMU itself here (root, ``/dev/net/tun``) and vanish when it exits.
"""

from __future__ import annotations

import os
import re

import pytest

from hivectl.drivers.qemu import qmp
from tests.qemu.cases import CASES, Case
from tests.qemu.guests import Scratch
from tests.qemu.running import Run
from tests.qemu.test_argv_golden import render

_ADDR = re.compile(r"addr=0x([0-9a-f]+)\.([0-7])")


def _planned_addresses(argv: list[str]) -> set[tuple[int, int]]:
    found = set()
    for arg in argv:
        match = _ADDR.search(arg)
        if match:
            found.add((int(match[1], 16), int(match[2])))
    return found


@pytest.mark.parametrize("case", [c for c in CASES if not c.needs_host_device], ids=lambda c: c.name)
def test_qemu_starts_the_rendered_command_line(scratch: Scratch, case: Case) -> None:
    taps = {index: f"hq{os.getpid() % 100000}t{index}" for index in case.taps}
    ref, plan = render(scratch, case, taps)
    with Run(scratch.driver, ref, plan, extra=("-S",)) as run:
        run.start(watch=False, serial=False)
        run.wait_control()
        control = scratch.driver.sockets(ref).control
        assert qmp.command(control, "query-status")["status"] == "prelaunch"
        buses = qmp.command(control, "query-pci")
        actual = {(d["slot"], d["function"]) for bus in buses if bus["bus"] == 0 for d in bus["devices"]}
        planned = _planned_addresses(plan.hypervisor)
        assert planned and planned <= actual, f"planned {sorted(planned)}, QEMU has {sorted(actual)}"
        block = {d["device"]: d for d in qmp.command(control, "query-block")}
        for index, disk in enumerate(ref.config().disks):
            if disk.type != "virtio-9p":
                assert f"disk{index}" in block, f"disk{index} missing in {sorted(block)}"
        scratch.driver.force_poweroff(ref, run.proc.pid if run.proc else None)
        assert run.wait_exit(10) == 0
