"""Firmware-bootable images: the raw disk (BIOS + UEFI) and the installer ISO (BIOS + UEFI).

Everything is made without mounting anything (the CI host cannot mount vfat/iso9660 and we do not want
root-only loop devices): FAT through mtools, the ISO through grub-mkrescue's xorriso backend, the MBR and
GRUB's BIOS core image written at fixed offsets from Python.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
from pathlib import Path

SECTOR = 512
PART_START = 2048  # 1 MiB, the usual alignment; GRUB's i386-pc core image lives in sectors 1..2047
DISK_SIZE_MIB = 64
DISK_MARKER = "hivectl-tinyguest.disk"  # GRUB's early config finds the boot partition by this file
DISK_SIGNATURE = 0x48564354  # "HVCT"
FAT_SERIAL = "48564354"
GRUB_LIB = Path("/usr/lib/grub")

# Modules baked into both GRUB images of the disk (no module directory on the FAT: keeps it self-contained).
GRUB_DISK_MODULES = [
    *("part_msdos", "fat", "normal", "linux", "echo", "search", "search_fs_file"),
    *("configfile", "serial", "terminal", "test"),
]

# Kernel command line of every image; for direct (-kernel) boots add hivectl.ip=A.B.C.D/NN [hivectl.gw=…].
BASE_CMDLINE = "console=ttyS0,115200 quiet"


def grub_cfg(title: str, cmdline: str, initrds: list[str], note: str) -> str:
    """A GRUB menu that talks on the serial port and boots straight away (timeout 0).

    The serial settings come first so that an error later in the file is visible on the console that
    tests read; ``note`` is echoed so a serial log shows which image is booting.
    """
    return (
        "insmod serial\n"
        "serial --unit=0 --speed=115200\n"
        "terminal_input serial console\n"
        "terminal_output serial console\n"
        "set timeout=0\n"
        "set default=0\n"
        f"menuentry '{title}' {{\n"
        f"  echo '{note}'\n"
        f"  linux /boot/vmlinuz {cmdline}\n"
        f"  initrd {' '.join(initrds)}\n"
        "}\n"
    )


def _run(argv: list[str]) -> None:
    """Run a tool, turning a failure into an error that carries its stderr (the only useful part)."""
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def copy_sparse(src: Path, dst: Path, offset: int, block: int = 1 << 16) -> None:
    """Copy ``src`` into ``dst`` at byte ``offset``, seeking over all-zero blocks so ``dst`` stays sparse."""
    zero = bytes(block)
    with src.open("rb") as fi, dst.open("r+b") as fo:
        pos = offset
        while chunk := fi.read(block):
            if chunk != zero[: len(chunk)]:
                fo.seek(pos)
                fo.write(chunk)
            pos += len(chunk)


def mbr(boot_img: bytes, part_start: int, part_sectors: int) -> bytes:
    """Master boot record: GRUB's boot.img code, one active partition of type 0xEF (EFI system).

    Type 0xEF makes OVMF treat the partition as an ESP and load ``\\EFI\\BOOT\\BOOTX64.EFI``; the active
    flag plus boot.img lets SeaBIOS chain into the core image at sector 1 (boot.img's default
    kernel_sector is 1 and diskboot's default blocklist starts at sector 2, so no grub-bios-setup).
    """
    out = bytearray(SECTOR)
    out[:440] = boot_img[:440]
    struct.pack_into("<I", out, 440, DISK_SIGNATURE)
    # status, CHS first (unused: LBA only), type, CHS last, LBA start, sectors
    struct.pack_into(
        "<B3sB3sII", out, 446, 0x80, b"\xfe\xff\xff", 0xEF, b"\xfe\xff\xff", part_start, part_sectors
    )
    out[510:512] = b"\x55\xaa"
    return bytes(out)


def build_disk_image(
    vmlinuz: Path, initramfs: Path, out: Path, work: Path, size_mib: int = DISK_SIZE_MIB
) -> None:
    """Raw disk that boots the guest (``hivectl.boot=disk``) under both SeaBIOS and OVMF."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "grub.cfg").write_text(
        grub_cfg(
            "hivectl tinyguest (disk)",
            f"{BASE_CMDLINE} hivectl.boot=disk",
            ["/boot/initramfs.gz"],
            "tinyguest: GRUB(disk) loading kernel",
        )
    )
    (work / "early.cfg").write_text(
        f"search --no-floppy --file --set=root /{DISK_MARKER}\n"
        "set prefix=($root)/boot/grub\n"
        "configfile ($root)/boot/grub/grub.cfg\n"
    )
    early = str(work / "early.cfg")
    core, efi = work / "core.img", work / "BOOTX64.EFI"
    _run(["grub-mkimage", "-O", "i386-pc", "-o", str(core), "-p", "/boot/grub", "-c", early,
          "biosdisk", *GRUB_DISK_MODULES])  # fmt: skip
    _run(["grub-mkimage", "-O", "x86_64-efi", "-o", str(efi), "-p", "/boot/grub", "-c", early,
          *GRUB_DISK_MODULES])  # fmt: skip
    core_bytes = core.read_bytes()
    if len(core_bytes) > (PART_START - 1) * SECTOR:
        raise RuntimeError(f"GRUB core.img is {len(core_bytes)} bytes, does not fit before the partition")

    total_sectors = size_mib * 1024 * 1024 // SECTOR
    part_sectors = total_sectors - PART_START
    part = work / "part.img"
    part.unlink(missing_ok=True)
    with part.open("wb") as f:
        f.truncate(part_sectors * SECTOR)
    img = f"-i{part}"
    _run(["mformat", img, "-v", "HIVECTL", "-N", FAT_SERIAL, "-H", str(PART_START), "::"])
    _run(["mmd", img, "::/EFI", "::/EFI/BOOT", "::/boot", "::/boot/grub"])
    (work / DISK_MARKER).write_text("hivectl tinyguest boot partition\n")
    for src, dest in (
        (efi, "::/EFI/BOOT/BOOTX64.EFI"),
        (work / "grub.cfg", "::/boot/grub/grub.cfg"),
        (vmlinuz, "::/boot/vmlinuz"),
        (initramfs, "::/boot/initramfs.gz"),
        (work / DISK_MARKER, f"::/{DISK_MARKER}"),
    ):
        _run(["mcopy", img, str(src), dest])

    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with tmp.open("wb") as f:
        f.truncate(total_sectors * SECTOR)  # sparse
        f.write(mbr((GRUB_LIB / "i386-pc" / "boot.img").read_bytes(), PART_START, part_sectors))
        f.write(core_bytes)
    copy_sparse(part, tmp, PART_START * SECTOR)
    tmp.replace(out)


def gzip_file(src: Path, dst: Path) -> None:
    """gzip with a fixed header (no name, mtime 0) so the payload is reproducible byte for byte."""
    with (
        src.open("rb") as fi,
        dst.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as fo,
    ):
        shutil.copyfileobj(fi, fo, 1 << 20)


# GRUB modules the installer ISO's grub.cfg needs at run time; the rest of GRUB's ~500 modules per
# platform are left out (they would add ~10 MB to the ISO for nothing).
GRUB_ISO_MODULES = "linux normal serial terminal echo test configfile iso9660 part_msdos part_gpt gzio"


def build_installer_iso(vmlinuz: Path, initramfs: Path, payload_cpio: Path, out: Path, work: Path) -> None:
    """BIOS + UEFI hybrid ISO that boots the guest in installer mode (``hivectl.mode=install``)."""
    root = work / "isoroot"
    if root.exists():
        shutil.rmtree(root)
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_text(
        grub_cfg(
            "hivectl tinyguest installer",
            f"{BASE_CMDLINE} hivectl.mode=install",
            ["/boot/initramfs.gz", "/boot/payload.cpio"],
            "tinyguest: GRUB(iso) loading installer",
        )
    )
    shutil.copyfile(vmlinuz, root / "boot" / "vmlinuz")
    shutil.copyfile(initramfs, root / "boot" / "initramfs.gz")
    shutil.copyfile(payload_cpio, root / "boot" / "payload.cpio")
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    _run([
        "grub-mkrescue", "-o", str(tmp),
        "--install-modules", GRUB_ISO_MODULES, "--locales=", "--fonts=", "--themes=",
        str(root), "--", "-volid", "HIVECTL_INSTALL",
    ])  # fmt: skip
    tmp.replace(out)
