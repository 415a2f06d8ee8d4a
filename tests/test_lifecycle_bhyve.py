"""The whole bhyve lifecycle through the real CLI against the simulated FreeBSD host.

Each test drives ``hivectl`` as a separate process; the simulated bhyve, bhyveload, bhyvectl and ifconfig
keep the host's state, so assertions are on what the host shows, not on what hivectl claims.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for


def test_start_list_console_stop(host: Any) -> None:
    guest = make_guest(host)
    result = hivectl("start", "g1")
    assert result.status == 0, result.err
    pid = wait_for(lambda: bhyve_pid(host, "g1"), what="bhyve running")
    row = state_of("g1")
    assert row["state"] == f"Running ({pid})" and row["pid"] == pid
    assert host.vm_exists("g1")
    console = (guest / "console").read_text()
    assert "com1=/dev/nmdm-g1.1B" in console
    assert host.path("/dev/nmdm-g1.1B").exists(), "bhyve opened the A side, so the pair exists"
    bridge = host.interfaces()["vm-public"]
    tap = [t for t in taps(host)]
    assert len(tap) == 1 and tap[0] in [m["name"] for m in bridge["members"]]
    assert host.interfaces()[tap[0]]["description"] == "vmnet/g1/0/public"
    loader = host.loader_runs()[-1]["argv"]
    assert loader[0] == "bhyveload" and loader[-1] == "g1"
    started = time.monotonic()
    result = hivectl("stop", "--timeout", "10", "g1")
    assert result.status == 0, result.err
    assert time.monotonic() - started < 10
    assert state_of("g1")["state"] == "Stopped"
    assert bhyve_pid(host, "g1") is None
    assert taps(host) == [], "no tap left behind"
    assert not host.vm_exists("g1"), "bhyvectl --destroy ran"
    assert not (guest / "run.lock").exists() and not (guest / "console").exists()
    log = (guest / "vm-bhyve.log").read_text()
    assert "hypervisor exited with status 1 (poweroff)" in log


def test_guest_reboot_restarts_with_loader(host: Any) -> None:
    make_guest(host)
    assert hivectl("start", "g1").status == 0
    first = wait_for(lambda: bhyve_pid(host, "g1"))
    loaders = len(host.loader_runs())
    host.exit_guest("g1", 0)
    second = wait_for(lambda: (p := bhyve_pid(host, "g1")) and p != first and p, what="second bhyve")
    assert len(host.loader_runs()) == loaders + 1, "bhyveload ran again for the new boot"
    assert state_of("g1")["state"] == f"Running ({second})"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0


def test_crash_loop_limit(host: Any) -> None:
    guest = make_guest(host, on_fault="restart", fault_limit="2", fault_backoff="0")
    assert hivectl("start", "g1").status == 0
    seen = []
    for _ in range(3):
        pid = wait_for(lambda: (p := bhyve_pid(host, "g1")) and p not in seen and p, what="next bhyve")
        seen.append(pid)
        host.exit_guest("g1", 3)
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="supervisor to give up")
    assert len(seen) == 3
    assert "crash loop" in (guest / "vm-bhyve.log").read_text()
    assert taps(host) == [] and not host.vm_exists("g1")


def test_fault_stops_by_default(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: bhyve_pid(host, "g1"))
    host.exit_guest("g1", 3)
    wait_for(lambda: state_of("g1")["state"] == "Stopped")
    last = json.loads((guest / "hivectl.last").read_text())
    assert last["outcome"] == "fault" and last["status"] == 3


def test_concurrent_starts_leave_one_bhyve(host: Any) -> None:
    make_guest(host)
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-m", "hivectl", "start", "g1"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(20)]
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes.count(0) == 1, (codes, results[:3])
    time.sleep(1.0)
    assert bhyve_pid(host, "g1") is not None
    assert len([n for n in host.running() if n == "g1"]) == 1
    assert len(taps(host)) == 1, "losers created no taps"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert taps(host) == []


def test_supervisor_killed_guest_keeps_running_and_is_adopted(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    lock = (guest / "run.lock").read_text()
    supervisor_pid = int(lock.split("pid=")[1].split()[0])
    os.kill(supervisor_pid, signal.SIGKILL)
    time.sleep(0.3)
    assert bhyve_pid(host, "g1") == pid, "bhyve outlives its supervisor"
    assert state_of("g1")["state"] == f"Running ({pid})"
    result = hivectl("start", "g1")
    assert result.status == 0 and "adopted" in result.out
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert state_of("g1")["state"] == "Stopped"
    assert taps(host) == [] and not host.vm_exists("g1")


def test_start_failure_is_reported_and_cleaned(host: Any) -> None:
    guest = make_guest(host)
    host.loader_exit("g1", 2)
    result = hivectl("start", "g1")
    assert result.status == 1 and "loader" in result.err
    assert state_of("g1")["state"] == "Stopped"
    assert taps(host) == [] and not (guest / "run.lock").exists()


def test_dry_run_start_prints_accepted_commands(host: Any) -> None:
    make_guest(host)
    result = hivectl("start", "--dry-run", "g1")
    assert result.status == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    bhyve = lines[-1]
    assert bhyve[0] == "bhyve" and bhyve[-1] == "g1"
    assert any(line[0] == "bhyveload" for line in lines)
    assert bhyve_pid(host, "g1") is None and taps(host) == [], "dry run started nothing"


def test_guest_with_nics_on_three_switch_types(host: Any) -> None:
    host.add_interface("em1")
    assert host.run(["ifconfig", "bridge7", "create"]).returncode == 0  # an rc.conf bridge for a manual switch
    for args in (["-i", "em1", "-n", "100", "-m", "9000", "tagged"], ["-t", "manual", "-b", "bridge7", "office"]):
        result = hivectl("switch", "create", *args)
        assert result.status == 0, result.err
    make_guest(host, network1_type="virtio-net", network1_switch="tagged", network2_type="e1000",
               network2_switch="office")
    result = hivectl("start", "g1")
    assert result.status == 0, result.err
    wait_for(lambda: bhyve_pid(host, "g1"))
    interfaces = host.interfaces()
    by_nic = {int(i["description"].split("/")[2]): name for name, i in interfaces.items()
              if name.startswith("tap") and i.get("description", "").startswith("vmnet/g1/")}
    assert sorted(by_nic) == [0, 1, 2]

    def members(bridge: str) -> list[str]:
        return [m["name"] for m in interfaces[bridge]["members"]]

    assert by_nic[0] in members("vm-public")
    assert by_nic[1] in members("vm-tagged") and "em1.100" in members("vm-tagged"), "VLAN child on the uplink"
    assert interfaces[by_nic[1]]["mtu"] == 9000, "the tap takes the switch's MTU"
    assert by_nic[2] in members("bridge7")
    log = (host.vm_dir / "g1" / "vm-bhyve.log").read_text()
    bhyve_line = next(line for line in log.splitlines() if "hypervisor: bhyve " in line)
    assert f",e1000,{by_nic[2]}," in bhyve_line and f",virtio-net,{by_nic[1]}," in bhyve_line
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert taps(host) == [], "stop leaves no tap behind"
    assert "bridge7" in host.interfaces(), "the administrator's bridge stays"
