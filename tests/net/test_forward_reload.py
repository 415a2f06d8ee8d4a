"""``switch forward add/remove`` on the simulated FreeBSD host: the pf reload comes after the config edit
and is made from the file as edited, so a refused edit or a failed load leaves nothing half-applied.

The assertions are on what the simulated host recorded (the commands run, the anchors pfctl loaded) and on
the files (``system.conf`` and the anchor's rule file), byte for byte.
"""

from __future__ import annotations

import pytest

from hivectl.context import Context
from hivectl.errors import Conflict, HivectlError
from hivectl.net.ops import SwitchOps
from hivectl.rcfile import read_values
from tests.net.conftest import FreeBSD, cli

NAT = ["nat on em0 inet from 10.77.0.0/24 to ! 10.77.0.0/24 -> (em0)"]
RDR_8080 = "rdr pass on em0 inet proto tcp from any to (em0) port 8080 -> 10.77.0.50 port 80"


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.status == 0, f"hivectl {' '.join(args)}: {result.err}"
    return result.out


def anchor(freebsd: FreeBSD) -> dict[str, list[str]]:
    return freebsd.sim.state()["pf"]["anchors"]["hivectl/natsw"]  # type: ignore[no-any-return]


@pytest.fixture
def natsw(freebsd: FreeBSD) -> FreeBSD:
    ok("switch", "create", "--nat", "-a", "10.77.0.1/24", "natsw")
    ok("switch", "forward", "add", "natsw", "tcp", "8080", "10.77.0.50:80")
    return freebsd


def test_the_reload_is_planned_after_the_config_edit(natsw: FreeBSD) -> None:
    lines = ok("switch", "forward", "add", "--dry-run", "natsw", "udp", "5353", "10.77.0.51:53").splitlines()
    assert [line.split('"')[1] for line in lines] == ["sysrc", "tee", "pfctl"], lines


def test_a_forward_refused_under_the_lock_loads_nothing_and_keeps_the_nat(natsw: FreeBSD) -> None:
    """Two ``forward add`` of one port at once: the one whose locked edit is refused must not touch pf.
    Before the fix its reload ran first (loading its own rules), and the undo after the refusal flushed
    the whole anchor: the switch lost its NAT and the other command's forward."""
    rules = natsw.vm_dir / ".config" / "pf-natsw.conf"
    ctx = Context()
    plan = SwitchOps(ctx.store, ctx.host).plan_forward_add("natsw", "tcp", "2222", "10.77.0.60:22")
    ok("switch", "forward", "add", "natsw", "tcp", "2222", "10.77.0.61:22")  # lands first
    conf_before, rules_before, anchor_before = natsw.system_conf.read_text(), rules.read_text(), anchor(natsw)
    natsw.sim.clear_commands()
    with pytest.raises(Conflict, match="already forwarded"):
        plan.apply(ctx.host)
    assert natsw.system_conf.read_text() == conf_before
    assert rules.read_text() == rules_before
    assert anchor(natsw) == anchor_before and anchor(natsw)["nat"] == NAT
    assert [argv for argv in natsw.sim.commands() if argv[0] == "pfctl"] == []


def test_a_failed_load_leaves_the_config_and_the_rule_file_as_they_were(natsw: FreeBSD) -> None:
    """pfctl fails (pf.ko unloaded: every pfctl command fails as on FreeBSD): ``forward add`` exits 1 with
    system.conf and the anchor's rule file unchanged. Before the fix the rule file already held the new
    forward (its WriteFile replaced an existing file, which its undo does not restore)."""
    rules = natsw.vm_dir / ".config" / "pf-natsw.conf"
    conf_before, rules_before = natsw.system_conf.read_text(), rules.read_text()
    natsw.sim.unload_module("pf")
    result = cli("switch", "forward", "add", "natsw", "udp", "5353", "10.77.0.51:53")
    assert result.status == 1 and result.err.count("\n") == 1, result.err
    assert natsw.system_conf.read_text() == conf_before
    assert rules.read_text() == rules_before
    result = cli("switch", "forward", "remove", "natsw", "tcp", "8080")
    assert result.status == 1
    assert natsw.system_conf.read_text() == conf_before and rules.read_text() == rules_before


def test_a_plan_made_before_another_forward_loads_both(natsw: FreeBSD) -> None:
    """The rules are computed from system.conf under its lock when applied, not from the switch as it was
    at plan time: a forward added between this plan and its application stays loaded."""
    ctx = Context()
    plan = SwitchOps(ctx.store, ctx.host).plan_forward_add("natsw", "udp", "5353", "10.77.0.51:53")
    ok("switch", "forward", "add", "natsw", "tcp", "2222", "10.77.0.61:22")
    plan.apply(ctx.host)
    assert read_values(natsw.system_conf)["forward_natsw"].split() == [
        "tcp:8080:10.77.0.50:80", "tcp:2222:10.77.0.61:22", "udp:5353:10.77.0.51:53"]
    assert anchor(natsw)["rdr"] == [
        RDR_8080,
        "rdr pass on em0 inet proto tcp from any to (em0) port 2222 -> 10.77.0.61 port 22",
        "rdr pass on em0 inet proto udp from any to (em0) port 5353 -> 10.77.0.51 port 53"]
    with pytest.raises(HivectlError):
        SwitchOps(ctx.store, ctx.host).plan_forward_add("natsw", "udp", "5353", "10.77.0.52:53")
