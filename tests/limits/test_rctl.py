"""limit_* as rctl(8) rules on the bhyve process, on the simulated FreeBSD host (its rctl keeps the kernel's
rule database: tests/simhost/rctl.py), and the rctl stand-in's own strictness."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from hivectl.host import identity
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, wait_for

LIMITS = {"limit_pcpu": "50", "limit_rbps": "10M", "limit_wbps": "1G", "limit_riops": "1000",
          "limit_wiops": "500", "limit_memory": "2G"}


def expected(pid: int) -> list[str]:
    return [f"process:{pid}:pcpu:deny=50", f"process:{pid}:readbps:throttle={10 << 20}",
            f"process:{pid}:writebps:throttle={1 << 30}", f"process:{pid}:readiops:throttle=1000",
            f"process:{pid}:writeiops:throttle=500", f"process:{pid}:vmemoryuse:deny={2 << 30}"]


def test_limits_are_rctl_rules_on_each_boots_bhyve_and_go_with_it(host: Any) -> None:
    make_guest(host, **LIMITS)
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    assert wait_for(lambda: sorted(host.rctl_rules()) == sorted(expected(pid)), what="rules"), host.rctl_rules()
    info = hivectl("info", "g1")
    assert info.status == 0 and f"process:{pid}:pcpu:deny=50" in info.out and "cputime" in info.out, info.out
    host.exit_guest("g1", 0)  # a reboot: a new bhyve, the old one's rules gone with it
    new = wait_for(lambda: (p := bhyve_pid(host, "g1")) != pid and p)
    wait_for(lambda: sorted(host.rctl_rules()) == sorted(expected(new)), what="the new bhyve's rules")
    assert hivectl("stop", "g1").status == 0
    assert state_of("g1")["state"] == "Stopped" and host.rctl_rules() == []


def test_a_stale_run_with_a_live_bhyve_has_its_rules_removed_before_the_vm_goes(host: Any) -> None:
    """Tear-down of a run whose supervisor died (runner/stale.teardown), with its bhyve still alive: the
    rules go by ``rctl -r`` before ``bhyvectl --destroy`` ends bhyve, not only with the process."""
    from hivectl.context import Context
    from hivectl.drivers import get_driver
    from hivectl.runner import stale

    guest = make_guest(host, limit_pcpu="25")
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    wait_for(lambda: host.rctl_rules() == [f"process:{pid}:pcpu:deny=25"], what="rule")
    supervisor = json.loads((guest / "hivectl.state").read_text())["supervisor"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: identity.identify(supervisor) is None, what="the supervisor's death")
    host.clear_commands()
    ctx = Context()
    ref = ctx.store.get("g1")
    stale.teardown(ctx.host, get_driver(ctx.driver, ctx.host, ctx.store), ref, stale.recorded_teardown(guest))
    commands = host.commands()
    assert ["rctl", "-r", f"process:{pid}"] in commands
    assert commands.index(["rctl", "-r", f"process:{pid}"]) < commands.index(["bhyvectl", "--vm=g1", "--destroy"])
    assert host.rctl_rules() == []
    assert hivectl("poweroff", "-f", "g1").status in (0, 1)


def test_the_racct_host_check_and_vm_disable_host_checks(host: Any) -> None:
    make_guest(host, limit_pcpu="50", limit_rbps="10M")
    host.set_sysctl("kern.racct.enable", "0")
    result = hivectl("start", "g1")
    assert result.status == 1 and "limit_pcpu=50, limit_rbps=10M needs rctl" in result.err, result.err
    assert "kern.racct.enable is not 1" in result.err and len(result.err.strip().splitlines()) == 1
    assert not host.vm_exists("g1")
    host.rc.write_text('vm_disable_host_checks="yes"\n')
    assert hivectl("start", "g1").status == 0, "the guest runs, without its limits, as vm-bhyve's would"
    wait_for(lambda: bhyve_pid(host, "g1"))
    log = wait_for(lambda: "limit not applied" in (text := (host.vm_dir / "g1" / "vm-bhyve.log").read_text())
                   and text)
    assert "RACCT/RCTL present, but disabled" in log
    assert hivectl("stop", "g1").status == 0


def test_a_bad_limit_is_refused_naming_file_key_and_value(host: Any) -> None:
    guest = make_guest(host, limit_rbps="10 MB")
    result = hivectl("start", "g1")
    assert result.status != 0 and "limit_rbps" in result.err and "10 MB" in result.err
    assert str(guest / "g1.conf") in result.err and not host.vm_exists("g1")


def test_rctl_stand_in_is_as_strict_as_rctl(host: Any) -> None:
    pid = os.getpid()
    run = host.run
    ok = run(["rctl", "-a", f"process:{pid}:pcpu:deny=10", f"process:{pid}:readbps:throttle=1k"])
    assert ok.returncode == 0, ok.stderr
    assert run(["rctl"]).stdout.splitlines() == [f"process:{pid}:pcpu:deny=10", f"process:{pid}:readbps:throttle=1024"]
    assert run(["rctl", "-l", f"process:{pid}"]).returncode == 0
    cases = {f"process:{pid}:readbps:deny=10": "Operation not supported",
             f"process:{pid}:memoryuse:throttle=10": "Operation not supported",
             f"process:{pid}:nosuch:deny=10": "Invalid argument",
             f"process:{pid}:pcpu:deny": "Invalid argument",
             f"process:{pid}:pcpu:deny=ten": "Invalid argument",
             "planet:1:pcpu:deny=10": "Invalid argument",
             "process:999999999:pcpu:deny=10": "No such process"}
    for rule, why in cases.items():
        bad = run(["rctl", "-a", rule])
        assert (bad.returncode, bad.stderr) == (1, f"rctl: failed to add rule '{rule}': {why}\n"), rule
    usage = run(["rctl", "-u", f"process:{pid}"])
    assert usage.returncode == 0 and "cputime=" in usage.stdout and "writeiops=0" in usage.stdout
    assert run(["rctl", "-r", f"process:{pid}:pcpu"]).returncode == 0
    assert run(["rctl"]).stdout.splitlines() == [f"process:{pid}:readbps:throttle=1024"]
    gone = run(["rctl", "-r", f"process:{pid}:pcpu"])
    assert (gone.returncode, gone.stderr) == (1, f"rctl: failed to remove rules for 'process:{pid}:pcpu': No such "
                                                 "process\n")
    assert run(["rctl", "-a", "-r", "x"]).returncode == 1
    host.set_sysctl("kern.racct.enable", "0")
    off = run(["rctl", "-a", f"process:{pid}:pcpu:deny=10"])
    assert (off.returncode, off.stderr) == (1, "rctl: RACCT/RCTL present, but disabled; enable using "
                                               "kern.racct.enable=1 tunable\n")
    host.set_sysctl("kern.racct.enable", "1")
    child = host.start(["sleep", "30"])
    assert run(["rctl", "-a", f"process:{child.pid}:pcpu:deny=5"]).returncode == 0
    child.kill()
    child.wait()
    assert f"process:{child.pid}:pcpu:deny=5" not in host.rctl_rules(), "a dead process's rules vanish"
