"""``hivectl tenant``: its plan on the simulated FreeBSD host, its checks, and its sudo/doas rules.

Creating and destroying a tenant for real (dataset, switch, rctl rule, grants in the host's state) is in
test_tenant_apply.py; the rules through a real sudo with a real user in test_sudo.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hivectl.errors import ConfigError
from hivectl.ops import tenants
from tests.cli_helpers import hivectl, tree
from tests.simhost.common import COMMANDS_FILE
from tests.test_store_zfs_simhost import zhost  # noqa: F401  (fixture)

CREATE = ["tenant", "create", "--datastore", "zfs:zroot/t1", "--vlan", "400", "--memory", "16G",
          "--user", "nobody", "--group", "nogroup", "--interface", "em0"]


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """The host's files but two append-only records that grow with every command, refused ones too: the
    simulated host's log of the commands it was asked, and hivectl's audit and event logs (.jsonl)."""
    return {k: v for k, v in tree(root).items() if not k.endswith((COMMANDS_FILE, ".jsonl"))}


def test_the_dry_run_is_the_whole_plan_and_changes_nothing(zhost: Any) -> None:  # noqa: F811
    zhost.add_interface("em0")
    before = (_files(zhost.root), json.dumps(zhost.state(), sort_keys=True, default=str))
    planned = hivectl(*CREATE, "--dry-run", "t1")
    assert planned.status == 0, planned.err
    steps = [json.loads(line) for line in planned.out.splitlines()]
    assert ["zfs", "create", "zroot/t1"] in steps
    assert any(s[:2] == ["sysrc", "-f"] and "datastore_list+=t1" in s and "path_t1=zfs:zroot/t1" in s for s in steps)
    assert any(s[:2] == ["ifconfig", "vlan"] and "em0" in s and "400" in s for s in steps)
    assert any(s[:2] == ["sysrc", "-f"] and "vlan_t1=400" in s for s in steps)
    assert ["rctl", "-a", f"user:nobody:vmemoryuse:deny={16 << 30}"] in steps
    assert ["hivectl", "acl", "grant", "operator", "/datastores/t1", "nobody"] in steps
    assert ["hivectl", "acl", "grant", "operator", "/datastores/t1", "@nogroup"] in steps
    assert (_files(zhost.root), json.dumps(zhost.state(), sort_keys=True, default=str)) == before


def test_without_a_user_the_limit_is_on_the_login_class(zhost: Any) -> None:  # noqa: F811
    planned = hivectl("tenant", "create", "--datastore", "zfs:zroot/t2", "--vlan", "401", "--memory", "8G",
                      "--group", "nogroup", "--dry-run", "t2")
    assert planned.status == 0, planned.err
    steps = [json.loads(line) for line in planned.out.splitlines()]
    assert ["rctl", "-a", f"loginclass:t2:vmemoryuse:deny={8 << 30}"] in steps
    assert not any("nobody" in s for s in steps)


BAD = [(["--vlan", "0"], "--vlan='0'"), (["--vlan", "4095"], "--vlan='4095'"),
       (["--memory", "lots"], "--memory='lots'"), (["--user", "no-such-user-zz"], "no such user"),
       (["--group", "no-such-group-zz"], "no such group"), (["--user", "a:b"], "--user='a:b'"),
       (["--datastore", "relative/dir"], "--datastore='relative/dir'"),
       (["--datastore", "zfs:zroot/vm"], "exists already"),
       (["--interface", "em0;reboot"], "em0;reboot")]


def test_each_bad_value_is_refused_with_its_option_and_nothing_made(zhost: Any) -> None:  # noqa: F811
    before = _files(zhost.root)
    for (option, value), message in BAD:
        argv = list(CREATE)
        argv[argv.index(option) + 1] = value
        refused = hivectl(*argv, "t1")
        assert refused.status != 0 and refused.err.count("\n") == 1, refused.err
        assert message in refused.err, (option, value, refused.err)
    for name in ("t-1", "a.b", "averylongtenant", "default"):
        refused = hivectl(*CREATE, name)
        assert refused.status != 0 and ("tenant name" in refused.err or "already exists" in refused.err), refused.err
    assert _files(zhost.root) == before


def test_rules_allow_exactly_the_operator_commands_of_each_guest() -> None:
    tenant = tenants.Tenant("t1", {"user": "alice", "group": "t1"})
    sudo = tenants.rules_text(tenant, ["web", "db"], "sudo", "/usr/local/bin/hivectl")
    assert "Cmnd_Alias HIVECTL_T1 = /usr/local/bin/hivectl start web," in sudo
    commands = [c.strip(" ,\\") for c in sudo.split("=", 1)[1].split("\n")[0:9]]
    assert "/usr/local/bin/hivectl snapshot db" in sudo and "destroy" not in sudo
    assert "%t1 ALL = (root) NOPASSWD: HIVECTL_T1" in sudo and "alice ALL = (root) NOPASSWD: HIVECTL_T1" in sudo
    assert len([c for c in commands if c.startswith("/usr/local/bin/hivectl")]) == 8
    doas = tenants.rules_text(tenant, ["web"], "doas", "/usr/local/bin/hivectl").splitlines()
    permits = [line for line in doas if line.startswith("permit")]
    assert permits == [f"permit nopass {who} as root cmd /usr/local/bin/hivectl args {verb} web"
                       for who in ("alice", ":t1") for verb in ("start", "stop", "console", "snapshot")]
    empty = tenants.rules_text(tenant, [], "sudo", "/usr/local/bin/hivectl")
    assert all(line.startswith("#") for line in empty.splitlines())
    with pytest.raises(ConfigError, match="--command"):
        tenants.rules_text(tenant, ["web"], "sudo", "hivectl start web, ALL")


@pytest.mark.skipif(shutil.which("visudo") is None, reason="the sudo package is not installed (scripts/setup)")
def test_install_checks_with_visudo_and_replaces_atomically(tmp_path: Path) -> None:
    from hivectl.host.local import LocalHost

    target = tmp_path / "hivectl-t1"
    tenant = tenants.Tenant("t1", {"group": "nogroup"})
    good = tenants.rules_text(tenant, ["web"], "sudo", "/usr/local/bin/hivectl")
    tenants.install_rules(LocalHost(), target, good, "sudo")
    assert target.read_text() == good and target.stat().st_mode & 0o777 == 0o440
    with pytest.raises(ConfigError, match="visudo refuses"):
        tenants.install_rules(LocalHost(), target, "%nogroup ALL = (root NOPASSWD: ALL\n", "sudo")
    assert target.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hivectl-t1"]  # no temporary file left


def test_doas_blocks_are_replaced_in_place_and_the_rest_kept() -> None:
    current = "permit :wheel\n"
    once = tenants.merged_doas(current, "t1", "permit nopass :t1 as root cmd /x args start a\n")
    twice = tenants.merged_doas(once, "t1", "permit nopass :t1 as root cmd /x args start b\n")
    assert twice.startswith("permit :wheel\n# BEGIN hivectl tenant t1\n")
    assert "args start b" in twice and "args start a" not in twice and twice.count("BEGIN") == 1
    other = tenants.merged_doas(twice, "t2", "permit nopass :t2 as root cmd /x args stop c\n")
    assert "args start b" in other and "args stop c" in other
