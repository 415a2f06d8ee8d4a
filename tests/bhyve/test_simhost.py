"""Every golden plan is accepted by the simulated FreeBSD host's bhyve, bhyveload and grub-bhyve.

For each case and boot: plan against a temporary vm_dir on the simulated host (the output must be the
golden file once that directory is mapped back to /vm), put in place what the plan refers to (disks,
ISOs, shares, taps made with the sim's ifconfig, firmware, a listening swtpm socket), apply the prepare
actions, run the loader (exit 0), start bhyve and wait until it runs, then press the power button through
the driver (SIGTERM; a guest with ACPI powers off: exit 1) and run the driver's cleanup.

The -k file is checked too: bhyve's ``config.dump`` of the command line and of the file must be the same
tree, so the two renderings of one plan cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivectl.drivers.bhyve.planner import Planned
from hivectl.host.local import LocalHost
from hivectl.plan import Plan
from tests.bhyve.cases import all_cases
from tests.bhyve.harness import GOLDEN_DIR, Case, Env, config_for, driver_for, guest_ref, plan_boot, render
from tests.simhost import bhyve as simbhyve
from tests.simhost.fixture import SimHost

CASES = all_cases()
BLOCK = ("virtio-blk", "nvme", "ahci-hd", "ahci-cd")


class Provider:
    """Makes the host-side things a plan names, the way an administrator (or another module) would."""

    def __init__(self, sim: SimHost) -> None:
        self.sim = sim
        self.sockets: list[socket.socket] = []

    def file(self, path: str, size: int = 1 << 20) -> None:
        local = self.sim.path(path)
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "wb") as fh:
                fh.truncate(size)

    def port(self, backend: str) -> None:
        name = backend.split(",")[0]
        if name.startswith(("vale", "netgraph")) or name in self.sim.interfaces():
            return
        argv = ["ifconfig", name, "create"] if name.startswith("tap") else ["ifconfig", "tap", "create", "name", name]
        done = self.sim.run(argv)
        assert done.returncode == 0, done.stderr

    def swtpm(self, path: str) -> None:
        if not Path(path).exists():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            sock.listen(1)
            self.sockets.append(sock)

    def provide(self, plan: Planned) -> None:
        inv = plan.invocation
        for device in inv.all_devices:
            if device.emulation in BLOCK and device.head:
                self.file(device.head)
            for port in device.ports:
                self.file(port.path)
            if device.emulation == "virtio-9p" and device.head:
                self.sim.path(device.head.partition("=")[2]).mkdir(parents=True, exist_ok=True)
            if device.emulation in ("virtio-net", "e1000") and device.head:
                self.port(device.head)
            for opt in device.opts:
                if opt.name == "rom" and opt.value:
                    self.file(opt.value, 64 << 10)
        if inv.bootrom:
            self.file(inv.bootrom, 2 << 20)
        if inv.tpm and inv.tpm[0] == "swtpm":
            self.swtpm(inv.tpm[1])

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def dump(argv: list[str]) -> set[str]:
    """bhyve's own view of an invocation: the config tree ``-o config.dump=1`` would print.

    The stand-in's parser is called in-process (a process per dump would double this test's time).
    """
    return set(simbhyve.parse(argv[1:], "14").cfg.dump())


def boot_once(sim: SimHost, case: Case, env: Env, plan: Planned, tmp: Path) -> None:
    driver, _store = driver_for(env, LocalHost())
    ref = guest_ref(case, env, driver.store)
    if not plan.boot.secrets:
        kfile = tmp / "k.conf"
        kfile.write_text(plan.config_text)
        assert dump(plan.boot.hypervisor) == dump(["bhyve", "-k", str(kfile), *plan.invocation.raw, case.guest])
    Plan(list(plan.boot.prepare)).apply(driver.host)
    if plan.boot.loader:
        done = sim.run(plan.boot.loader)
        assert done.returncode == 0, f"{plan.boot.loader}: {done.stderr}"
    proc = sim.start(plan.boot.hypervisor)
    record = sim.wait_running(case.guest, proc)
    assert record["pid"] == proc.pid
    driver.request_shutdown(ref, proc.pid)
    assert proc.wait(timeout=10) == 1, proc.stderr.read() if proc.stderr else ""
    for secret in plan.boot.secrets:
        secret.unlink()
    Plan(driver.cleanup(ref)).apply(driver.host)
    assert not sim.vm_exists(case.guest)
    assert not list(ref.directory.glob("vtcon.*"))
    (ref.directory / "uefi-vars.fd").unlink(missing_ok=True)  # every golden boot starts without a copy


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: FreeBSD limits UNIX socket paths (virtio-console, swtpm) to 103 bytes."""
    path = Path(tempfile.mkdtemp(prefix="hv", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_simulated_host_accepts_every_golden_plan(case: Case, simhost: SimHost, short_tmp: Path) -> None:
    env = Env(short_tmp / "vm", short_tmp / "tank" / "vm", simhost.root)
    driver, _store = driver_for(env, LocalHost())
    ref = guest_ref(case, env, driver.store)
    ref.directory.mkdir(parents=True)
    provider = Provider(simhost)
    planned = []
    seen: set[str] = set()
    try:
        for boot in case.boots:
            if boot.vmm_exists:
                done = simhost.run(["bhyvectl", f"--vm={case.guest}", "--create"])
                assert done.returncode == 0, done.stderr
            plan = plan_boot(driver, case, env, boot)
            planned.append((boot, plan))
            commands = repr((plan.boot.prepare, plan.boot.loader, plan.boot.hypervisor))
            if commands in seen:
                continue  # the same commands as an earlier boot of this case (a reboot after install)
            seen.add(commands)
            provider.provide(plan)
            boot_once(simhost, case, env, plan, short_tmp)
    finally:
        provider.close()
    text = render(case, planned, env).replace(str(short_tmp), "")
    assert text == (GOLDEN_DIR / f"{case.name}.txt").read_text()


def test_force_poweroff_and_reset_reach_a_running_guest(simhost: SimHost, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "template-linux-uefi")
    case = dataclasses.replace(case, boots=case.boots[:1])
    env = Env(tmp_path / "vm", tmp_path / "tank" / "vm", simhost.root)
    driver, _store = driver_for(env, LocalHost())
    ref = guest_ref(case, env, driver.store)
    ref.directory.mkdir(parents=True)
    provider = Provider(simhost)
    plan = plan_boot(driver, case, env, case.boots[0])
    provider.provide(plan)
    Plan(list(plan.boot.prepare)).apply(driver.host)
    for force, status in ((driver.force_reset, 0), (driver.force_poweroff, 1)):
        proc = simhost.start(plan.boot.hypervisor)
        simhost.wait_running(case.guest, proc)
        force(ref, proc.pid)
        assert proc.wait(timeout=10) == status
        assert driver.classify(status, ref).value == ("reboot" if status == 0 else "poweroff")
    Plan(driver.cleanup(ref)).apply(driver.host)
    assert not simhost.vm_exists(case.guest)


def test_preflight_on_the_simulated_host(simhost: SimHost, short_tmp: Path) -> None:
    """A ready simulated host has no problems; the sim's own answers (kldstat, sysctl, pciconf) drive it."""
    case = next(c for c in CASES if c.name == "uefi-devices")
    env = Env(short_tmp / "vm", short_tmp / "tank" / "vm", simhost.root)
    driver, _store = driver_for(env, LocalHost())
    ref = guest_ref(case, env, driver.store)
    config = config_for(case, env, ref)
    assert driver.preflight(ref, config) == []
    simhost.set_sysctl("hw.vmm.maxcpu", "2")
    assert [p for p in driver.preflight(ref, config) if "at most 2 vCPUs" in p]
    with simhost.edit() as data:
        next(d for d in data["pci"] if d["driver"] == "ppt")["driver"] = "ix"
    assert [p for p in driver.preflight(ref, config) if "attached to ix, not ppt(4)" in p]
    simhost.unload_module("vmm")
    assert [p for p in driver.preflight(ref, config) if "vmm kernel module" in p]


def test_the_sim_refuses_a_broken_plan(simhost: SimHost, tmp_path: Path) -> None:
    """The acceptance above can fail: the same host refuses a plan whose disk is missing."""
    case = next(c for c in CASES if c.name == "template-linux-uefi")
    env = Env(tmp_path / "vm", tmp_path / "tank" / "vm", simhost.root)
    driver, _store = driver_for(env, LocalHost())
    guest_ref(case, env, driver.store).directory.mkdir(parents=True)
    plan = plan_boot(driver, case, env, case.boots[0])
    Plan(list(plan.boot.prepare)).apply(driver.host)
    done = subprocess.run(plan.boot.hypervisor, capture_output=True, text=True, timeout=30,
                          env=os.environ.copy(), check=False)
    assert done.returncode == 4 and "Could not open backing file" in done.stderr
