"""Build the tiny guest's artefacts once per (recipe, kernel) and keep them in a cache.

Why a cache keyed this way: a full build takes ~20 s (kernel download and two passes over it, a 66 MB
vmlinux decompression, GRUB images, an ISO), far too slow to repeat for every test session. The result
only changes when our own recipe changes or when Debian publishes a new kernel, so the key is exactly
those two things: a hash of this package's recipe files plus the kernel package name and version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from . import apt, images, kernel
from .initramfs import build_initramfs, build_payload_cpio

MANIFEST = "manifest.json"
FORMAT = 1
KEEP_ENTRIES = 3  # older cache entries (other recipe versions or kernels) are pruned beyond this

# Files of this package that do not influence the artefacts, so editing them must not force a rebuild.
_NOT_RECIPE = frozenset({"__main__.py", "qemu.py", "templates.py", "README.md"})

ARTIFACT_FILES = {
    "vmlinuz": "vmlinuz",
    "vmlinux": "vmlinux",
    "initramfs": "initramfs.cpio.gz",
    "disk_image": "disk.img",
    "installer_iso": "installer.iso",
}


@dataclass(frozen=True)
class Artifacts:
    """Paths of one cached build plus what went into it."""

    directory: Path
    vmlinuz: Path  # Debian bzImage: firmware boots, `-kernel` with SeaBIOS
    vmlinux: Path  # ELF with PVH entry: fast `-kernel` boot under QEMU (~2x faster under TCG)
    initramfs: Path  # gzip'd newc cpio, busybox init; mode chosen by the kernel cmdline
    disk_image: Path  # raw 64 MiB (sparse) BIOS+UEFI bootable disk, boots with boot=disk
    installer_iso: Path  # BIOS+UEFI ISO that writes disk_image to the first disk and powers off
    kernel_package: str  # e.g. linux-image-6.1.0-56-amd64
    kernel_version: str  # Debian package version, e.g. 6.1.192-2
    kernel_release: str  # uname -r, e.g. 6.1.0-56-amd64
    cache_key: str

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def default_cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/hivectl/tinyguest`` (shared by tests, the tour and the CLI)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hivectl" / "tinyguest"


def recipe_files() -> list[Path]:
    """Every file of this package that shapes the artefacts (Python modules and the guest's scripts)."""
    pkg = Path(__file__).resolve().parent
    files = [p for p in pkg.glob("*.py") if p.name not in _NOT_RECIPE]
    files += [p for p in (pkg / "guest").rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(pkg).as_posix())


def recipe_digest() -> str:
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in recipe_files():
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def cache_key(recipe: str, kernel_package: str, kernel_version: str) -> str:
    h = hashlib.sha256(f"{FORMAT}\0{recipe}\0{kernel_package}\0{kernel_version}".encode())
    return h.hexdigest()[:16]


def _load(entry: Path) -> Artifacts | None:
    """The artefacts of a complete cache entry, or None (missing, partial or from another format)."""
    try:
        meta = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT:
        return None
    paths = {field: entry / name for field, name in ARTIFACT_FILES.items()}
    if not all(p.is_file() for p in paths.values()):
        return None
    return Artifacts(
        directory=entry,
        kernel_package=meta["kernel_package"],
        kernel_version=meta["kernel_version"],
        kernel_release=meta["kernel_release"],
        cache_key=meta["cache_key"],
        **paths,
    )


def _touch(entry: Path) -> None:
    """Mark an entry as recently used (pruning keeps the most recently used ones)."""
    with contextlib.suppress(OSError):
        os.utime(entry / MANIFEST)


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One builder per cache directory at a time (parallel test sessions would otherwise both build)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prune(cache: Path, keep: int = KEEP_ENTRIES) -> None:
    """Bound the cache (~110 MB per entry): keep the most recently used entries, drop the rest."""
    entries = [p for p in cache.iterdir() if p.is_dir() and (p / MANIFEST).exists()]
    entries.sort(key=lambda p: (p / MANIFEST).stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        apt.log(f"pruning old cache entry {old}")
        shutil.rmtree(old, ignore_errors=True)
    # Called with the lock held, and every build holds it: any .build-* directory left is from a build
    # that was killed.
    for stale in cache.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _newest_for_recipe(cache: Path, recipe: str) -> Artifacts | None:
    """Offline fallback: the most recently used entry built from this very recipe, whatever the kernel."""
    best: tuple[float, Artifacts] | None = None
    for manifest in cache.glob(f"*/{MANIFEST}"):
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        art = _load(manifest.parent) if meta.get("recipe") == recipe else None
        if art and (best is None or manifest.stat().st_mtime > best[0]):
            best = (manifest.stat().st_mtime, art)
    return best[1] if best else None


def build(cache_dir: Path | None = None, *, force: bool = False, allow_install: bool = True) -> Artifacts:
    """Return the guest's artefacts, building them first if this recipe + kernel is not cached yet.

    ``allow_install=False`` makes a missing build tool an error instead of an ``apt-get install``.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    recipe = recipe_digest()
    try:
        kpkg, kver = apt.resolve_kernel_package()
    except (apt.AptError, FileNotFoundError) as exc:
        cached = None if force else _newest_for_recipe(cache, recipe)
        if cached is None:
            raise
        apt.log(f"cannot ask apt for the kernel version ({exc}); using cached {cached.kernel_package}")
        _touch(cached.directory)
        return cached
    key = cache_key(recipe, kpkg, kver)
    entry = cache / key
    if not force and (art := _load(entry)):
        _touch(entry)
        return art
    with _locked(cache):
        if not force and (art := _load(entry)):  # another process built it while we waited
            _touch(entry)
            return art
        started = time.monotonic()
        apt.ensure_packages(apt.BUILD_PACKAGES, allow_install=allow_install)
        tmp = cache / f".build-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            meta = _build_into(tmp, kpkg, kver)
            meta.update(
                format=FORMAT,
                cache_key=key,
                recipe=recipe,
                build_seconds=round(time.monotonic() - started, 1),
            )
            (tmp / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            if entry.exists():
                shutil.rmtree(entry)
            tmp.rename(entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(cache)
        art = _load(entry)
        assert art is not None, f"fresh cache entry {entry} is incomplete"
        apt.log(f"built {key} in {meta['build_seconds']} s")
        return art


def _build_into(out: Path, kpkg: str, kver: str) -> dict[str, object]:
    """Produce every artefact inside ``out``; scratch files go to ``out/work`` and are removed at the end."""
    work = out / "work"
    deb = apt.download_package(kpkg, work / "deb")
    apt.log(f"extracting {deb.name}")
    k = kernel.extract(deb, work / "kernel")
    vmlinuz = out / ARTIFACT_FILES["vmlinuz"]
    shutil.copyfile(k.vmlinuz, vmlinuz)
    apt.log("decompressing vmlinux (PVH)")
    (out / ARTIFACT_FILES["vmlinux"]).write_bytes(kernel.bzimage_to_vmlinux(vmlinuz.read_bytes()))

    busybox = apt.static_busybox()
    assert busybox is not None  # ensured by ensure_packages
    initramfs = out / ARTIFACT_FILES["initramfs"]
    apt.log("building initramfs")
    build_initramfs(busybox, k.modules, initramfs)

    apt.log("building disk image")
    disk = out / ARTIFACT_FILES["disk_image"]
    images.build_disk_image(vmlinuz, initramfs, disk, work / "disk")
    disk_gz = work / "disk.img.gz"
    images.gzip_file(disk, disk_gz)
    payload = work / "payload.cpio"
    build_payload_cpio(disk_gz, disk.stat().st_size, payload)

    apt.log("building installer ISO")
    images.build_installer_iso(
        vmlinuz, initramfs, payload, out / ARTIFACT_FILES["installer_iso"], work / "iso"
    )
    shutil.rmtree(work)
    return {
        "kernel_package": kpkg,
        "kernel_version": kver,
        "kernel_release": k.release,
        "modules": [m.stem for m in k.modules],
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {name: (out / name).stat().st_size for name in ARTIFACT_FILES.values()},
    }
