"""Assemble the guest's root file system (static busybox, our scripts, kernel modules) as a gzip'd cpio.

One initramfs serves every boot path (PVH direct boot, disk, installer ISO): the behaviour is chosen by
the kernel command line, so there is a single thing to test and to keep small (~1.5 MB).
"""

from __future__ import annotations

import gzip
import io
import subprocess
from importlib import resources
from pathlib import Path

from .cpio import NewcWriter

# guest/<file> -> (path in the guest, mode)
GUEST_FILES: dict[str, tuple[str, int]] = {
    "inittab": ("etc/inittab", 0o644),
    "rcS": ("etc/init.d/rcS", 0o755),
    "rcK": ("etc/init.d/rcK", 0o755),
    "profile": ("etc/profile", 0o644),
    "udhcpc.script": ("etc/udhcpc.script", 0o755),
    "power-button": ("etc/acpi/PWRF/00000080", 0o755),
    "hivectl-poweroff": ("sbin/hivectl-poweroff", 0o755),
    "hivectl-install": ("sbin/hivectl-install", 0o755),
}

_EMPTY_DIRS = ("proc", "sys", "dev", "dev/pts", "run", "mnt", "root", "www", "var/run", "usr/bin", "usr/sbin")

_MTIME = 0  # fixed timestamps: the same inputs give byte-identical archives


def guest_file(name: str) -> bytes:
    """Read one of the shell scripts/config files shipped in ``tinyguest/guest``."""
    return resources.files(__package__).joinpath("guest", name).read_bytes()


def busybox_applets(busybox: Path) -> list[str]:
    """Applet install paths (``sbin/acpid``, ``usr/bin/awk`` …) as the binary itself reports them."""
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def _relative_link(path: str, target: str) -> str:
    """Relative link from ``path`` to ``target`` (both archive-relative), e.g. ``../bin/busybox``."""
    depth = path.count("/")
    return "../" * depth + target if depth else target


def build_initramfs(busybox: Path, modules: list[Path], out: Path) -> None:
    """Write the gzip'd initramfs to ``out``; ``modules`` must already be in load order."""
    raw = io.BytesIO()
    w = NewcWriter(raw, mtime=_MTIME)
    for d in _EMPTY_DIRS:
        w.add_dir(d)
    w.add_dir("tmp", 0o1777)
    # The kernel opens /dev/console for init before rcS can mount devtmpfs: without this node init has
    # no stdin/stdout and the early messages vanish.
    w.add_char_device("dev/console", 5, 1, 0o600)
    w.add_char_device("dev/null", 1, 3, 0o666)
    w.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in busybox_applets(busybox):
        # Skip the self-entry (it would replace the binary with a link to itself) and /linuxrc.
        if applet.rsplit("/", 1)[-1] in ("busybox", "linuxrc"):
            continue
        w.add_symlink(applet, _relative_link(applet, "bin/busybox"))
    w.add_symlink("init", "bin/busybox")  # the kernel runs /init; busybox picks the applet from argv[0]
    for src, (dest, mode) in GUEST_FILES.items():
        w.add_file(dest, guest_file(src), mode)
    w.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    w.add_file("etc/group", b"root:x:0:\n")
    w.add_file("etc/hostname", b"tinyguest\n")
    w.add_file("etc/resolv.conf", b"")
    names = []
    for ko in modules:
        w.add_file(f"lib/modules/{ko.name}", ko.read_bytes())
        names.append(ko.stem)
    w.add_file("lib/modules/load-order", ("\n".join(names) + "\n").encode())
    w.finish()
    with out.open("wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=_MTIME) as gz:
        gz.write(raw.getvalue())


def build_payload_cpio(disk_image_gz: Path, disk_image_size: int, out: Path) -> None:
    """An *uncompressed* cpio holding the gzip'd disk image, appended as a second initrd by the ISO's GRUB.

    Uncompressed because its only big member is already gzip'd: compressing again would only cost time
    in the emulated guest's decompressor.
    """
    with out.open("wb") as f:
        w = NewcWriter(f, mtime=_MTIME)
        w.add_file("payload/disk.img.gz", disk_image_gz.read_bytes())
        w.add_file("payload/disk.img.size", f"{disk_image_size}\n".encode())
        w.finish()
