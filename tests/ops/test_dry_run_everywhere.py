"""``--dry-run`` on every command and subcommand that changes something: accepted, exit 0, nothing changed.

Loops over the CLI's command table (``hivectl.cli.registry``, descending into subcommands as
tests/test_api_coverage.py does) on a ZFS vm_dir on the simulated FreeBSD host (so snapshots, clones and
images are real), and compares the vm_dir tree, rc.conf and the simulated host's state (datasets,
interfaces, running guests) before and after each dry run. A mutating command missing from ``ARGV`` fails
the test, so a new command has to say how it is dry-run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hivectl.rcfile import RcFile
from tests.cli_helpers import hivectl, tree
from tests.net.conftest import NET_BIN
from tests.net.standins import kill_daemons
from tests.simhost.common import COMMANDS_FILE
from tests.test_api_coverage import command_paths
from tests.test_store_zfs_simhost import zhost  # noqa: F401  (fixture)

# Commands that only read (or attach a terminal) have nothing to dry-run.
READ_ONLY = {("list",), ("info",), ("get",), ("version",), ("passthru",), ("console",), ("template", "list"),
             ("template", "show"), ("datastore", "list"), ("disk", "list"), ("tags", "list"), ("tags", "find"),
             ("autostart", "list"), ("switch", "list"), ("switch", "info"), ("switch", "forward", "list"),
             ("image", "list"), ("iso",), ("img",), ("metrics",), ("token", "list"), ("acl", "list"), ("events",),
             ("audit",), ("retention", "explain"), ("tenant", "list"),
             ("remote", "list")}

# A tenant is made with an rctl rule on FreeBSD: the tenant cases that need one wait for the stand-in.
RCTL = importlib.util.find_spec("tests.simhost.rctl") is not None

ARGV: dict[tuple[str, ...], list[str]] = {
    ("init",): ["init"],
    ("set",): ["set", "console=tmux"],
    ("datastore", "add"): ["datastore", "add", "more", "{tmp}/more"],
    ("datastore", "iso"): ["datastore", "iso", "isos", "{tmp}/isos"],
    ("datastore", "img"): ["datastore", "img", "imgs", "{tmp}/imgs"],
    ("datastore", "remove"): ["datastore", "remove", "keep"],
    ("create",): ["create", "-t", "freebsd-zvol", "-s", "1G", "new"],
    ("configure",): ["configure", "web"],
    ("edit",): ["edit", "web"],
    ("rename",): ["rename", "web", "www"],
    ("destroy",): ["destroy", "web"],
    ("add",): ["add", "-d", "disk", "-s", "1G", "web"],
    ("import",): ["import", "--bhyve", "bhyve -c 1 -m 512M -s 0,hostbridge -s 4,ahci-cd,{tmp}/isos/install.iso "
                  "-l bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd handmade"],
    ("tags", "add"): ["tags", "add", "web", "eu"],
    ("tags", "remove"): ["tags", "remove", "web", "prod"],
    ("disk", "resize"): ["disk", "resize", "web", "disk0", "2G"],
    ("snapshot",): ["snapshot", "web@two"],
    ("rollback",): ["rollback", "-r", "web@one"],
    ("clone",): ["clone", "web@one", "copy"],
    ("migrate",): ["migrate", "web", "local:{tmp}/more"],
    ("iso",): ["iso", "http://example.invalid/install.iso"],
    ("img",): ["img", "http://example.invalid/cloud.img"],
    ("image", "create"): ["image", "create", "web"],
    ("image", "provision"): ["image", "provision", "{image}", "fromimage"],
    ("image", "destroy"): ["image", "destroy", "{image}"],
    ("backup",): ["backup", "--to", "{tmp}/backups", "web"],
    ("replicate",): ["replicate", "web", "local:zfs:zroot/dr", "--every", "15m", "--keep", "keep-last=2"],
    ("promote",): ["promote", "replica1", "--force"],
    ("restore",): ["restore", "{backup}", "restored"],
    ("start",): ["start", "web"],
    ("install",): ["install", "web", "{tmp}/isos/install.iso"],
    ("stop",): ["stop", "running"],
    ("restart",): ["restart", "running"],
    ("reset",): ["reset", "running"],
    ("poweroff",): ["poweroff", "running"],
    ("suspend",): ["suspend", "running"],
    ("resume",): ["resume", "asleep"],
    ("startall",): ["startall"],
    ("stopall",): ["stopall"],
    ("suspendall",): ["suspendall"],
    ("resumeall",): ["resumeall"],
    ("autostart", "add"): ["autostart", "add", "web"],
    ("autostart", "remove"): ["autostart", "remove", "keep"],
    ("switch", "create"): ["switch", "create", "-t", "standard", "lan"],
    ("switch", "destroy"): ["switch", "destroy", "public"],
    ("switch", "add"): ["switch", "add", "lan0", "em1"],
    ("switch", "remove"): ["switch", "remove", "public", "em0"],
    ("switch", "vlan"): ["switch", "vlan", "public", "10"],
    ("switch", "address"): ["switch", "address", "public", "10.9.0.1/24"],
    ("switch", "private"): ["switch", "private", "public", "on"],
    ("switch", "init"): ["switch", "init"],
    ("switch", "forward", "add"): ["switch", "forward", "add", "nat", "tcp", "8081", "10.8.0.5:80"],
    ("switch", "forward", "remove"): ["switch", "forward", "remove", "nat", "tcp", "8080"],
    ("token", "create"): ["token", "create", "--role", "viewer", "--path", "/guests/web"],
    ("token", "revoke"): ["token", "revoke", "{token}"],
    ("acl", "grant"): ["acl", "grant", "operator", "/guests/web", "@nogroup"],
    ("acl", "revoke"): ["acl", "revoke", "viewer", "/", "nobody"],
    ("tenant", "create"): ["tenant", "create", "--datastore", "zfs:zroot/t2", "--vlan", "43", "--memory", "1G",
                           "--group", "nogroup", "t2"],
    ("tenant", "destroy"): ["tenant", "destroy", "t1"],
    ("remote", "add"): ["remote", "add", "dr", "ssh://root@dr.example.net"],
    ("remote", "remove"): ["remote", "remove", "keep"],
    ("tenant", "rules"): ["tenant", "rules", "t1", "--sudo", "--install", "--file", "{tmp}/sudoers-t1"],
}


# What a lifecycle dry run must show (a prefix of one of its steps): an empty plan would pass the loop too.
LIFECYCLE_PLANS: dict[tuple[str, ...], list[list[str]]] = {
    ("stop",): [["kill", "-TERM"]], ("stopall",): [["kill", "-TERM"]], ("restart",): [["bhyve"]],
    ("reset",): [["bhyvectl", "--vm=running", "--force-reset"]],
    ("poweroff",): [["bhyvectl", "--vm=running", "--force-poweroff"]], ("startall",): [["bhyve"]],
    ("start",): [["bhyve"]],
    ("suspend",): [["bhyvectl", "--vm=running"]], ("resume",): [["bhyve"]],
    ("suspendall",): [["bhyvectl", "--vm=running"]], ("resumeall",): [["bhyve"]],
}


def _with_dry_run(argv: list[str]) -> list[str]:
    """``--dry-run`` after the operands (argparse takes options anywhere; the end suits every parser)."""
    return [*argv, "--dry-run"]


def _state(host: Any, rc: Path, tmp: Path) -> Any:
    data = host.state()
    # The simulated host's command record grows with every query a dry run makes; it is no host state.
    files = {k: v for k, v in tree(tmp).items() if not k.endswith(COMMANDS_FILE)}
    return (files, rc.read_text(), json.dumps({k: data.get(k) for k in ("datasets", "interfaces", "running")},
                                                  sort_keys=True, default=str))


def _ok(result: Any) -> None:
    assert result.status == 0, result.err


def test_dry_run_on_every_mutating_command(zhost: Any, tmp_path: Path,  # noqa: F811
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    mutating = [p for p in command_paths() if p not in READ_ONLY or p in (("iso",), ("img",))]
    if not RCTL:  # no tenant can be made on the simulated host without its rctl stand-in (limits helper)
        mutating = [p for p in mutating if p not in (("tenant", "destroy"), ("tenant", "rules"))]
    missing = [" ".join(p) for p in mutating if p not in ARGV]
    assert missing == [], "mutating commands without a dry-run case in ARGV"
    rc = Path(os.environ["HIVECTL_RC_CONF"])
    (tmp_path / "more").mkdir()
    (tmp_path / "isos").mkdir()
    (tmp_path / "imgs").mkdir()
    (tmp_path / "backups").mkdir()
    (tmp_path / "isos" / "install.iso").write_bytes(b"\0" * 2048)
    zhost.add_interface("em0", inet=["192.0.2.10"])
    zhost.add_interface("em1")
    monkeypatch.setenv("PATH", f"{NET_BIN}{os.pathsep}{os.environ['PATH']}")  # route, dnsmasq stand-ins
    for argv in (["create", "-t", "freebsd-zvol", "-s", "1G", "web"], ["create", "-s", "1G", "keep"],
                 ["tags", "add", "web", "prod"], ["autostart", "add", "keep"], ["snapshot", "web@one"],
                 ["switch", "create", "-i", "em0", "public"], ["switch", "create", "-a", "10.8.0.1/24", "--nat", "nat"],
                 ["datastore", "add", "keep", str(tmp_path / "more")], ["switch", "create", "lan0"],
                 ["switch", "forward", "add", "nat", "tcp", "8080", "10.8.0.5:80"],
                 ["acl", "grant", "viewer", "/", "nobody"], ["remote", "add", "keep", "ssh://keep.example"],
                 *([["tenant", "create", "--datastore", "zfs:zroot/t1", "--vlan", "42", "--memory", "1G", "t1"]]
                   if RCTL else [])):
        _ok(hivectl(*argv))
    image = hivectl("image", "create", "-u", "web")
    _ok(image)
    backup = hivectl("backup", "--to", str(tmp_path / "backups"), "web")
    _ok(backup)
    token = hivectl("token", "create", "--json")
    _ok(token)
    fill = {"{tmp}": str(tmp_path), "{image}": image.out.strip(), "{backup}": backup.out.strip(),
            "{token}": token.json()["id"]}
    # A running guest for the commands that act on one (stop, restart, reset, poweroff, stopall); keep, in
    # vm_list, stays stopped so that startall's dry run plans a start.
    _ok(hivectl("create", "-s", "1G", "running"))
    conf = RcFile.load(zhost.vm_root / "running" / "running.conf")
    conf.set("network0_switch", "lan0")  # not public, whose 'switch destroy' dry run must still plan
    conf.save()
    _ok(hivectl("start", "running"))
    # A replica for promote (docs/replication.md: the mark in .config/replicas; its source is elsewhere).
    _ok(hivectl("create", "-s", "1G", "replica1"))
    _ok(hivectl("snapshot", "replica1@one"))
    marks = zhost.vm_root / ".config" / "replicas"
    marks.mkdir()
    (marks / "replica1.json").write_text('{"guest": "replica1", "host": "elsewhere"}\n')
    # A suspended guest for resume (a save as vm-bhyve's suspend leaves it), on a snapshot build of bhyve.
    zhost.set_snapshot_build()
    _ok(hivectl("create", "-s", "1G", "asleep"))
    for suffix in ("", ".kern", ".meta"):
        (zhost.vm_root / "asleep" / f"asleep.save{suffix}").write_text("{}")
    try:
        failures = _dry_run_each(zhost, rc, tmp_path, mutating, fill)
    finally:
        hivectl("stop", "running")
        kill_daemons(zhost.root)  # the NAT switch's dnsmasq
    assert failures == []


def _dry_run_each(sim: Any, rc: Path, tmp_path: Path, mutating: list[tuple[str, ...]],
                  fill: dict[str, str]) -> list[str]:
    failures = []
    for path in mutating:
        argv = [fill.get(w, w) if w in fill else w.replace("{tmp}", str(tmp_path)) for w in ARGV[path]]
        argv = _with_dry_run(argv)
        before = _state(sim, rc, tmp_path)
        result = hivectl(*argv, env={"EDITOR": "true"})
        after = _state(sim, rc, tmp_path)
        ok = result.status == 0 and before == after
        if not ok:
            changed = [k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k)]
            changed += ["rc.conf"] if before[1] != after[1] else []
            changed += ["host state"] if before[2] != after[2] else []
            failures.append(f"{' '.join(argv)}: status {result.status}, changed={changed}: "
                            f"{result.err.strip()[-300:]}")
        if path in LIFECYCLE_PLANS:
            shown = [json.loads(line) for line in result.out.splitlines()]
            if not any(step[:len(want)] == want for step in shown for want in LIFECYCLE_PLANS[path]):
                failures.append(f"{' '.join(argv)}: none of {LIFECYCLE_PLANS[path]} in its plan {shown}")
    return failures


@pytest.mark.parametrize("argv", [["configure", "--dry-run", "web"]])
def test_configure_dry_run_prints_the_write(zhost: Any, argv: list[str], tmp_path: Path) -> None:  # noqa: F811
    _ok(hivectl("create", "-s", "1G", "web"))
    editor = tmp_path / "editor"
    editor.write_text('#!/bin/sh\nsed -i "s/^cpu=.*/cpu=\\"4\\"/" "$1"\n')
    editor.chmod(0o755)
    conf = zhost.vm_root / "web" / "web.conf"
    text = conf.read_text()
    result = hivectl(*argv, env={"EDITOR": str(editor)})
    _ok(result)
    assert json.loads(result.out.splitlines()[0])[-1] == str(conf)
    assert conf.read_text() == text
    _ok(hivectl("configure", "web", env={"EDITOR": str(editor)}))
    assert 'cpu="4"' in conf.read_text()
