"""Guests in jails on the simulated FreeBSD host (issue 13 item 5; docs/jails.md).

``jail="auto"``: the guest's bhyveload and bhyve run through jexec in a jail ``hivectl-NAME`` whose devfs
ruleset shows only that guest's devices; another guest's jail cannot see them; stop, and the stale run of a
killed supervisor, leave no jail, ruleset or root behind. ``jail="NAME"``: the administrator's jail, used
only when it runs and has ``allow.vmm``.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, state_of, wait_for


def rulesets(host: Any) -> list[str]:
    return host.call(["devfs", "rule", "showsets"]).stdout.split()


def test_dry_run_shows_the_jail_devfs_and_jexec_steps(host: Any) -> None:
    make_guest(host, "web", jail="auto")
    result = hivectl("start", "--dry-run", "web")
    assert result.status == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines() if line.startswith("[")]
    root = str(host.vm_dir / ".jails" / "web")
    assert ["devfs", "rule", "-s", "64000", "add", "hide"] in lines
    assert ["devfs", "rule", "-s", "64000", "add", "path", "vmm/web", "unhide"] in lines
    create = next(line for line in lines if line[:2] == ["jail", "-c"])
    assert create[2:4] == ["name=hivectl-web", f"path={root}"]
    assert {"persist", "allow.vmm", "mount.devfs", "devfs_ruleset=64000"} <= set(create)
    assert f"mount={host.vm_dir / 'web'} {root}{host.vm_dir / 'web'} nullfs rw 0 0" in create
    assert lines[-2][:3] == ["jexec", "hivectl-web", "bhyveload"]
    assert lines[-1][:3] == ["jexec", "hivectl-web", "bhyve"]
    # the plan changed nothing
    assert host.jails() == {} and rulesets(host) == [] and not (host.vm_dir / ".jails").exists()


def test_a_jailed_guest_sees_only_its_devices_and_stop_removes_its_jail(host: Any) -> None:
    for name in ("g1", "g2"):
        make_guest(host, name, jail="auto")
    host.add_pool("tank")
    for name in ("g1", "g2"):
        result = hivectl("start", name)
        assert result.status == 0, result.err
    running = host.running()
    assert running["g1"]["jail"] == "hivectl-g1" and running["g2"]["jail"] == "hivectl-g2"
    jails = host.jails()
    one, two = jails["hivectl-g1"], jails["hivectl-g2"]
    assert one["params"]["allow.vmm"] == "true" and one["devfs"]["ruleset"] != two["devfs"]["ruleset"]
    assert sorted(rulesets(host)) == sorted([str(one["devfs"]["ruleset"]), str(two["devfs"]["ruleset"])])
    tap1, tap2 = running["g1"]["taps"][0], running["g2"]["taps"][0]
    com1 = next(iter(running["g1"]["nmdm"]))
    assert host.jail_sees("hivectl-g1", "/dev/null")
    for device in ("/dev/vmm/g1", f"/dev/{tap1}", f"/dev/{com1}A", f"/dev/{com1}B"):
        assert host.jail_sees("hivectl-g1", device), device
        assert not host.jail_sees("hivectl-g2", device), device
    assert host.jail_sees("hivectl-g2", f"/dev/{tap2}") and not host.jail_sees("hivectl-g1", f"/dev/{tap2}")
    for hidden in ("/dev/vmm/g2", "/dev/mem", "/dev/zvol/tank/other", "/dev/pci", "/dev/tpm0"):
        assert not host.jail_sees("hivectl-g1", hidden), hidden
    # bhyve run in g1's jail for g2's VM cannot open it (the kernel made it; the jail's /dev does not show it)
    fw = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"
    other = host.run(["jexec", "hivectl-g1", "bhyve", "-c", "1", "-m", "256M", "-s", "0,hostbridge", "-s", "31,lpc",
                      "-l", f"bootrom,{fw}", "g2"])
    assert (other.returncode, other.stderr) == (4, "vm_open: No such file or directory\n")

    result = hivectl("stop", "g1")
    assert result.status == 0, result.err
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="g1 stopped")
    wait_for(lambda: "hivectl-g1" not in host.jails(), what="g1's jail removed")
    assert rulesets(host) == [str(two["devfs"]["ruleset"])]
    assert not (host.vm_dir / ".jails" / "g1").exists()
    assert "hivectl-g2" in host.jails() and "g2" in host.running()
    assert hivectl("stop", "g2").status == 0
    wait_for(lambda: host.jails() == {} and rulesets(host) == [], what="every jail and ruleset removed")
    assert list((host.vm_dir / ".jails").iterdir()) == []


def test_a_killed_supervisor_leaves_nothing_once_the_run_is_cleared(host: Any) -> None:
    guest = make_guest(host, "g1", jail="auto")
    assert hivectl("start", "g1").status == 0
    state = json.loads((guest / "hivectl.state").read_text())
    assert state["teardown"][0] == ["jail", "-r", "hivectl-g1"]
    supervisor = int((guest / "run.lock").read_text().split("pid=")[1].split()[0])
    os.kill(supervisor, signal.SIGKILL)
    bhyve = host.running()["g1"]["pid"]
    os.kill(int(bhyve), signal.SIGKILL)
    wait_for(lambda: "g1" not in host.running(), what="bhyve gone")
    result = hivectl("stop", "g1")  # the stale run is cleared: its jail, ruleset and root with it
    wait_for(lambda: host.jails() == {}, what="the jail removed")
    assert rulesets(host) == [] and not (guest.parent / ".jails" / "g1").exists(), result.err
    assert hivectl("start", "g1").status == 0  # and the next start works
    assert host.running()["g1"]["jail"] == "hivectl-g1"
    assert hivectl("stop", "g1").status == 0


def test_a_ruleset_taken_since_the_plan_is_not_shared(host: Any) -> None:
    make_guest(host, "g1", jail="auto")
    planned = hivectl("start", "--dry-run", "g1").out
    assert '"devfs_ruleset=64000"' in planned
    # the administrator defines ruleset 64000 after the plan was made: the start takes the next free one
    assert host.call(["devfs", "rule", "-s", "64000", "add", "hide"]).returncode == 0
    assert '"devfs_ruleset=64001"' in hivectl("start", "--dry-run", "g1").out
    assert hivectl("start", "g1").status == 0
    assert host.jails()["hivectl-g1"]["devfs"]["ruleset"] == 64001
    assert hivectl("stop", "g1").status == 0
    wait_for(lambda: host.jails() == {}, what="the jail removed")
    assert rulesets(host) == ["64000"], "the administrator's ruleset is left alone"


def test_an_administrators_jail_is_used_only_with_allow_vmm(host: Any, tmp_path: Path) -> None:
    make_guest(host, "g1", jail="vmjail")
    missing = hivectl("start", "g1")
    assert missing.status == 1 and "jail=vmjail: no such jail is running (jls -j vmjail)" in missing.err
    root = tmp_path / "vmjail"
    (root / "dev").mkdir(parents=True)
    assert host.call(["jail", "-c", "name=vmjail", f"path={root}", "persist", "mount.devfs",
                      "devfs_ruleset=0"]).returncode == 0
    novmm = hivectl("start", "g1")
    assert novmm.status == 1 and "jail=vmjail does not have allow.vmm" in novmm.err
    assert host.call(["jail", "-r", "vmjail"]).returncode == 0
    assert host.call(["jail", "-c", "name=vmjail", f"path={root}", "persist", "allow.vmm", "mount.devfs",
                      "devfs_ruleset=0"]).returncode == 0
    result = hivectl("start", "g1")
    assert result.status == 0, result.err
    assert host.running()["g1"]["jail"] == "vmjail"
    assert hivectl("stop", "g1").status == 0
    wait_for(lambda: "g1" not in host.running(), what="g1 stopped")
    assert "vmjail" in host.jails(), "the administrator's jail is not removed"


def test_jail_values_are_checked_at_the_edge(host: Any) -> None:
    guest = make_guest(host, "g1", jail="12")
    result = hivectl("start", "g1")
    assert result.status != 0 and f"{guest / 'g1.conf'}" in result.err and "jail" in result.err
