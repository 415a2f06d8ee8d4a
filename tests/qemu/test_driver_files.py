"""Preflight, the UEFI vars copy, and cleanup: what the driver checks and touches on disk."""

from __future__ import annotations

import os
import socket

import pytest

from hivectl.drivers import get_driver
from hivectl.drivers.qemu.driver import QemuDriver
from hivectl.drivers.qemu.firmware import CopyOnce
from hivectl.errors import HivectlError
from hivectl.plan import Plan, WriteFile
from tests.qemu.guests import Scratch

UEFI = 'loader="uefi"\ncpu=1\nmemory=512M\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'


def test_get_driver_gives_the_qemu_driver(scratch: Scratch) -> None:
    driver = get_driver("qemu", scratch.host, scratch.store)
    assert isinstance(driver, QemuDriver) and driver.name == "qemu"
    assert driver.accelerator() == "tcg"  # forced by the fixture
    assert driver.reboots_in_place(scratch.guest("g", UEFI).config()) is False


def test_preflight_ready_guest(scratch: Scratch) -> None:
    ref = scratch.guest("ok", UEFI, {"disk0.img": 1 << 20})
    assert scratch.driver.preflight(ref, ref.config()) == []


def test_preflight_reports_everything_missing(scratch: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = scratch.guest("missing", UEFI + 'disk1_type="virtio-9p"\ndisk1_name="s=/nonexistent/dir"\n'
                                          'network0_type="virtio-net"\nnetwork0_device="hqnosuch0"\n'
                                          'qemu_kernel="vmlinux"\n')
    scratch.driver.ovmf_code = scratch.root / "OVMF_CODE_4M.fd"
    scratch.driver.ovmf_vars = scratch.root / "OVMF_VARS_4M.fd"
    monkeypatch.setenv("PATH", str(scratch.root))
    text = "\n".join(scratch.driver.preflight(ref, ref.config()))
    assert "qemu-system-x86_64 is not installed" in text
    assert f"UEFI firmware {scratch.root}/OVMF_CODE_4M.fd is missing" in text
    assert "OVMF_VARS_4M.fd is missing" in text
    assert "disk0_name=disk0.img" in text and "does not exist" in text
    assert "disk1_name=s=/nonexistent/dir: /nonexistent/dir is not a directory" in text
    assert "network0_device=hqnosuch0: no such network interface" in text
    assert f"qemu_kernel=vmlinux: {ref.directory}/vmlinux does not exist" in text


def test_preflight_existing_vars_need_no_template(scratch: Scratch) -> None:
    ref = scratch.guest("vars", UEFI, {"disk0.img": 1 << 20, "uefi-vars.fd": b"x"})
    scratch.driver.ovmf_vars = scratch.root / "gone.fd"
    assert scratch.driver.preflight(ref, ref.config()) == []


def test_preflight_refuses_socket_paths_qemu_cannot_bind(scratch: Scratch) -> None:
    deep = Scratch(scratch.root / ("d" * 90))
    deep.root.mkdir()
    ref = deep.guest("g", 'loader="bhyveload"\ncpu=1\nmemory=128M\n')
    problems = deep.driver.preflight(ref, ref.config())
    assert len(problems) == 1 and "longer than 107 bytes" in problems[0]


def test_vars_store_is_copied_once_and_never_overwritten(scratch: Scratch) -> None:
    template = scratch.root / "VARS.fd"
    template.write_bytes(b"template")
    target = scratch.root / "uefi-vars.fd"
    action = CopyOnce(template, target)
    assert action.argv() == ["cp", "-n", str(template), str(target)]
    Plan([action]).apply(scratch.host)
    assert target.read_bytes() == b"template" and target.stat().st_mode & 0o777 == 0o600
    target.write_bytes(b"boot entries written by OVMF")
    Plan([CopyOnce(template, target)]).apply(scratch.host)
    assert target.read_bytes() == b"boot entries written by OVMF"
    assert sorted(p.name for p in scratch.root.iterdir()) == ["VARS.fd", "uefi-vars.fd"]  # no temp files left


def test_a_failed_start_removes_only_a_vars_store_it_created(scratch: Scratch) -> None:
    template = scratch.root / "VARS.fd"
    template.write_bytes(b"template")
    target = scratch.root / "uefi-vars.fd"
    failing = WriteFile(scratch.root / "no-such-dir" / "x", "", ["touch", "x"])
    with pytest.raises(OSError):
        Plan([CopyOnce(template, target), failing]).apply(scratch.host)
    assert not target.exists()
    target.write_bytes(b"precious")
    with pytest.raises(OSError):
        Plan([CopyOnce(template, target), failing]).apply(scratch.host)
    assert target.read_bytes() == b"precious"


def test_cleanup_removes_sockets_and_secret_but_never_data(scratch: Scratch) -> None:
    ref = scratch.guest("c", 'loader="uefi"\ncpu=1\nmemory=128M\ncomports="com1 com2"\nvirt_console0="yes"\n',
                        {"disk0.img": 4096, "uefi-vars.fd": b"v", ".vnc-secret": b"pw"})
    made = []
    for name in ("console.sock", "com2.sock", "qmp.sock", "qmp-ctl.sock", "vtcon.0"):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(ref.directory / name))
        sock.close()
        made.append(name)
    (ref.directory / "vnc.sock").write_text("a regular file is not ours to remove")
    actions = scratch.driver.cleanup(ref)
    assert actions[0].argv()[:2] == ["rm", "-f"]
    for action in actions:
        action.apply(scratch.host)
    left = sorted(os.listdir(ref.directory))
    assert left == ["c.conf", "disk0.img", "uefi-vars.fd", "vnc.sock"]


def test_control_of_a_stopped_guest_says_so(scratch: Scratch) -> None:
    ref = scratch.guest("off", 'loader="bhyveload"\ncpu=1\nmemory=128M\n')
    with pytest.raises(HivectlError, match=r"cannot reach QEMU's monitor .*qmp-ctl\.sock"):
        scratch.driver.request_shutdown(ref, 0)
    with pytest.raises(HivectlError, match="cannot reach"):
        scratch.driver.force_poweroff(ref, None)
