"""A jailed guest's ``limit_*`` keys as rctl(8) rules on its jail (docs/jails.md, "Limits on the jail").

On the simulated FreeBSD host, whose rctl keeps a jail subject's rules after the jail is removed, as the
kernel does (tests/simhost/rctl.py): so a tear-down that forgets ``rctl -r jail:NAME`` leaves the rules
behind, and these tests see it. Checked: the dry run plans the jail's rules after ``jail -c`` and none on
the bhyve process; a start applies exactly them; ``info`` shows them with the jail's usage; stop, the stale
run of a supervisor killed with its bhyve, and an adopted run all remove them.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, state_of, wait_for

LIMITS = {"limit_pcpu": "50", "limit_wbps": "1G", "limit_memory": "2G"}
RULES = ["jail:hivectl-g1:pcpu:deny=50", f"jail:hivectl-g1:writebps:throttle={1 << 30}",
         f"jail:hivectl-g1:vmemoryuse:deny={2 << 30}"]


def test_the_dry_run_plans_the_rules_on_the_jail_not_on_the_process(host: Any) -> None:
    make_guest(host, "g1", jail="auto", **LIMITS)
    result = hivectl("start", "--dry-run", "g1")
    assert result.status == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines() if line.startswith("[")]
    made = next(n for n, line in enumerate(lines) if line[:2] == ["jail", "-c"])
    assert lines[made + 1:made + 4] == [["rctl", "-a", rule] for rule in RULES]
    assert lines[made + 4][:3] == ["jexec", "hivectl-g1", "bhyveload"]
    assert not [line for line in lines if line[:1] == ["rctl"] and "process:" in line[-1]], lines
    assert host.rctl_rules() == []


def test_a_jailed_guests_limits_are_its_jails_rules_and_stop_removes_them(host: Any) -> None:
    guest = make_guest(host, "g1", jail="auto", **LIMITS)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: "g1" in host.running(), what="bhyve running")
    assert sorted(host.rctl_rules()) == sorted(RULES)
    state = json.loads((guest / "hivectl.state").read_text())
    assert state["teardown"][:2] == [["jail", "-r", "hivectl-g1"], ["rctl", "-r", "jail:hivectl-g1"]]
    info = hivectl("info", "--json", "g1")
    assert info.status == 0, info.err
    in_force = json.loads(info.out)["limits"]["in_force"]
    assert sorted(v for k, v in in_force.items() if k.startswith("rule ")) == sorted(RULES), in_force
    assert "vmemoryuse" in in_force and int(in_force["vmemoryuse"]) > 0, "the jail's usage is its bhyve's"
    assert "limit applied: rctl -a jail:hivectl-g1:pcpu:deny=50" in (guest / "vm-bhyve.log").read_text()
    assert hivectl("stop", "g1").status == 0
    wait_for(lambda: host.jails() == {}, what="the jail removed")
    assert host.rctl_rules() == [], "the jail's rules outlived it"


def test_a_killed_supervisors_stale_run_and_an_adopted_run_remove_the_jails_rules(host: Any) -> None:
    guest = make_guest(host, "g1", jail="auto", limit_pcpu="25")
    assert hivectl("start", "g1").status == 0
    # 1. the supervisor and bhyve killed: the stale run is cleared by the next stop
    os.kill(json.loads((guest / "hivectl.state").read_text())["supervisor"], signal.SIGKILL)
    os.kill(int(host.running()["g1"]["pid"]), signal.SIGKILL)
    wait_for(lambda: "g1" not in host.running(), what="bhyve gone")
    assert host.rctl_rules() == ["jail:hivectl-g1:pcpu:deny=25"], "a jail's rules stay until removed"
    assert hivectl("stop", "g1").status == 0
    wait_for(lambda: host.jails() == {}, what="the jail removed")
    assert host.rctl_rules() == []
    # 2. only the supervisor killed: the next start adopts bhyve, and the adopter's clean-up removes them
    assert hivectl("start", "g1").status == 0
    supervisor = json.loads((guest / "hivectl.state").read_text())["supervisor"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{supervisor}"), what="the supervisor's death")
    adopted = hivectl("start", "g1")
    assert adopted.status == 0 and "adopted" in adopted.out + adopted.err, adopted.err
    assert host.rctl_rules() == ["jail:hivectl-g1:pcpu:deny=25"]
    assert hivectl("stop", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"] == "Stopped" and host.jails() == {}, what="stopped, jail removed")
    assert host.rctl_rules() == []


def test_the_rctl_stand_in_keeps_a_jails_rules_after_the_jail_and_refuses_long_names(host: Any) -> None:
    assert host.call(["rctl", "-a", "jail:later:pcpu:deny=10"]).returncode == 0, "a name no jail has yet"
    long = host.call(["rctl", "-a", f"jail:{'j' * 256}:pcpu:deny=10"])
    assert long.returncode == 1 and "File name too long" in long.stderr
    assert host.call(["rctl", "-u", "jail:later"]).stdout.startswith("cputime=0\n")
    assert host.call(["rctl", "-r", "jail:later"]).returncode == 0 and host.rctl_rules() == []
