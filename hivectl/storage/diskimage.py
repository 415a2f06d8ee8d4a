"""Writing a cloud image onto a new guest's first disk (``create -i IMAGE``).

The image's format is read from its header here, never guessed by a tool: a raw image is copied
in-process (sparse-aware, so a 2 GiB image with 600 MiB of data writes 600 MiB), anything else is converted
by ``qemu-img convert`` with the format named explicitly (letting qemu-img probe a raw file that starts
with a qcow2 header is a known way to make it open a backing file of the image author's choosing).
The disk itself was created at the requested size by the same plan, which is how the image ends up
"grown" to that size; an image larger than the disk is refused before anything is made.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from hivectl.errors import ConfigError, HivectlError, NotFound
from hivectl.host.base import Host
from hivectl.plan import Action
from hivectl.storage import sparse
from hivectl.store import Store
from hivectl.validate import format_size

_COMPRESSED = {b"\xfd7zXZ\x00": "xz", b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: str  # raw, qcow2, vmdk
    virtual_size: int


def inspect(path: Path) -> ImageInfo:
    """Format and virtual size of a disk image, read from its header."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
            size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise HivectlError(f"{path}: cannot read the image: {error}") from None
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            raise ConfigError(None, "-i", str(path), f"the image is {kind}-compressed; fetch it with 'hivectl img "
                                                    "URL' (which decompresses) or decompress it first")
    if head[:4] == b"QFI\xfb":
        (version,) = struct.unpack(">I", head[4:8])
        (virtual,) = struct.unpack(">Q", head[24:32])
        if version not in (2, 3):
            raise ConfigError(None, "-i", str(path), f"unsupported qcow2 version {version}")
        _refuse_other_files(path, _qcow2_refers_elsewhere(head, version))
        return ImageInfo(path, "qcow2", virtual)
    if head[:4] == b"KDMV":
        (capacity,) = struct.unpack("<Q", head[12:20])
        _refuse_other_files(path, _vmdk_has_parent(path, head))
        return ImageInfo(path, "vmdk", capacity * 512)
    if head[:8] in (b"vhdxfile", b"conectix") or head[64:68] == b"\x7f\x10\xda\xbe":
        raise ConfigError(None, "-i", str(path), "VHD/VHDX/VDI images are not supported; convert to raw or qcow2 "
                                                "with qemu-img first")
    return ImageInfo(path, "raw", size)


def _qcow2_refers_elsewhere(head: bytes, version: int) -> bool:
    """A backing file (``backing_file_offset`` set) or, in version 3, an external data file (incompatible
    feature bit 2): either makes ``qemu-img convert`` read a host file the image's author named."""
    (backing_offset,) = struct.unpack(">Q", head[8:16])
    incompatible = struct.unpack(">Q", head[72:80])[0] if version >= 3 else 0
    return backing_offset != 0 or bool(incompatible & 0b100)


def _vmdk_has_parent(path: Path, head: bytes) -> bool:
    """A sparse VMDK whose embedded descriptor names a parent (``parentFileNameHint``): a backing file."""
    desc_sector, desc_sectors = struct.unpack("<QQ", head[28:44])
    if not desc_sector or not desc_sectors:
        return False
    with open(path, "rb") as handle:
        handle.seek(desc_sector * 512)
        descriptor = handle.read(min(desc_sectors, 128) * 512)
    return b"parentFileNameHint" in descriptor


def _refuse_other_files(path: Path, refers: bool) -> None:
    """Images come from the internet (``hivectl img URL``): one that names another file (a backing or data
    file) would have ``qemu-img``, running as root, copy that host file into the new guest's disk."""
    if refers:
        raise ConfigError(None, "-i", str(path), "the image names a backing or data file; hivectl only writes "
                                                "self-contained images (flatten it first: qemu-img convert "
                                                "-O qcow2 IMAGE NEW.qcow2)")


def resolve(store: Store, spec: str) -> Path:
    """``-i`` accepts a path, or a file name found in the image stores (``.img`` and ``img:`` datastores)."""
    if "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise NotFound(f"image {spec} does not exist")
        return path
    for media in store.media_stores("img"):
        candidate = media.path / spec
        if candidate.is_file():
            return candidate
    raise NotFound(f"image {spec} is not in any image store (see 'hivectl img')")


def check_fits(image: ImageInfo, disk_size: int) -> None:
    if image.virtual_size > disk_size:
        raise ConfigError(None, "-s", format_size(disk_size),
                          f"the image {image.path.name} is {format_size(image.virtual_size)}; give a disk size at "
                          "least that large (the disk is never made smaller than the image)")


@dataclass
class WriteImage(Action):
    """Put an image's content onto a freshly created (all-zero) disk: a file or a zvol device node."""

    image: ImageInfo
    target: str  # the path as FreeBSD sees it (/dev/zvol/... or a file)
    wait_for_device: float = 30.0
    written: int = field(default=0, repr=False)

    def argv(self) -> list[str]:
        if self.image.format == "raw":
            return ["dd", f"if={self.image.path}", f"of={self.target}", "bs=1m", "conv=sparse"]
        return ["qemu-img", "convert", "-n", "-f", self.image.format, "-O", "raw", str(self.image.path), self.target]

    def apply(self, host: Host) -> None:
        local = host.devpath(self.target) if self.target.startswith("/dev/") else Path(self.target)
        deadline = time.monotonic() + self.wait_for_device
        while not local.exists():  # a new zvol's device node appears asynchronously
            if time.monotonic() > deadline:
                raise HivectlError(f"{self.target} did not appear within {self.wait_for_device:.0f} s")
            time.sleep(0.1)
        if self.image.format != "raw":
            host.run(self.argv())
            return
        src = os.open(self.image.path, os.O_RDONLY)
        try:
            dst = os.open(local, os.O_WRONLY)
            try:
                self.written = sparse.copy_sparse(src, dst, self.image.virtual_size)
                os.fsync(dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
