"""The whole lifecycle of a real guest under QEMU, through the real CLI (issue: QEMU driver, part 3).

create → install from the ISO → start from the disk → ready line on the console → ping over a hivectl
switch → console input and output → ACPI stop within the timeout → clone boots with its own identity →
destroy leaves nothing behind. Plus a reboot inside the guest, a guest killed with SIGKILL, and a VNC
screenshot that is not blank.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from tests.e2e.conftest import READY, SUBNET, Env, qemu_processes
from tests.e2e.rfb import screenshot


def guest_ip(match: Any) -> str:
    return str(match.group(1)).split("/")[0]


def test_install_boot_ping_console_stop_clone_destroy(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny", "g1")
    assert (e2e.vm_dir / "g1" / "disk0.img").stat().st_blocks == 0, "a fresh, empty sparse disk"

    # Install from the ISO: the installer writes the disk and powers the guest off.
    e2e.ok("install", "g1", str(e2e.artifacts.installer_iso))
    e2e.wait_console("g1", r"HIVECTL-INSTALL-DONE disk=/dev/vda", timeout=120)
    e2e.wait_state("g1", lambda s: s == "Stopped", timeout=60)
    assert (e2e.vm_dir / "g1" / "disk0.img").stat().st_blocks > 0, "the installer wrote the disk"

    # Boot from the installed disk (the ISO is not attached any more).
    mark = len(e2e.console_log("g1"))
    e2e.ok("start", "g1")
    ready = e2e.wait_console("g1", READY, after=mark, timeout=120)
    assert ready.group(4) == "disk"
    mac = json.loads((e2e.ok("info", "--json", "g1")).out)["networks"][0]["mac"]
    assert ready.group(2) == mac, "the NIC has the MAC from the guest's config"
    ip = guest_ip(ready)
    assert ip.startswith(SUBNET + ".")
    state = e2e.state("g1")
    assert state["state"].startswith("Running (") and state["pid"] in qemu_processes(e2e.vm_dir)

    ping = e2e.netns_run("ping", "-c", "2", "-W", "3", ip)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    token = f"hello-{os.getpid()}"
    out = e2e.ok("console", "g1", input_text=f"echo {token}-$((6*7))\n").out
    assert f"{token}-42" in out, out[-500:]

    started = time.monotonic()
    e2e.ok("stop", "--timeout", "30", "g1")
    assert time.monotonic() - started < 30
    assert e2e.state("g1")["state"] == "Stopped"
    assert "HIVECTL-GUEST-SHUTDOWN reason=powerbutton" in e2e.console_log("g1")
    assert qemu_processes(e2e.vm_dir) == []
    assert not [link for link in e2e.links() if link.startswith("hv")], "taps removed"

    # Clone: a new guest with its own uuid and MAC that boots from the copied disk.
    e2e.ok("clone", "g1", "g2")
    info1, info2 = (json.loads(e2e.ok("info", "--json", n).out) for n in ("g1", "g2"))
    assert info1["uuid"] != info2["uuid"] or info2["uuid"] is None
    e2e.ok("start", "g2")
    ready2 = e2e.wait_console("g2", READY, timeout=120)
    assert ready2.group(4) == "disk" and ready2.group(2) != mac
    assert e2e.netns_run("ping", "-c", "1", "-W", "3", guest_ip(ready2)).returncode == 0
    e2e.ok("stop", "--timeout", "30", "g2")

    for name in ("g1", "g2"):
        e2e.ok("destroy", "-f", name)
        assert not (e2e.vm_dir / name).exists()
    assert e2e.ok("list", "--json").json() == []
    assert qemu_processes(e2e.vm_dir) == []


def test_reboot_inside_guest_is_handled_by_the_supervisor(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny-direct", "r1")
    e2e.ok("start", "r1")
    e2e.wait_console("r1", READY)
    first_pid = e2e.state("r1")["pid"]
    mark = len(e2e.console_log("r1"))
    e2e.ok("console", "r1", input_text="reboot\n")
    e2e.wait_console("r1", READY, after=mark, timeout=90)
    state = e2e.wait_state("r1", lambda s: s.startswith("Running ("))
    assert state != f"Running ({first_pid})", "a new QEMU process after the reboot"
    assert "(reboot); restarting" in (e2e.vm_dir / "r1" / "vm-bhyve.log").read_text()
    e2e.ok("stop", "--timeout", "30", "r1")


def test_guest_killed_with_sigkill_is_reported_as_crashed(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny-direct", "k1")
    e2e.ok("start", "k1")
    e2e.wait_console("k1", READY)
    pid = e2e.state("k1")["pid"]
    os.kill(pid, signal.SIGKILL)
    e2e.wait_state("k1", lambda s: s == "Stopped", timeout=30)
    last = json.loads((e2e.vm_dir / "k1" / "hivectl.last").read_text())
    assert last["outcome"] == "killed" and last["status"] == -9
    info = json.loads(e2e.ok("info", "--json", "k1").out)
    assert info["last_exit"]["outcome"] == "killed"
    assert info["driver"] == "qemu" and info["accelerator"] == "tcg", "info says which accelerator runs guests"
    assert not [link for link in e2e.links() if link.startswith("hv")]


def test_vnc_screenshot_is_not_blank(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny-direct", "v1")
    conf = e2e.vm_dir / "v1" / "v1.conf"
    conf.write_text(conf.read_text() + 'graphics="yes"\n')
    e2e.ok("start", "v1")
    e2e.wait_console("v1", READY)
    console = (e2e.vm_dir / "v1" / "console").read_text()
    vnc = [line.split("=", 1)[1] for line in console.splitlines() if line.startswith("vnc=")]
    assert vnc and vnc[0].startswith("unix:"), console
    width, height, pixels = screenshot(vnc[0][5:])
    assert width >= 640 and height >= 400
    assert len(set(pixels)) > 1, "the framebuffer shows something (the kernel's console text)"
    e2e.ok("stop", "--timeout", "30", "v1")


def test_adopted_guest_exit_is_classified_through_qmp(e2e: Env) -> None:
    """A QEMU whose supervisor was killed is adopted by the next ``start``, which reconnects to its QMP
    socket: the power-off that follows is classified from QEMU's SHUTDOWN event (host-qmp-quit), not
    recorded as "unknown" as it was while adoption only watched the pid."""
    e2e.ok("create", "-t", "tiny-direct", "a1")
    e2e.ok("start", "a1")
    e2e.wait_console("a1", READY)
    pid = e2e.state("a1")["pid"]
    lock = (e2e.vm_dir / "a1" / "run.lock").read_text()
    supervisor = int(lock.split("pid=")[1].split()[0])
    os.kill(supervisor, signal.SIGKILL)
    time.sleep(0.5)
    assert "adopted" in e2e.ok("start", "a1").out
    time.sleep(1.0)  # the adopter's watcher connects to qmp.sock in the background
    e2e.ok("poweroff", "-f", "a1")
    e2e.wait_state("a1", lambda s: s == "Stopped", timeout=30)
    last = json.loads((e2e.vm_dir / "a1" / "hivectl.last").read_text())
    assert last["adopted"] is True and last["outcome"] == "poweroff", last
    assert pid not in qemu_processes(e2e.vm_dir)
