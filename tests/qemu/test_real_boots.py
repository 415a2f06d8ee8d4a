"""Real boots of the rendered command lines under QEMU (TCG) with the tiny guest.

Each test starts QEMU exactly as planned by the driver, holds the QMP watcher as the supervisor does, and
checks what the guest itself reports on its serial console (``HIVECTL-GUEST-READY ...``) and how
``classify`` reads the exit. Boots run one after another: a TCG guest keeps a core busy while booting.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivectl.drivers.base import Outcome
from hivectl.net.ports import Port
from hivectl.plan import Plan
from hivectl.store import GuestRef
from tests.qemu.guests import QCOW2, Scratch, tinyguest_artifact
from tests.qemu.running import READY_RE, Run

MIB = 1 << 20
MAC = "58:9c:fc:00:12:34"


def direct_conf(extra: str = "") -> str:
    vmlinux, initramfs = tinyguest_artifact("vmlinux"), tinyguest_artifact("initramfs")
    return (f'loader="bhyveload"\ncpu=1\nmemory=256M\nqemu_kernel="{vmlinux}"\nqemu_initrd="{initramfs}"\n'
            f'qemu_append="console=ttyS0,115200 quiet hivectl.ip=10.9.0.2/24"\n{extra}')


@pytest.fixture
def tap() -> Iterator[str]:
    """A tap created beforehand, as the network layer does (QEMU only opens it)."""
    name = f"hqtap{os.getpid() % 100000}"
    subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def sha(path: Path, size: int | None = None) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(size if size is not None else -1)).hexdigest()


def test_direct_kernel_boot_then_power_button_is_poweroff(scratch: Scratch, tap: str) -> None:
    ref = scratch.guest("direct", direct_conf(f"""\
disk0_type="virtio-blk"
disk0_name="disk0.img"
disk1_type="nvme"
disk1_name="disk1.qcow2"
network0_type="virtio-net"
network0_switch="public"
network0_mac="{MAC}"
"""), {"disk0.img": 64 * MIB, "disk1.qcow2": QCOW2})
    assert scratch.driver.preflight(ref, ref.config()) == []
    plan = scratch.plan(ref, [Port(0, tap, "public")])
    with Run(scratch.driver, ref, plan) as run:
        run.start()
        ready = run.wait_for(READY_RE, 60)
        assert ready.group(1, 2, 4) == ("10.9.0.2/24", MAC, "initramfs")
        assert sorted(ready.group(3).split(",")) == ["nvme0n1", "vda"]
        assert scratch.driver.status(ref) == "running"
        started = time.monotonic()
        scratch.driver.request_shutdown(ref, run.proc.pid if run.proc else 0)
        assert run.wait_exit(10) == 0
        assert time.monotonic() - started < 10
        assert "HIVECTL-GUEST-SHUTDOWN reason=powerbutton" in run.text
        assert scratch.driver.classify(0, ref) is Outcome.POWEROFF
    for action in scratch.driver.cleanup(ref):
        action.apply(scratch.host)
    assert sorted(p.name for p in ref.directory.iterdir() if p.is_socket()) == []
    assert (ref.directory / "disk0.img").stat().st_size == 64 * MIB


def test_reboot_typed_in_the_guest_ends_qemu_as_a_reboot(scratch: Scratch) -> None:
    ref = scratch.guest("reboot", direct_conf())
    with Run(scratch.driver, ref, scratch.plan(ref)) as run:
        run.start()
        run.wait_for(READY_RE, 60)
        run.send("\nreboot\n")
        assert run.wait_exit(20) == 0
        assert "HIVECTL-GUEST-SHUTDOWN reason=init" in run.text
        assert run.watcher is not None and run.watcher.shutdown_reason == "guest-reset"
        assert scratch.driver.classify(0, ref) is Outcome.REBOOT


def _started(scratch: Scratch, name: str) -> tuple[GuestRef, Run]:
    """A guest with nothing to boot (SeaBIOS idles): control and exit classification need no OS."""
    ref = scratch.guest(name, 'loader="bhyveload"\ncpu=1\nmemory=128M\n')
    run = Run(scratch.driver, ref, scratch.plan(ref)).start(serial=False)
    assert run.watcher is not None and run.watcher.connected.wait(10), run.tail()
    return ref, run


def test_sigkill_is_killed(scratch: Scratch) -> None:
    ref, run = _started(scratch, "killed")
    with run:
        assert run.proc is not None
        os.kill(run.proc.pid, signal.SIGKILL)
        status = run.wait_exit(10)
        assert status == -signal.SIGKILL
        assert scratch.driver.classify(status, ref) is Outcome.KILLED


def test_sigterm_to_qemu_is_killed_not_poweroff(scratch: Scratch) -> None:
    # QEMU exits 0 on SIGTERM; only the SHUTDOWN reason (host-signal) says it was killed from outside.
    ref, run = _started(scratch, "termed")
    with run:
        assert run.proc is not None
        os.kill(run.proc.pid, signal.SIGTERM)
        status = run.wait_exit(10)
        assert status == 0
        assert scratch.driver.classify(status, ref) is Outcome.KILLED


@pytest.mark.parametrize(("control", "outcome"), [("force_reset", Outcome.REBOOT),
                                                  ("force_poweroff", Outcome.POWEROFF)])
def test_forced_reset_and_poweroff(scratch: Scratch, control: str, outcome: Outcome) -> None:
    ref, run = _started(scratch, control.replace("_", "-"))
    with run:
        assert run.proc is not None
        getattr(scratch.driver, control)(ref, run.proc.pid)
        assert run.wait_exit(10) == 0
        assert scratch.driver.classify(0, ref) is outcome


def _vnc_handshake(path: Path) -> socket.socket:
    """A minimal RFB 3.8 client: version, security type None, ClientInit (shared)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    assert sock.recv(12).startswith(b"RFB 003.")
    sock.sendall(b"RFB 003.008\n")
    count = sock.recv(1)[0]
    types = sock.recv(count)
    assert 1 in types, f"security types {list(types)}"
    sock.sendall(b"\x01")
    assert sock.recv(4) == b"\0\0\0\0"
    sock.sendall(b"\x01")
    assert len(sock.recv(24)) > 0  # ServerInit
    return sock


def test_graphics_wait_holds_the_guest_until_a_vnc_client_connects(scratch: Scratch) -> None:
    ref = scratch.guest("vncwait", direct_conf('graphics="yes"\ngraphics_wait="yes"\n'))
    plan = scratch.plan(ref)
    assert "-S" in plan.hypervisor and plan.console["vnc"] == f"unix:{ref.directory / 'vnc.sock'}"
    run = Run(scratch.driver, ref, plan).start(serial=False)
    with run:
        assert run.watcher is not None and run.watcher.connected.wait(30)
        time.sleep(0.5)
        assert scratch.driver.status(ref) == "prelaunch"
        client = _vnc_handshake(ref.directory / "vnc.sock")
        try:
            deadline = time.monotonic() + 30  # generous: a loaded 2-core CI machine is slow, not wrong
            while scratch.driver.status(ref) != "running" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert scratch.driver.status(ref) == "running"
        finally:
            client.close()
        scratch.driver.force_poweroff(ref, run.proc.pid if run.proc else None)
        assert run.wait_exit(30) == 0


def test_install_from_iso_then_uefi_boot_from_disk(scratch: Scratch) -> None:
    """The installer ISO is attached on the first boot only; its GRUB runs under OVMF with the guest's own
    vars store, writes the image to the virtio disk and powers off; the next boot comes from that disk."""
    ref = scratch.guest("installed", 'loader="uefi"\ncpu=1\nmemory=512M\ndisk0_type="virtio-blk"\n'
                                     'disk0_name="disk0.img"\n', {"disk0.img": 64 * MIB})
    assert scratch.driver.preflight(ref, ref.config()) == []
    iso = tinyguest_artifact("installer_iso")
    vars_store = ref.directory / "uefi-vars.fd"
    with Run(scratch.driver, ref, scratch.plan(ref, install=iso)) as run:
        run.start()
        run.wait_for(r"HIVECTL-INSTALL-DONE disk=/dev/vda", 120)
        assert run.wait_exit(20) == 0
        assert scratch.driver.classify(0, ref) is Outcome.POWEROFF
    image = tinyguest_artifact("disk_image")
    assert sha(ref.directory / "disk0.img", MIB) == sha(image, MIB)
    assert vars_store.stat().st_size == scratch.driver.ovmf_vars.stat().st_size
    vars_after_install = sha(vars_store)

    second = scratch.plan(ref, install=iso, first_boot=False)
    assert str(iso) not in " ".join(second.hypervisor)
    with Run(scratch.driver, ref, second) as run:
        run.start()
        ready = run.wait_for(READY_RE, 120)
        assert ready.group(4) == "disk" and ready.group(3) == "vda"
        scratch.driver.force_poweroff(ref, run.proc.pid if run.proc else None)
        assert run.wait_exit(30) == 0
        assert scratch.driver.classify(0, ref) is Outcome.POWEROFF
    # the prepare step never overwrites the guest's vars store (OVMF keeps its boot entries there)
    before = sha(vars_store)
    Plan(list(scratch.plan(ref).prepare)).apply(scratch.host)
    assert sha(vars_store) == before
    assert re.fullmatch(r"[0-9a-f]{64}", vars_after_install)
