"""A MAC is chosen when the plan is applied, under the host-wide MAC lock (``hivectl/ops/macs.py``).

Each test makes a plan, then lets "another command" take the MAC the plan had in mind before the plan is
applied — a published guest configured with it, or a ``create`` still building its guest under a staging
name — and checks the applied result uses another MAC. On the code that chose the MAC when planning
(outside any lock), the first two tests ended with two guests sharing one MAC.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hivectl.context import Context
from hivectl.errors import Conflict
from hivectl.ops.guests import CreateRequest, plan_add_network, plan_create
from hivectl.rcfile import RcFile, read_values
from tests.cli_helpers import hivectl


def macs_of(conf: Path) -> dict[str, str]:
    return {k: v for k, v in read_values(conf).items() if k.endswith("_mac")}


def planned_conf(plan: object) -> RcFile:
    for action in plan.actions:  # type: ignore[attr-defined]
        if hasattr(action, "conf"):
            return action.conf  # type: ignore[no-any-return]
        if getattr(action, "path", Path()).name.endswith(".conf") and hasattr(action, "content"):
            return RcFile(action.path, action.content)  # the plan-time write of the code before the MAC lock
    raise AssertionError("the create plan writes no config")


def take(vmdir: Path, guest: str, mac: str) -> None:
    """Guest ``guest`` (made with ``create``) now has ``mac`` on its first NIC."""
    conf = vmdir / guest / f"{guest}.conf"
    conf.write_text(conf.read_text().replace(read_values(conf)["network0_mac"], mac))


def test_create_chooses_again_when_its_mac_was_taken_after_the_plan(vmdir: Path) -> None:
    assert hivectl("create", "-s", "1M", "other").status == 0
    ctx = Context()
    plan, _ = plan_create(ctx.store, CreateRequest("web", size="1M"))
    mac = planned_conf(plan).values["network0_mac"]
    take(vmdir, "other", mac)
    plan.apply(ctx.host)
    mine = macs_of(vmdir / "web" / "web.conf")["network0_mac"]
    assert mine != mac and mine.startswith("58:9c:fc:0"), (mine, mac)


def test_add_network_does_not_take_the_mac_of_a_guest_being_created(vmdir: Path) -> None:
    """A ``create`` in progress has written its config in its staging directory (not listed, not yet a
    guest): a concurrent ``add -d network`` must see its MAC as taken."""
    assert hivectl("create", "-s", "1M", "web").status == 0
    ctx = Context()
    plan = plan_add_network(ctx.store, ctx.store.get("web"), "public")
    shown = " ".join(plan.argvs()[-1])
    mac = shown.split("network1_mac=")[1].split()[0]
    staging = vmdir / ".hivectl-staging-db-0a1b2c3d"
    staging.mkdir()
    (staging / "db.conf").write_text(f'loader="bhyveload"\nnetwork0_type="virtio-net"\nnetwork0_mac="{mac}"\n')
    plan.apply(ctx.host)
    mine = macs_of(vmdir / "web" / "web.conf")["network1_mac"]
    assert mine != mac and mine != macs_of(vmdir / "web" / "web.conf")["network0_mac"]


def test_a_cloud_init_create_whose_seed_names_a_taken_mac_refuses_and_leaves_nothing(vmdir: Path,
                                                                                    tmp_path: Path) -> None:
    """With -C the seed's network-config already names the MAC: choosing another would make the seed
    disagree with the NIC, so the create refuses (one line, nothing left) and a re-run succeeds."""
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9oTmFgWkzPn0g7r+Fq1o9o3H0k7Zt0cY1Q8xk5Yb5a test\n")
    assert hivectl("create", "-s", "1M", "other").status == 0
    ctx = Context()
    plan, _ = plan_create(ctx.store, CreateRequest("web", size="1M", cloud_init=True, keyfile=key))
    take(vmdir, "other", planned_conf(plan).values["network0_mac"])
    with pytest.raises(Conflict, match="taken by another guest meanwhile"):
        plan.apply(ctx.host)
    assert sorted(p.name for p in vmdir.iterdir() if not p.name.startswith(".") or "staging" in p.name) == ["other"]
    assert hivectl("create", "-s", "1M", "-C", "-k", str(key), "web").status == 0
