"""Suspend and resume of a real tiny guest under QEMU, through the real CLI (issue 13, item 4).

What the guest itself says decides: its uptime (``/proc/uptime``) after the resume is at least what it
was before the suspend, its boot id (``/proc/sys/kernel/random/boot_id``, new at every kernel boot) is
unchanged, and no second ready line appeared on its console (it did not boot again).
"""

from __future__ import annotations

import re
import time

from hivectl.rcfile import RcFile
from tests.e2e import conftest as e2e_env
from tests.e2e.conftest import READY, Env, qemu_processes

artifacts = e2e_env.artifacts  # the e2e fixtures (a real vm_dir, switch and netns), used here by name
e2e_fixture = e2e_env.e2e

PROBE = "echo PROBE-$((40+2)) up=$(cut -d' ' -f1 /proc/uptime) boot=$(cat /proc/sys/kernel/random/boot_id)\n"
ANSWER = re.compile(r"PROBE-42 up=([0-9.]+) boot=(\S*)")


def _probe(e2e: Env, name: str) -> tuple[float, str]:
    mark = len(e2e.console_log(name))
    e2e.ok("console", name, input_text=PROBE)
    found = e2e.wait_console(name, ANSWER, after=mark, timeout=30)
    return float(found.group(1)), found.group(2)


def test_suspend_and_resume_keep_the_guest_running_where_it_was(e2e_fixture: Env) -> None:
    e2e = e2e_fixture
    e2e.ok("create", "-t", "tiny-direct", "s1")
    e2e.ok("start", "s1")
    e2e.wait_console("s1", READY, timeout=120)
    up_before, boot_before = _probe(e2e, "s1")
    assert boot_before, "the guest has a boot id to compare"

    plan = e2e.ok("suspend", "--dry-run", "s1").out
    assert '"migrate", "uri=fd:hivectl-save"' in plan, plan
    e2e.ok("suspend", "s1")
    guest = e2e.vm_dir / "s1"
    assert e2e.state("s1")["state"] == "Suspended"
    assert qemu_processes(e2e.vm_dir) == [], "QEMU ended after the save"
    assert (guest / "s1.save").stat().st_size > 1 << 20, "the guest's memory is in the save"
    assert (guest / "s1.save.hivectl").is_file() and not (guest / "s1.save.partial").exists()
    assert not [link for link in e2e.links() if link.startswith("hv")], "taps removed as after a stop"
    time.sleep(2)  # time passes while it is suspended; its uptime must not count it as a reboot would

    readies = len(READY.findall(e2e.console_log("s1")))
    plan = e2e.ok("resume", "--dry-run", "s1").out.splitlines()
    assert plan[-1].endswith('"-incoming", "defer"]'), plan[-1]
    e2e.ok("resume", "s1")
    assert e2e.state("s1")["state"].startswith("Running (")
    up_after, boot_after = _probe(e2e, "s1")
    assert boot_after == boot_before, "the same kernel runs on: it did not boot again"
    assert up_after >= up_before, (up_before, up_after)
    assert len(READY.findall(e2e.console_log("s1"))) == readies, "no second boot on the console"
    assert not (guest / "s1.save").exists(), "the save is consumed by the resume"

    # A stale save is refused: a config change after the suspend.
    e2e.ok("suspend", "s1")
    conf = RcFile.load(guest / "s1.conf")
    conf.set("memory", "192M")
    conf.save()
    refused = e2e.hivectl("start", "s1")
    assert refused.status == 1 and "the config changed since the save: memory" in refused.err, refused.err
    assert e2e.state("s1")["state"] == "Suspended" and qemu_processes(e2e.vm_dir) == []
    mark = len(e2e.console_log("s1"))
    e2e.ok("start", "--discard-save", "s1")
    e2e.wait_console("s1", READY, after=mark, timeout=120)
    assert _probe(e2e, "s1")[1] != boot_before, "booted afresh after the discard"
    assert [p.name for p in guest.iterdir() if p.name.startswith("s1.save.discarded-")]
    e2e.ok("stop", "--timeout", "30", "s1")
