"""Failures at start give one clear error and leave no stray process, tap or lock (issue: QEMU driver).

Each case breaks one thing for real (QEMU missing from PATH, firmware missing, a tap another process holds,
a VNC port already taken) and checks the host afterwards: no QEMU process, no tap, no lock, guest Stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Env, qemu_processes

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def assert_clean(e2e: Env, name: str) -> None:
    assert e2e.state(name)["state"] == "Stopped"
    assert not (e2e.vm_dir / name / "run.lock").exists(), "no lock left behind"
    assert qemu_processes(e2e.vm_dir) == [], "no stray QEMU"
    assert not [link for link in e2e.links() if link.startswith("hv")], "no tap left behind"


def one_line_error(result: object) -> str:
    err = getattr(result, "err", "")
    assert getattr(result, "status", 0) == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hivectl: "), err
    return lines[0]


@pytest.fixture
def path_without_qemu(tmp_path: Path) -> Iterator[str]:
    """A PATH with every tool of this machine except qemu-system-*."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in [*os.environ["PATH"].split(":"), "/usr/sbin", "/sbin"]:
        if not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            target = bin_dir / entry
            if entry.startswith("qemu-system") or target.exists():
                continue
            target.symlink_to(os.path.join(directory, entry))
    yield str(bin_dir)


def test_qemu_missing(e2e: Env, path_without_qemu: str) -> None:
    e2e.ok("create", "-t", "tiny-direct", "f1")
    e2e.env["PATH"] = path_without_qemu
    line = one_line_error(e2e.hivectl("start", "f1"))
    assert "qemu-system-x86_64 is not installed" in line
    assert_clean(e2e, "f1")


def test_firmware_missing(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny", "f2")
    conf = e2e.vm_dir / "f2" / "f2.conf"
    conf.write_text(conf.read_text().replace('loader="grub"', 'loader="uefi-custom"'))
    line = one_line_error(e2e.hivectl("start", "f2"))
    assert "BHYVE_UEFI.fd is missing" in line
    assert_clean(e2e, "f2")


def test_tap_in_use(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny-direct", "f3")
    conf = e2e.vm_dir / "f3" / "f3.conf"
    conf.write_text(conf.read_text().replace('network0_switch="lan"', 'network0_device="busytap"'))
    assert e2e.netns_run("ip", "tuntap", "add", "dev", "busytap", "mode", "tap").returncode == 0
    holder = subprocess.Popen(["ip", "netns", "exec", e2e.netns, sys.executable, "-c", HOLD_TAP, "busytap"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        line = one_line_error(e2e.hivectl("start", "f3"))
        assert "busytap" in line or "busy" in line.lower(), line
        assert e2e.state("f3")["state"] == "Stopped"
        assert qemu_processes(e2e.vm_dir) == [] and not (e2e.vm_dir / "f3" / "run.lock").exists()
        assert "busytap" in e2e.links(), "an interface hivectl did not create is never removed"
    finally:
        holder.kill()
        holder.wait()


HOLD_TAP = f"""
import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, {TUNSETIFF:#x}, struct.pack("16sH", sys.argv[1].encode(), {IFF_TAP | IFF_NO_PI:#x}))
print("holding", flush=True)
time.sleep(600)
"""


def test_vnc_port_taken(e2e: Env) -> None:
    e2e.ok("create", "-t", "tiny-direct", "f4")
    conf = e2e.vm_dir / "f4" / "f4.conf"
    conf.write_text(conf.read_text() + 'graphics="yes"\ngraphics_port="5977"\n')
    holder = subprocess.Popen(["ip", "netns", "exec", e2e.netns, sys.executable, "-c", HOLD_PORT, "5977"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "listening"
        line = one_line_error(e2e.hivectl("start", "f4"))
        assert "5977" in line or "in use" in line.lower(), line
        assert_clean(e2e, "f4")
    finally:
        holder.kill()
        holder.wait()


HOLD_PORT = """
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
time.sleep(600)
"""
