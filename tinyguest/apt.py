"""Host-side packages: find the tools the recipe needs, install only what is missing, fetch the kernel.

Why detect before installing: ``apt-get install`` of an already-present package still takes the dpkg lock
and seconds of trigger processing, and it needs root; a developer who already has the tools should be
able to build as a normal user.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

KERNEL_META_PACKAGE = "linux-image-amd64"

BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))


class AptError(RuntimeError):
    """A package could not be resolved, downloaded or installed."""


def log(msg: str) -> None:
    """Progress goes to stderr so ``--json`` output on stdout stays machine-readable."""
    print(f"tinyguest: {msg}", file=sys.stderr, flush=True)


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP program header, i.e. not dynamically linked.

    Why it matters: the initramfs has no libc, so a dynamically linked busybox (Debian's ``busybox``
    package) would fail with "not found" as /init and the kernel would panic.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def static_busybox() -> Path | None:
    """The first statically linked busybox on the host, if any."""
    for cand in BUSYBOX_CANDIDATES:
        if cand.exists() and is_static_elf(cand.resolve()):
            return cand
    return None


def _has_all(*checks: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: all(c() for c in checks)


def _which(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


def _exists(path: str) -> Callable[[], bool]:
    return lambda: Path(path).exists()


# package -> "is it usable already?" (checked by what the recipe actually runs or reads)
BUILD_PACKAGES: dict[str, Callable[[], bool]] = {
    "busybox-static": lambda: static_busybox() is not None,
    "grub-pc-bin": _has_all(
        _exists("/usr/lib/grub/i386-pc/boot.img"), _exists("/usr/lib/grub/i386-pc/cdboot.img")
    ),
    "grub-efi-amd64-bin": _exists("/usr/lib/grub/x86_64-efi/linux.mod"),
    "grub-common": _has_all(_which("grub-mkimage"), _which("grub-mkrescue")),
    "xorriso": _which("xorriso"),
    "mtools": _has_all(_which("mformat"), _which("mcopy"), _which("mmd")),
}

# What the tests and the benchmark need to run guests (not needed to build).
RUNTIME_PACKAGES: dict[str, Callable[[], bool]] = {
    "qemu-system-x86": _which("qemu-system-x86_64"),
    "qemu-utils": _which("qemu-img"),
    "ovmf": _has_all(_exists("/usr/share/OVMF/OVMF_CODE_4M.fd"), _exists("/usr/share/OVMF/OVMF_VARS_4M.fd")),
}


def _apt_env() -> dict[str, str]:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def _run(argv: list[str], *, cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=_apt_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AptError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def apt_update() -> None:
    log("apt-get update")
    _run(["apt-get", "update", "-q"])


def missing(packages: dict[str, Callable[[], bool]]) -> list[str]:
    return [name for name, present in packages.items() if not present()]


def ensure_packages(packages: dict[str, Callable[[], bool]], *, allow_install: bool = True) -> None:
    """Install (no recommends) the packages whose files are missing; refresh the lists once on failure."""
    need = missing(packages)
    if not need:
        return
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *need]
    if not allow_install:
        raise AptError(f"missing packages {need}; install them with: {' '.join(cmd)}")
    if os.geteuid() != 0:
        raise AptError(f"missing packages {need}; as root run: {' '.join(cmd)}")
    log(f"installing {' '.join(need)}")
    try:
        _run(cmd)
    except AptError:
        apt_update()  # stale package lists are the usual cause (404 on a superseded version)
        _run(cmd)
    still = missing(packages)
    if still:
        raise AptError(f"installed {need} but {still} still look missing")


def resolve_kernel_package(meta: str = KERNEL_META_PACKAGE) -> tuple[str, str]:
    """Return (versioned package name, candidate version) that the ``linux-image-amd64`` meta package wants.

    The versioned name moves with every Debian security update (…-55 → …-56), so it is looked up rather
    than pinned. Debian's meta package depends on exactly one version (``linux-image-6.1.0-56-amd64
    (= 6.1.192-2)``), so one ``apt-cache show`` gives both; that matters because containers often disable
    apt's binary cache and then every apt-cache call re-parses all lists (~0.7 s here). ``apt-cache
    depends`` plus a second ``show`` is the fallback for an unpinned dependency. If apt knows nothing yet
    (fresh container with empty lists) the lists are fetched once.
    """
    for attempt in range(2):
        try:
            show = _run(["apt-cache", "show", "--no-all-versions", meta])
        except AptError:
            show = ""
        m = re.search(r"^Depends:.*?\b(linux-image-\d[^\s,(]*)(?:\s*\(=\s*([^)\s]+)\))?", show, re.MULTILINE)
        if m and m.group(2):
            return m.group(1), m.group(2)
        try:
            deps = _run(["apt-cache", "depends", meta])
        except AptError:
            deps = ""
        d = re.search(r"^\s*\|?Depends:\s*(linux-image-\d\S*)", deps, re.MULTILINE)
        if d:
            name = d.group(1)
            v = re.search(
                r"^Version:\s*(\S+)", _run(["apt-cache", "show", "--no-all-versions", name]), re.MULTILINE
            )
            if not v:
                raise AptError(f"apt-cache show {name}: no Version field")
            return name, v.group(1)
        if attempt == 0:
            apt_update()
    raise AptError(f"apt-cache knows no linux-image-<version> package that {meta} depends on")


def download_package(name: str, dest_dir: Path) -> Path:
    """``apt-get download`` into ``dest_dir`` (nothing installed) and return the .deb path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    log(f"apt-get download {name}")
    # As root apt warns that the download is "unsandboxed" when _apt cannot write dest_dir: harmless.
    try:
        _run(["apt-get", "download", "-q", name], cwd=dest_dir)
    except AptError:
        apt_update()
        _run(["apt-get", "download", "-q", name], cwd=dest_dir)
    debs = sorted(dest_dir.glob(f"{name}_*.deb"))
    if not debs:
        raise AptError(f"apt-get download {name} produced no .deb in {dest_dir}")
    return debs[-1]
