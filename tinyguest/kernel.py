"""Take the guest kernel and the few modules it needs out of a Debian ``linux-image-*`` package.

Why not install the package: a full install drags systemd/udev upgrades and runs mkinitramfs twice (82 s
measured on the CI machine); ``dpkg-deb --fsys-tarfile`` streamed into :mod:`tarfile` gives the same
kernel and modules in a few seconds and leaves the host untouched.

Debian ships no ``modules.dep`` in the package (``depmod`` runs at install time), so module dependencies
are read from each module's ``.modinfo`` ELF section (``depends=``) and resolved here; that keeps the
load order right when a new kernel ABI moves things around, instead of hard-coding it.
"""

from __future__ import annotations

import gzip
import lzma
import re
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Drivers the guest needs, in the order they should be loaded (dependencies get pulled in before each).
# sd_mod comes before ahci so the SATA disks already have a block driver when the port scan finishes
# (insmod waits for the driver's asynchronous probing, see do_init_module), and the ready line sees them.
WANTED_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "e1000",  # bhyve's "e1000" NIC model, also what hivectl maps it to under QEMU
    "sd_mod",
    "ahci",
    "nvme",
    "button",  # ACPI power button -> input event that acpid turns into a poweroff
    "evdev",  # exposes that input event as /dev/input/event*
)

_MOD_PATH = re.compile(r"^(?:\./)?(?:usr/)?lib/modules/([^/]+)/(.+)$")


class KernelPackageError(RuntimeError):
    """The package does not look like a Debian kernel image we can use."""


def modname(name: str) -> str:
    """Kernel module names treat '-' and '_' alike; normalise to '_' so file names and depends= agree."""
    return name.replace("-", "_")


@dataclass
class ModuleInfo:
    """What pass 1 learns about one module file."""

    name: str
    relpath: str  # below lib/modules/<release>/
    depends: list[str] = field(default_factory=list)


def _decompress_module(name: str, data: bytes) -> bytes:
    """busybox insmod wants a plain ELF; Debian 12 ships them uncompressed, newer kernels use .ko.xz."""
    if name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if name.endswith(".ko.zst"):
        raise KernelPackageError(f"{name}: zstd-compressed modules need python >= 3.14's compression.zstd")
    return data


def elf_section(data: bytes, wanted: str) -> bytes | None:
    """Return the contents of section ``wanted`` of a little-endian ELF64 file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if not shoff or shstrndx >= shnum:
        return None

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size

    _, stroff, strsize = section(shstrndx)
    strtab = data[stroff : stroff + strsize]
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = strtab.find(b"\0", name_off)
        if strtab[name_off:end].decode(errors="replace") == wanted:
            return data[offset : offset + size]
    return None


def modinfo(data: bytes) -> dict[str, str]:
    """Parse ``.modinfo`` (NUL-separated key=value) the way ``modinfo`` does; later keys win."""
    raw = elf_section(data, ".modinfo") or b""
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            out[key] = value
    return out


def load_order(wanted: Iterable[str], index: dict[str, ModuleInfo], builtin: set[str]) -> list[str]:
    """Depth-first topological order: every module after its dependencies, otherwise in ``wanted`` order.

    Built-in drivers are skipped (nothing to load); a dependency that is neither a module nor built in
    is an error, because the guest would otherwise fail at boot with a cryptic "Unknown symbol".
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = modname(name)
        if name in order or name in builtin:
            return
        if name in visiting:
            raise KernelPackageError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        info = index.get(name)
        if info is None:
            raise KernelPackageError(
                f"module {name} (needed by {' -> '.join(chain) or 'the guest'}) not found"
            )
        visiting.add(name)
        for dep in info.depends:
            visit(dep, (*chain, name))
        visiting.discard(name)
        order.append(name)

    for w in wanted:
        visit(w, ())
    return order


@dataclass
class ExtractedKernel:
    """Result of :func:`extract`: files written to the work directory plus what the recipe needs to know."""

    release: str  # `uname -r`, e.g. 6.1.0-56-amd64
    vmlinuz: Path
    config: Path | None
    modules: list[Path]  # in load order, already decompressed to plain .ko


def _stream_members(deb: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Yield the regular files of the package's data tar, streamed (the tar is ~400 MB unpacked).

    dpkg-deb's stderr is kept aside: when the caller stops early, dpkg-deb complains about the broken
    pipe, which is expected noise; it is only shown when a complete read fails.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    if member.isfile():
                        yield member, tar
        finally:
            proc.stdout.close()
            rc = proc.wait()
        # Only reached when the caller consumed everything (an early close raises GeneratorExit above).
        if rc != 0:
            err.seek(0)
            raise KernelPackageError(f"dpkg-deb --fsys-tarfile {deb} exited with {rc}: {err.read().decode()}")


def extract(deb: Path, workdir: Path, wanted: Iterable[str] = WANTED_MODULES) -> ExtractedKernel:
    """Two streaming passes over the package: index every module's dependencies, then copy the closure.

    Two passes cost a second decompression (~2 s) but avoid holding hundreds of MB of modules in memory
    or on disk just to find out which dozen we need.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    index: dict[str, ModuleInfo] = {}
    builtin: set[str] = set()
    vmlinuz: Path | None = None
    config: Path | None = None
    release = ""
    for member, tar in _stream_members(deb):
        name = member.name
        base = name.rsplit("/", 1)[-1]
        if re.fullmatch(r"(?:\./)?boot/vmlinuz-.+", name):
            release = base.removeprefix("vmlinuz-")
            vmlinuz = workdir / "vmlinuz"
            vmlinuz.write_bytes(_read(tar, member))
            continue
        if re.fullmatch(r"(?:\./)?boot/config-.+", name):
            config = workdir / "config"
            config.write_bytes(_read(tar, member))
            continue
        m = _MOD_PATH.match(name)
        if not m:
            continue
        rel = m.group(2)
        if rel == "modules.builtin":
            for line in _read(tar, member).decode().splitlines():
                builtin.add(modname(line.rsplit("/", 1)[-1].split(".ko")[0]))
        elif re.search(r"\.ko(\.xz|\.gz|\.zst)?$", rel):
            info = modinfo(_decompress_module(rel, _read(tar, member)))
            mname = modname(info.get("name") or base.split(".ko")[0])
            deps = [modname(d) for d in info.get("depends", "").split(",") if d]
            index[mname] = ModuleInfo(mname, rel, deps)
    if vmlinuz is None or not release:
        raise KernelPackageError(f"{deb}: no boot/vmlinuz-* in the package")

    order = load_order(wanted, index, builtin)
    by_rel = {index[n].relpath: n for n in order}
    moddir = workdir / "modules"
    moddir.mkdir(exist_ok=True)
    for member, tar in _stream_members(deb):
        m = _MOD_PATH.match(member.name)
        if m and m.group(2) in by_rel:
            name = by_rel.pop(m.group(2))
            (moddir / f"{name}.ko").write_bytes(_decompress_module(m.group(2), _read(tar, member)))
            if not by_rel:
                break
    if by_rel:
        raise KernelPackageError(f"modules vanished between passes: {sorted(by_rel.values())}")
    return ExtractedKernel(release, vmlinuz, config, [moddir / f"{n}.ko" for n in order])


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise KernelPackageError(f"cannot read {member.name}")
    return f.read()


def bzimage_to_vmlinux(bzimage: bytes) -> bytes:
    """Decompress the ELF ``vmlinux`` embedded in a bzImage so QEMU can boot it through the PVH entry.

    Why: under TCG, PVH skips the firmware's real-mode setup and the in-guest decompressor, which halves
    boot time (~4.5 s instead of ~9 s). The setup header says where the payload is (boot protocol 2.08+:
    ``payload_offset``/``payload_length`` at 0x248/0x24c, relative to the protected-mode code that starts
    after ``setup_sects`` + 1 sectors).
    """
    if bzimage[0x202:0x206] != b"HdrS":
        raise KernelPackageError("not a bzImage (no HdrS signature)")
    setup_sects = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = bzimage[start : start + payload_length]
    if payload.startswith(b"\xfd7zXZ\x00"):
        elf = lzma.LZMADecompressor().decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        elf = gzip.decompress(payload)
    else:
        raise KernelPackageError(f"unsupported kernel compression (payload starts {payload[:6].hex()})")
    if elf[:4] != b"\x7fELF":
        raise KernelPackageError("decompressed kernel payload is not an ELF file")
    if not has_pvh_note(elf):
        raise KernelPackageError("vmlinux has no PVH entry note (kernel built without CONFIG_PVH)")
    return elf


def has_pvh_note(elf: bytes) -> bool:
    """True if a PT_NOTE segment carries the Xen note XEN_ELFNOTE_PHYS32_ENTRY (type 18) QEMU looks for."""
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize
        )
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False
