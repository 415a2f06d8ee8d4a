"""The tiny guest, booted for real with qemu-system-x86_64 (TCG), independently of hivectl.

What these tests pin down is the contract hivectl's end-to-end tests rely on: the ready line on the serial
console, the root shell on ttyS0, ACPI power-button shutdown, and install-from-ISO-then-boot-from-disk.
Boots run one after another (the CI host has 2 cores; a TCG guest keeps one busy while booting).
"""

from __future__ import annotations

import gzip
import json
import re
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinyguest
from tinyguest import builder as build_mod
from tinyguest import kernel
from tinyguest.cpio import NewcWriter, iter_newc
from tinyguest.qemu import READY_RE, Guest, Ready, base_args, uefi_args

PVH_TIMEOUT = 60  # measured ~4 s (TCG); generous for a loaded CI machine
FIRMWARE_TIMEOUT = 120  # measured 9-14 s
POWERDOWN_TIMEOUT = 10  # measured ~0.4 s

SLIRP_NIC = ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="]


def pvh_args(art: tinyguest.Artifacts, cmdline: str = "") -> list[str]:
    return [*base_args(), "-kernel", str(art.vmlinux), "-initrd", str(art.initramfs),
            "-append", f"{tinyguest.BASE_CMDLINE} {cmdline}".strip()]  # fmt: skip


def raw_disk(path: Path, size_mib: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size_mib << 20)
    return path


def power_button(g: Guest) -> float:
    """Press the ACPI power button and return how long QEMU took to exit."""
    assert g.qmp is not None
    t0 = time.monotonic()
    g.qmp.execute("system_powerdown")
    assert g.wait_exit(POWERDOWN_TIMEOUT) == 0
    return time.monotonic() - t0


# ---- no QEMU needed ----------------------------------------------------------------------------------


def test_cpio_newc_round_trip() -> None:
    import io

    buf = io.BytesIO()
    w = NewcWriter(buf)
    w.add_file("etc/init.d/rcS", b"#!/bin/sh\n", 0o755)
    w.add_symlink("init", "bin/busybox")
    w.add_char_device("dev/console", 5, 1)
    w.finish()
    data = buf.getvalue()
    assert len(data) % 4 == 0
    entries = {e.name: e for e in iter_newc(data)}
    # parents are created before their children, as the kernel's unpacker requires
    assert list(entries)[:3] == ["etc", "etc/init.d", "etc/init.d/rcS"]
    assert entries["etc/init.d/rcS"].data == b"#!/bin/sh\n"
    assert entries["etc/init.d/rcS"].mode & 0o777 == 0o755
    assert entries["init"].is_symlink and entries["init"].data == b"bin/busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    with pytest.raises(ValueError):
        NewcWriter(io.BytesIO()).add_file("../escape", b"")


def test_module_load_order_puts_dependencies_first() -> None:
    idx = {
        "virtio_ring": kernel.ModuleInfo("virtio_ring", "a.ko"),
        "virtio": kernel.ModuleInfo("virtio", "b.ko", ["virtio_ring"]),
        "virtio_pci": kernel.ModuleInfo("virtio_pci", "c.ko", ["virtio", "virtio_ring"]),
    }
    assert kernel.load_order(["virtio_pci"], idx, set()) == ["virtio_ring", "virtio", "virtio_pci"]
    assert kernel.load_order(["virtio_pci"], idx, {"virtio_ring"}) == ["virtio", "virtio_pci"]
    with pytest.raises(kernel.KernelPackageError, match="not found"):
        kernel.load_order(["nvme"], idx, set())


def test_cache_key_follows_recipe_and_kernel_version() -> None:
    recipe = build_mod.recipe_digest()
    a = build_mod.cache_key(recipe, "linux-image-6.1.0-56-amd64", "6.1.192-2")
    assert a == build_mod.cache_key(recipe, "linux-image-6.1.0-56-amd64", "6.1.192-2")
    assert a != build_mod.cache_key(recipe, "linux-image-6.1.0-56-amd64", "6.1.192-3")
    assert a != build_mod.cache_key("0" * 64, "linux-image-6.1.0-56-amd64", "6.1.192-2")
    names = {p.name for p in build_mod.recipe_files()}
    assert {"rcS", "cpio.py", "images.py"} <= names and "qemu.py" not in names


def test_ready_line_format() -> None:
    line = "HIVECTL-GUEST-READY ip=10.77.0.9/24 mac=52:54:00:ab:cd:07 disks=vda,vdb boot=disk\n"
    m = READY_RE.search(line)
    assert m is not None
    r = Ready.parse(m, 1.0)
    assert (r.ip, r.mac, r.disks, r.boot) == ("10.77.0.9/24", "52:54:00:ab:cd:07", ("vda", "vdb"), "disk")
    assert READY_RE.search(line.rstrip("\n")) is None  # a line still arriving must not match


# ---- the artefacts themselves ------------------------------------------------------------------------


def test_build_is_cached_and_cli_agrees(artifacts: tinyguest.Artifacts) -> None:
    t0 = time.monotonic()
    again = tinyguest.build()
    assert again == artifacts
    assert time.monotonic() - t0 < 10  # apt-cache lookups only, no rebuild
    out = subprocess.run(
        [sys.executable, "-m", "tinyguest", "build", "--json", "--no-install"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert json.loads(out.stdout) == artifacts.as_dict()
    assert artifacts.directory.name == artifacts.cache_key
    manifest = json.loads((artifacts.directory / "manifest.json").read_text())
    assert manifest["kernel_version"] == artifacts.kernel_version


def test_artifacts_are_sane(artifacts: tinyguest.Artifacts) -> None:
    assert artifacts.vmlinuz.read_bytes()[0x202:0x206] == b"HdrS"
    elf = artifacts.vmlinux.read_bytes()
    assert elf[:4] == b"\x7fELF" and kernel.has_pvh_note(elf)

    entries = {e.name: e for e in iter_newc(gzip.decompress(artifacts.initramfs.read_bytes()))}
    assert entries["init"].data == b"bin/busybox"
    assert entries["bin/sh"].is_symlink
    assert stat.S_ISCHR(entries["dev/console"].mode)
    order = entries["lib/modules/load-order"].data.decode().split()
    assert all(f"lib/modules/{m}.ko" in entries for m in order)
    for needed_first, then in (("virtio_ring", "virtio"), ("virtio", "virtio_blk"), ("scsi_mod", "sd_mod")):
        assert order.index(needed_first) < order.index(then)
    assert artifacts.initramfs.stat().st_size < 4 << 20

    disk = artifacts.disk_image.read_bytes()[:512]
    assert disk[510:512] == b"\x55\xaa"
    status, ptype, start = disk[446], disk[450], struct.unpack_from("<I", disk, 454)[0]
    assert (status, ptype, start) == (0x80, 0xEF, 2048)  # active EFI system partition at 1 MiB
    assert artifacts.disk_image.stat().st_size == 64 << 20
    assert artifacts.disk_image.stat().st_blocks * 512 < 32 << 20  # sparse
    assert artifacts.installer_iso.stat().st_size < 48 << 20


# ---- real boots ----------------------------------------------------------------------------------------


def test_pvh_boot_shell_and_power_button(
    artifacts: tinyguest.Artifacts, qemu_runtime: None, tmp_path: Path
) -> None:
    """PVH vmlinux + initramfs: ready line, typed commands over serial, ping, then ACPI power-off."""
    args = pvh_args(artifacts, "hivectl.ip=10.0.2.15/24 hivectl.gw=10.0.2.2") + SLIRP_NIC
    with Guest(args, log_dir=tmp_path, name="pvh") as g:
        ready = g.wait_ready(PVH_TIMEOUT)
        assert ready.ip == "10.0.2.15/24"  # the cmdline address wins over DHCP
        assert re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", ready.mac)
        assert ready.disks == () and ready.boot == "initramfs"
        assert g.text.count("HIVECTL-GUEST-READY") == 1

        g.wait_shell()
        rc, out = g.run("echo hello-$RANDOM")
        assert rc == 0 and re.fullmatch(r"hello-\d+\n", out), out
        rc, out = g.run("echo tg-$((6 * 7)) $(hostname)")
        assert (rc, out) == (0, "tg-42 tinyguest\n")
        assert g.run("false")[0] == 1
        rc, out = g.run("ping -c 1 -W 3 10.0.2.2")  # slirp's gateway answers ICMP echo
        assert rc == 0 and "1 packets received" in out, out
        rc, out = g.run("wget -q -O - http://127.0.0.1/")
        assert rc == 0 and "ip=10.0.2.15/24" in out

        took = power_button(g)
        assert "HIVECTL-GUEST-SHUTDOWN reason=powerbutton" in g.text
    print(f"PVH ready after {ready.seconds:.1f} s, power button -> exit {took:.2f} s")


def test_pvh_dhcp_sees_virtio_sata_and_nvme_disks(
    artifacts: tinyguest.Artifacts, qemu_runtime: None, tmp_path: Path
) -> None:
    """No hivectl.ip: DHCP (slirp) provides the address; every kind of disk hivectl attaches is listed."""
    args = pvh_args(artifacts) + SLIRP_NIC
    for i, dev in enumerate(("virtio-blk-pci,drive=d0", "ide-hd,drive=d1", "nvme,drive=d2,serial=tg2")):
        args += ["-drive", f"file={raw_disk(tmp_path / f'd{i}.img', 16)},format=raw,if=none,id=d{i}",
                 "-device", dev]  # fmt: skip
    with Guest(args, log_dir=tmp_path, name="dhcp") as g:
        ready = g.wait_ready(PVH_TIMEOUT)
        assert ready.ip == "10.0.2.15/24"
        assert ready.disks == ("nvme0n1", "sda", "vda")
        g.wait_shell()
        t0 = time.monotonic()
        g.send("poweroff -f\n")  # instant power-off typed on the serial console
        assert g.wait_exit(POWERDOWN_TIMEOUT) == 0
        assert time.monotonic() - t0 < 3


def test_pvh_mac_fallback_address_and_reboot(
    artifacts: tinyguest.Artifacts, qemu_runtime: None, tmp_path: Path
) -> None:
    """A NIC with no DHCP server (a hub port leading nowhere): the address comes from the MAC."""
    args = [
        *pvh_args(artifacts),
        "-netdev", "hubport,id=n0,hubid=0",
        "-device", "virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:ab:cd:fd",
    ]  # fmt: skip
    with Guest(args, log_dir=tmp_path, name="macip") as g:
        ready = g.wait_ready(PVH_TIMEOUT)
        assert ready.mac == "52:54:00:ab:cd:fd"
        assert ready.ip == f"10.77.0.{0xFD % 250 + 2}/24" == "10.77.0.5/24"
        g.wait_shell()
        mark = g.mark()
        g.send("reboot\n")  # in-place reset: the same QEMU process boots again
        again = g.wait_ready(PVH_TIMEOUT, start=mark)
        assert again.ip == ready.ip
        assert "HIVECTL-GUEST-SHUTDOWN reason=init" in g.text[mark:]
        g.wait_shell()
        power_button(g)


def test_installer_iso_then_boot_from_disk_bios(
    artifacts: tinyguest.Artifacts, qemu_runtime: None, tmp_path: Path
) -> None:
    """SeaBIOS: blank disk first, ISO second: run 1 installs, run 2 (same args) boots the disk."""
    disk = raw_disk(tmp_path / "target.img", 128)
    args = [
        *base_args(),
        "-drive", f"file={disk},format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,bootindex=0",
        "-drive", f"file={artifacts.installer_iso},media=cdrom,if=none,id=cd0,readonly=on",
        "-device", "ide-cd,drive=cd0,bootindex=1",
        *SLIRP_NIC,
    ]  # fmt: skip
    with Guest(args, log_dir=tmp_path, name="install") as g:
        ready = g.wait_ready(FIRMWARE_TIMEOUT)
        assert ready.boot == "installer" and ready.disks == ("vda",)
        done = g.wait_for(r"HIVECTL-INSTALL-(DONE|FAILED)(.*)\n", FIRMWARE_TIMEOUT)
        assert done[1] == "DONE" and done[2] == " disk=/dev/vda", done[0]
        assert g.wait_exit(30) == 0  # the installer powers the machine off by itself
    with disk.open("rb") as a, artifacts.disk_image.open("rb") as b:
        assert a.read(1 << 20) == b.read(1 << 20)  # MBR + GRUB core image landed on the disk

    with Guest(args, log_dir=tmp_path, name="installed") as g:
        ready = g.wait_ready(FIRMWARE_TIMEOUT)
        assert ready.boot == "disk" and ready.disks == ("vda",)
        assert "GRUB(disk)" in g.text
        power_button(g)


def test_disk_image_boots_under_uefi(
    artifacts: tinyguest.Artifacts, qemu_runtime: None, tmp_path: Path
) -> None:
    """OVMF with a private vars store boots the raw disk image (through a qcow2 overlay: no 64 MB copy)."""
    overlay = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(artifacts.disk_image), "-F", "raw",
                    str(overlay)], check=True)  # fmt: skip
    # GRUB 2.06's EFI loader needs the kernel's 64 MiB init_size contiguous: 256 MiB is not enough.
    args = [
        *base_args(memory_mib=512), *uefi_args(tmp_path / "OVMF_VARS.fd"),
        "-drive", f"file={overlay},format=qcow2,if=none,id=d0",
        "-device", "virtio-blk-pci,drive=d0,bootindex=0",
        *SLIRP_NIC,
    ]  # fmt: skip
    with Guest(args, log_dir=tmp_path, name="uefi") as g:
        ready = g.wait_ready(FIRMWARE_TIMEOUT)
        assert ready.boot == "disk" and ready.ip == "10.0.2.15/24"
        assert "BdsDxe" in g.text  # it really was OVMF
        power_button(g)
