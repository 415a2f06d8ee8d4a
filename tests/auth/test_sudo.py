"""The sudo path with a real non-root user and the real sudo (Debian's package; scripts/setup installs it).

A tenant on the simulated FreeBSD host, a guest in its datastore and one outside it; ``hivectl tenant rules
--sudo --install`` writes the rules into /etc/sudoers.d (checked by visudo first), then a user made for
the test (useradd) runs ``sudo -n hivectl ...``. sudo's environment reset drops the test's variables, so
the command the rules name is a root-owned wrapper that sets the simulated host's environment and runs
this checkout's bin/hivectl. Then a deliberately too-wide rule shows hivectl's own check (defence in depth).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.rcfile import RcFile
from tests.cli_helpers import REPO, hivectl
from tests.test_store_zfs_simhost import zhost  # noqa: F401  (fixture)

# Applying a tenant on the simulated FreeBSD host runs rctl: this needs the simulated host's rctl stand-in
# (tests/simhost/rctl.py, the limits helper's), and runs by itself once it is on the tree.
pytest.importorskip("tests.simhost.rctl", reason="the simulated host's rctl stand-in has not landed yet")

pytestmark = pytest.mark.skipif(shutil.which("sudo") is None or os.geteuid() != 0,
                                reason="needs root and the sudo package (scripts/setup installs it)")


@pytest.fixture
def account() -> Iterator[tuple[str, str]]:
    """A fresh user in a fresh group, removed afterwards."""
    suffix = f"{os.getpid() % 100000}"
    user, group = f"hvu{suffix}", f"hvg{suffix}"
    subprocess.run(["groupadd", group], check=True)
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-G", group, user], check=True)
    try:
        yield user, group
    finally:
        subprocess.run(["userdel", user], check=False)
        subprocess.run(["groupdel", group], check=False)


def _wrapper(tmp: Path) -> Path:
    """A root-owned launcher with the simulated host's environment (sudo's env_reset drops the test's)."""
    keep = {k: v for k, v in os.environ.items() if k.startswith(("HIVECTL_", "SIMHOST_")) or k == "PATH"}
    lines = ["#!/bin/sh", *(f"export {k}={shlex.quote(v)}" for k, v in sorted(keep.items())),
             f'exec {shlex.quote(sys.executable)} -S {shlex.quote(str(REPO / "bin" / "hivectl"))} "$@"']
    path = tmp / "hivectl"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def _as(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sudo", "-n", *argv], user=user, cwd="/", env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_tenant_user_does_exactly_start_stop_console_snapshot_through_sudo(
        zhost: Any, account: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    user, group = account
    tenant = f"t{os.getpid() % 100000}"
    rules = Path(f"/etc/sudoers.d/hivectl-{tenant}")
    wide = Path(f"/etc/sudoers.d/hivectl-{tenant}-wide")
    wrapper = _wrapper(tmp_path)
    made = hivectl("tenant", "create", "--datastore", f"zfs:zroot/{tenant}", "--vlan", "410", "--memory", "4G",
                   "--group", group, tenant)
    assert made.status == 0, made.err
    assert hivectl("create", "-d", tenant, "-s", "1G", "web").status == 0
    conf = RcFile.load(zhost.root / "zroot" / tenant / "web" / "web.conf")
    conf.set("network0_switch", tenant)  # on the tenant's VLAN switch
    conf.save()
    assert hivectl("create", "-s", "1G", "db").status == 0
    try:
        # The simulated host is FreeBSD (/usr/local/etc/sudoers.d); the real sudo here reads /etc/sudoers.d.
        installed = hivectl("tenant", "rules", tenant, "--sudo", "--install", "--command", str(wrapper),
                            "--file", str(rules))
        assert installed.status == 0, installed.err
        assert rules.stat().st_mode & 0o777 == 0o440
        assert f"{wrapper} start web" in rules.read_text() and "db" not in rules.read_text()

        started = _as(user, str(wrapper), "start", "web")
        assert started.returncode == 0, started.stderr
        assert "web" in zhost.running()
        stopped = _as(user, str(wrapper), "stop", "web")
        assert stopped.returncode == 0, stopped.stderr
        assert "web" not in zhost.running()
        for argv in (["destroy", "web"], ["start", "db"], ["start", "-f", "web"], ["start", "web", "db"],
                     ["acl", "grant", "admin", "/", user]):
            refused = _as(user, str(wrapper), *argv)
            assert refused.returncode == 1 and "password is required" in refused.stderr, (argv, refused.stderr)

        # A rule written far too wide: sudo lets everything through, hivectl still refuses what is not granted.
        wide.write_text(f"%{group} ALL = (root) NOPASSWD: {wrapper}\n")
        wide.chmod(0o440)
        assert subprocess.run(["visudo", "-c", "-f", str(wide)], capture_output=True, check=False).returncode == 0
        for argv, message in ((["destroy", "web"], "needs the admin role on /"),
                              (["start", "db"], "needs the operator role on /guests/db"),
                              (["acl", "grant", "admin", "/", user], "needs the admin role on /")):
            refused = _as(user, str(wrapper), *argv)
            assert refused.returncode == 1 and message in refused.stderr, (argv, refused.stderr)
        assert conf.path.exists()
        assert "db" not in zhost.running()
        assert [g["subject"] for g in hivectl("acl", "list", "--json").json()] == [f"@{group}"]
    finally:
        rules.unlink(missing_ok=True)
        wide.unlink(missing_ok=True)
        hivectl("stop", "web")
