"""A tenant made and destroyed for real on the simulated FreeBSD host: dataset, VLAN switch, rctl rule, grants.

The host's state is what is checked (the simulated zfs, ifconfig and rctl keep it), and the grants are
used: the tenant's user, acting through sudo (``SUDO_UID``), may stop a guest of the tenant's datastore
and nothing else. Destroy is refused while the tenant has a guest and never deletes its dataset.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.test_store_zfs_simhost import zhost  # noqa: F401  (fixture)

# Applying a tenant on the simulated FreeBSD host runs rctl: this needs the simulated host's rctl stand-in
# (tests/simhost/rctl.py, the limits helper's), and runs by itself once it is on the tree.
pytest.importorskip("tests.simhost.rctl", reason="the simulated host's rctl stand-in has not landed yet")

CREATE = ["tenant", "create", "--datastore", "zfs:zroot/t1", "--vlan", "400", "--memory", "16G",
          "--user", "nobody", "--group", "nogroup", "--interface", "em0", "t1"]
NOBODY = {"SUDO_UID": "65534"}


def test_create_use_and_destroy_a_tenant(zhost: Any) -> None:  # noqa: F811
    zhost.add_interface("em0")
    made = hivectl(*CREATE)
    assert made.status == 0, made.err
    assert "zroot/t1" in zhost.datasets()
    assert {"em0.400", "vm-t1"} <= set(zhost.interfaces())
    assert f"user:nobody:vmemoryuse:deny={16 << 30}" in zhost.rctl_rules()
    assert {g["subject"] for g in hivectl("acl", "list", "--json").json()} == {"nobody", "@nogroup"}
    listed = hivectl("tenant", "list", "--json").json()
    assert [(t["name"], t["path"], t["vlan"], t["memory"]) for t in listed] == [("t1", "zfs:zroot/t1", "400", "16G")]
    assert [d["name"] for d in json.loads(hivectl("datastore", "list", "--json").out)][-1] == "t1"

    assert hivectl("create", "-d", "t1", "-s", "1G", "web").status == 0
    assert hivectl("create", "-s", "1G", "outside").status == 0
    assert "not running" in hivectl("stop", "web", env=NOBODY).err  # an operator of the tenant's guests
    assert "needs the operator role on /guests/outside" in hivectl("stop", "outside", env=NOBODY).err
    assert "needs the admin role on /" in hivectl("destroy", "web", env=NOBODY).err

    refused = hivectl("tenant", "destroy", "t1")
    assert refused.status == 1 and "still has guests" in refused.err and "web" in refused.err
    assert "zroot/t1" in zhost.datasets() and "vm-t1" in zhost.interfaces()
    assert hivectl("destroy", "-f", "web").status == 0
    gone = hivectl("tenant", "destroy", "t1")
    assert gone.status == 0, gone.err
    assert "is kept" in gone.err
    assert "zroot/t1" in zhost.datasets()  # the data is never deleted
    assert "vm-t1" not in zhost.interfaces() and "em0.400" not in zhost.interfaces()
    assert zhost.rctl_rules() == []
    assert hivectl("acl", "list", "--json").json() == [] and hivectl("tenant", "list", "--json").json() == []
    assert "t1" not in [d["name"] for d in json.loads(hivectl("datastore", "list", "--json").out)]


def test_a_failed_step_undoes_the_whole_tenant(zhost: Any) -> None:  # noqa: F811
    zhost.add_interface("em0")
    zhost.set_sysctl("kern.racct.enable", 0)  # rctl then fails, as on a GENERIC kernel without the tunable
    failed = hivectl(*CREATE)
    assert failed.status == 1 and "rctl" in failed.err
    assert "zroot/t1" not in zhost.datasets()
    assert "vm-t1" not in zhost.interfaces() and "em0.400" not in zhost.interfaces()
    assert hivectl("tenant", "list", "--json").json() == [] and hivectl("acl", "list", "--json").json() == []
    assert "t1" not in [d["name"] for d in json.loads(hivectl("datastore", "list", "--json").out)]
