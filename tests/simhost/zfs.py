"""``zfs`` and a minimal ``zpool`` (OpenZFS as shipped with FreeBSD 14/15; zfs(8), zpool(8)).

Datasets are records in the state, but their data is real, because hivectl writes guest files into
dataset mountpoints and expects snapshots, rollbacks, clones and send/receive to carry those files:

* a filesystem is mounted at a real directory: the pool root at ``$SIMHOST_ROOT/<pool>`` (or where the
  fixture put it), children at ``<parent mountpoint>/<child>`` unless ``mountpoint`` is set; the
  ``mountpoint`` property reports that real absolute path;
* a volume is a sparse file ``$SIMHOST_ROOT/dev/zvol/<name>`` of ``volsize`` bytes (none with
  ``volmode=none``);
* a snapshot is a copy of the filesystem's tree (without child datasets' mountpoints) or of the zvol file
  under ``$SIMHOST_ROOT/.zfs-snapshots/``; copies keep holes, so sparse disk images stay cheap;
* ``zfs send`` writes a JSON document (refused on a terminal), ``zfs recv`` reads it back.

Exit status 1 for errors, 2 for usage errors; messages follow OpenZFS wording.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import paths, state, vmm, zfs_resume
from .common import Getopt, GetoptError, ToolExit, die, run

PROG = "zfs"
STREAM_MAGIC = "simhost-zfs-stream"
TYPES = ("filesystem", "volume", "snapshot")
ALIAS_PROPS = {"avail": "available", "refer": "referenced", "compress": "compression",
               "reserv": "reservation", "refreserv": "refreservation", "volblock": "volblocksize",
               "recsize": "recordsize", "lused": "logicalused", "lrefer": "logicalreferenced",
               "ratio": "compressratio"}
# property -> (types it applies to, default, read-only, kind)
PROPS: dict[str, tuple[tuple[str, ...], str | None, bool, str]] = {
    "name": (TYPES, None, True, "string"),
    "type": (TYPES, None, True, "string"),
    "creation": (TYPES, None, True, "date"),
    "used": (TYPES, None, True, "size"),
    "available": (("filesystem", "volume"), None, True, "size"),
    "referenced": (TYPES, None, True, "size"),
    "compressratio": (TYPES, "1.00x", True, "string"),
    "mounted": (("filesystem",), None, True, "string"),
    "origin": (("filesystem", "volume"), "-", True, "string"),
    "clones": (("snapshot",), "", True, "string"),
    "guid": (TYPES, None, True, "number"),
    "createtxg": (TYPES, None, True, "number"),
    "logicalused": (TYPES, None, True, "size"),
    "logicalreferenced": (TYPES, None, True, "size"),
    "usedbysnapshots": (("filesystem", "volume"), "0", True, "size"),
    "written": (TYPES, "0", True, "size"),
    "mountpoint": (("filesystem",), None, False, "path"),
    "canmount": (("filesystem",), "on", False, "choice:on|off|noauto"),
    "quota": (("filesystem",), "none", False, "sizenone"),
    "refquota": (("filesystem",), "none", False, "sizenone"),
    "reservation": (("filesystem", "volume"), "none", False, "sizenone"),
    "refreservation": (("filesystem", "volume"), "none", False, "sizenone"),
    "recordsize": (("filesystem",), "128K", False, "blocksize"),
    "volsize": (("volume",), None, False, "size"),
    "volblocksize": (("volume",), "16K", True, "blocksize"),
    "volmode": (("volume",), "default", False, "choice:default|full|geom|dev|none"),
    "compression": (("filesystem", "volume"), "off", False,
                    "choice:on|off|lzjb|gzip|gzip-1|gzip-2|gzip-3|gzip-4|gzip-5|gzip-6|gzip-7|gzip-8|gzip-9"
                    "|zle|lz4|zstd|zstd-fast"),
    "atime": (("filesystem",), "on", False, "choice:on|off"),
    "exec": (("filesystem",), "on", False, "choice:on|off"),
    "setuid": (("filesystem",), "on", False, "choice:on|off"),
    "readonly": (("filesystem", "volume"), "off", False, "choice:on|off"),
    "sync": (("filesystem", "volume"), "standard", False, "choice:standard|always|disabled"),
    "checksum": (("filesystem", "volume"), "on", False,
                 "choice:on|off|fletcher2|fletcher4|sha256|sha512|skein|edonr|blake3"),
    "dedup": (("filesystem", "volume"), "off", False, "choice:on|off|verify|sha256|sha512|skein|blake3"),
    "copies": (("filesystem", "volume"), "1", False, "choice:1|2|3"),
    "primarycache": (("filesystem", "volume"), "all", False, "choice:all|none|metadata"),
    "secondarycache": (("filesystem", "volume"), "all", False, "choice:all|none|metadata"),
    "snapdir": (("filesystem",), "hidden", False, "choice:hidden|visible"),
    "encryption": (("filesystem", "volume"), "off", True, "string"),
    "jailed": (("filesystem",), "off", False, "choice:on|off"),
    "receive_resume_token": (("filesystem", "volume"), "-", True, "string"),
    "userrefs": (("snapshot",), "0", True, "number"),
}
RESUME = True  # this ZFS has resumable receives (zfs_resume.py); main() reads it from the state
INHERITABLE = {"compression", "atime", "exec", "setuid", "readonly", "sync", "checksum", "dedup", "copies",
               "primarycache", "secondarycache", "snapdir", "recordsize", "jailed", "volmode"}
RIGHT_ALIGNED = {"used", "available", "referenced", "volsize", "quota", "refquota", "reservation",
                 "refreservation", "recordsize", "volblocksize", "logicalused", "logicalreferenced",
                 "usedbysnapshots", "written", "compressratio", "guid", "createtxg"}
SHORT_HEADERS = {"available": "AVAIL", "referenced": "REFER", "volblocksize": "VOLBLOCK",
                 "reservation": "RESERV", "refreservation": "REFRESERV", "compression": "COMPRESS",
                 "recordsize": "RECSIZE", "compressratio": "RATIO", "logicalused": "LUSED",
                 "logicalreferenced": "LREFER", "usedbysnapshots": "USEDSNAP"}


class Usage(Exception):
    """A usage error: message, then the command's usage, exit 2."""


# ---------------------------------------------------------------------------------------------------------
# helpers: names, sizes, files


def fail(msg: str, code: int = 1) -> None:
    """Print an OpenZFS-style error (no program prefix) and exit."""
    die(None, msg, code)


def name_problem(name: str, snapshot: bool | None) -> str | None:
    """``zfs_name_valid``: None when ``name`` is a valid dataset (``snapshot`` False) or snapshot name."""
    if len(name) >= 256:
        return "name is too long"
    if name.startswith("/"):
        return "leading slash in name"
    if name.endswith("/"):
        return "trailing slash in name"
    base, at, snap = name.partition("@")
    if at and snapshot is False:
        return "snapshot delimiter '@' is not expected here"
    if not at and snapshot is True:
        return "missing '@' delimiter in snapshot name"
    if "@" in snap:
        return "multiple '@' and/or '#' delimiters in name"
    for comp in [*base.split("/"), *([snap] if at else [])]:
        if comp == "":
            return "empty component or misplaced '@' or '#' delimiter in name"
        for ch in comp:
            if not ((ch.isascii() and ch.isalnum()) or ch in "-_.: "):
                return f"invalid character '{ch}' in name"
    return None


def parse_size(text: str) -> tuple[int | None, str]:
    """``zfs_nicestrtonum``: ``20G``, ``1.5T``, ``512``, ``4KB``, ``4KiB``. Returns (value, error text)."""
    i = 0
    while i < len(text) and (text[i].isdigit() or text[i] == "."):
        i += 1
    number, suffix = text[:i], text[i:]
    if number in ("", ".") or number.count(".") > 1:
        return None, f"bad numeric value '{text}'"
    units = "BKMGTPEZ"
    shift = 0
    if suffix:
        letter = suffix[0].upper()
        tail = suffix[1:].upper()
        if letter not in units or tail not in ("", "B", "IB") or (letter == "B" and tail):
            return None, f"invalid numeric suffix '{suffix}'"
        shift = 10 * units.index(letter)
    value = int(float(number) * (1 << shift)) if "." in number else int(number) << shift
    if value >= 1 << 64:
        return None, "numeric value is too large"
    return value, ""


def nicenum(n: int) -> str:
    """``zfs_nicenum``: 1024-based, at most 5 characters (``96K``, ``1.50G``, ``20.6G``, ``0B``)."""
    units = "BKMGTPE"
    index = 0
    value = n
    while value >= 1024 and index < len(units) - 1:
        value //= 1024
        index += 1
    if index == 0 or n % (1024 ** index) == 0:
        return f"{value}{units[index]}"
    for precision in (2, 1, 0):
        text = f"{n / 1024 ** index:.{precision}f}{units[index]}"
        if len(text) <= 5:
            return text
    return text


def data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The (offset, length) pieces of a file that hold data; holes are skipped."""
    seek_data = getattr(os, "SEEK_DATA", None)
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        yield 0, size
        return
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, seek_data)
        except OSError:
            return
        end = os.lseek(fd, start, seek_hole)
        yield start, end - start
        offset = end


def copy_file(src: str, dst: str) -> None:
    """Copy keeping holes (guest disk images are large sparse files)."""
    size = os.path.getsize(src)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.truncate(size)
        for start, length in data_ranges(fin.fileno(), size):
            fin.seek(start)
            fout.seek(start)
            left = length
            while left > 0:
                chunk = fin.read(min(left, 1 << 20))
                if not chunk:
                    break
                if chunk.count(0) != len(chunk):
                    fout.write(chunk)
                else:
                    fout.seek(len(chunk), os.SEEK_CUR)
                left -= len(chunk)
    shutil.copymode(src, dst)


def copy_tree(src: str, dst: str, exclude: set[str]) -> None:
    """Copy a dataset's files; directories in ``exclude`` (child mountpoints) are copied empty."""
    os.makedirs(dst, exist_ok=True)
    shutil.copymode(src, dst)
    with os.scandir(src) as entries:
        for entry in entries:
            target = os.path.join(dst, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                if os.path.abspath(entry.path) in exclude:
                    os.makedirs(target, exist_ok=True)
                else:
                    copy_tree(entry.path, target, exclude)
            else:
                copy_file(entry.path, target)


def clear_tree(path: str, exclude: set[str]) -> None:
    """Remove a dataset's files, leaving child datasets' mountpoints alone."""
    if not os.path.isdir(path):
        return
    with os.scandir(path) as entries:
        for entry in entries:
            full = os.path.abspath(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if full in exclude:
                    continue
                if any(e.startswith(full + "/") for e in exclude):
                    clear_tree(full, exclude)
                else:
                    shutil.rmtree(full)
            else:
                os.unlink(full)


def tree_bytes(path: str, exclude: set[str]) -> int:
    """Allocated bytes below ``path`` (what ``referenced`` reports)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if os.path.abspath(os.path.join(dirpath, d)) not in exclude]
        for fname in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, fname)).st_blocks * 512
    return total


def encode_file(path: str) -> dict[str, Any]:
    """A file for the stream: size and its data pieces (base64)."""
    size = os.path.getsize(path)
    pieces: list[list[Any]] = []
    with open(path, "rb") as fh:
        for start, length in data_ranges(fh.fileno(), size):
            fh.seek(start)
            data = fh.read(length)
            if data.count(0) != len(data):
                pieces.append([start, base64.b64encode(data).decode()])
    return {"size": size, "mode": os.stat(path).st_mode & 0o7777, "data": pieces}


def decode_file(path: str, spec: dict[str, Any]) -> None:
    """Write a file from its stream form."""
    with open(path, "wb") as fh:
        fh.truncate(int(spec["size"]))
        for start, data in spec["data"]:
            fh.seek(int(start))
            fh.write(base64.b64decode(data))
    os.chmod(path, int(spec.get("mode", 0o644)))


def encode_tree(path: str, exclude: set[str]) -> dict[str, Any]:
    """A directory tree for the stream."""
    out: dict[str, Any] = {"dirs": [], "files": {}, "links": {}}
    for dirpath, dirnames, filenames in os.walk(path):
        rel = os.path.relpath(dirpath, path)
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            out["dirs"].append(os.path.normpath(os.path.join(rel, d)))
            if os.path.islink(full):
                out["links"][os.path.normpath(os.path.join(rel, d))] = os.readlink(full)
            elif os.path.abspath(full) not in exclude:
                keep.append(d)
        dirnames[:] = keep
        for fname in sorted(filenames):
            full = os.path.join(dirpath, fname)
            key = os.path.normpath(os.path.join(rel, fname))
            if os.path.islink(full):
                out["links"][key] = os.readlink(full)
            else:
                out["files"][key] = encode_file(full)
    out["dirs"] = [d for d in out["dirs"] if d not in out["links"]]
    return out


def decode_tree(path: str, spec: dict[str, Any]) -> None:
    """Recreate a tree from its stream form."""
    os.makedirs(path, exist_ok=True)
    for rel in spec["dirs"]:
        os.makedirs(os.path.join(path, rel), exist_ok=True)
    for rel, target in spec["links"].items():
        os.symlink(target, os.path.join(path, rel))
    for rel, fspec in spec["files"].items():
        decode_file(os.path.join(path, rel), fspec)


# ---------------------------------------------------------------------------------------------------------
# the dataset model


class Pool:
    """Operations on the dataset records of one state document."""

    def __init__(self, st: dict[str, Any]) -> None:
        self.st = st
        self.ds: dict[str, dict[str, Any]] = st["datasets"]

    # -- lookups ------------------------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return name in self.ds

    def kind(self, name: str) -> str:
        return str(self.ds[name]["type"])

    @staticmethod
    def parent(name: str) -> str | None:
        if "@" in name:
            return name.split("@", 1)[0]
        return name.rsplit("/", 1)[0] if "/" in name else None

    def children(self, name: str) -> list[str]:
        """Direct child datasets (not snapshots), sorted."""
        return sorted(n for n in self.ds if "@" not in n and self.parent(n) == name)

    def snapshots(self, name: str) -> list[str]:
        """Snapshots of ``name`` in creation order."""
        snaps = [n for n in self.ds if n.startswith(name + "@")]
        return sorted(snaps, key=lambda n: self.ds[n]["createtxg"])

    def descendants(self, name: str) -> list[str]:
        """Child datasets at any depth (no snapshots), parents first."""
        return sorted((n for n in self.ds if "@" not in n and n.startswith(name + "/")),
                      key=lambda n: (n.count("/"), n))

    def clones_of(self, snap: str) -> list[str]:
        return sorted(n for n, rec in self.ds.items() if rec.get("origin") == snap)

    def next_txg(self) -> int:
        self.st["txg"] += 1
        return int(self.st["txg"])

    # -- properties -------------------------------------------------------------------------------------

    def local(self, name: str, prop: str) -> str | None:
        value = self.ds[name].get("props", {}).get(prop)
        return None if value is None else str(value)

    def prop_source(self, name: str, prop: str) -> tuple[str | None, str]:
        """(value, source) for settable and inheritable properties."""
        rec = self.ds[name]
        if prop in rec.get("props", {}):
            return str(rec["props"][prop]), "local"
        if prop in rec.get("defaults", {}):
            return str(rec["defaults"][prop]), "default"
        if prop == "mountpoint":
            node: str | None = name
            value: str | None = None
            while node is not None:
                here = self.ds[node]
                if "mountpoint" in here.get("props", {}):
                    value = str(here["props"]["mountpoint"])
                    break
                if "mountpoint" in here.get("defaults", {}):
                    value = str(here["defaults"]["mountpoint"])
                    break
                node = self.parent(node)
            if node is None or value is None:
                return None, "-"
            source = f"inherited from {node}"
            if value in ("none", "legacy"):
                return value, source
            return f"{value.rstrip('/')}/{name[len(node) + 1:]}", source
        if prop in INHERITABLE or ":" in prop:
            node = self.parent(name) if "@" not in name else name.split("@")[0]
            while node is not None:
                if prop in self.ds[node].get("props", {}):
                    return str(self.ds[node]["props"][prop]), f"inherited from {node}"
                node = self.parent(node)
        if ":" in prop:
            return None, "-"
        return PROPS[prop][1], "default"

    def mount_path(self, name: str) -> str | None:
        """The real directory a filesystem is mounted on, or None (volume, snapshot, none, legacy)."""
        if "@" in name or self.kind(name) != "filesystem" or self.ds[name].get("partial"):
            return None
        value, _ = self.prop_source(name, "mountpoint")
        canmount, _ = self.prop_source(name, "canmount")
        if value is None or not value.startswith("/") or canmount != "on":
            return None
        return os.path.normpath(value)

    def all_mounts(self) -> dict[str, str]:
        out = {}
        for name in self.ds:
            path = self.mount_path(name)
            if path is not None:
                out[name] = path
        return out

    def excludes(self, name: str) -> set[str]:
        """Mountpoints of other datasets: not part of ``name``'s files."""
        mine = self.mount_path(name)
        return {p for n, p in self.all_mounts().items() if n != name and p != mine}

    def zvol(self, name: str) -> Path:
        return paths.root() / "dev" / "zvol" / name

    def snapstore(self, snap: str) -> Path:
        return paths.root() / ".zfs-snapshots" / snap.replace("/", "%")

    def parked(self, name: str) -> Path:
        return paths.root() / ".zfs-unmounted" / name.replace("/", "%")

    # -- sizes ------------------------------------------------------------------------------------------

    def referenced(self, name: str) -> int:
        rec = self.ds[name]
        if rec["type"] == "snapshot":
            store = self.snapstore(name)
            if store.is_dir():
                return tree_bytes(str(store), set()) + 96 * 1024
            return store.stat().st_blocks * 512 if store.exists() else 0
        if rec["type"] == "volume":
            node = self.zvol(name)
            return node.stat().st_blocks * 512 + 56 * 1024 if node.exists() else 56 * 1024
        path = self.mount_path(name) or str(self.parked(name))
        return tree_bytes(path, self.excludes(name)) + 96 * 1024 if os.path.isdir(path) else 96 * 1024

    def used(self, name: str) -> int:
        rec = self.ds[name]
        if rec["type"] == "snapshot":
            return 0
        total = self.referenced(name)
        refres = self.local(name, "refreservation")
        if refres not in (None, "none"):
            total = max(total, int(refres or 0))
        for child in self.children(name):
            total += self.used(child)
        return total

    def pool_of(self, name: str) -> str:
        return name.split("/")[0].split("@")[0]

    def available(self, name: str) -> int:
        pool = self.pool_of(name)
        size = int(self.st["pools"][pool]["size"])
        return max(0, size - self.used(pool))

    def value(self, name: str, prop: str, parsable: bool) -> tuple[str, str]:
        """(display value, source) of any property for ``zfs get``/``zfs list``."""
        rec = self.ds[name]
        kind = rec["type"]
        if ":" not in prop and kind not in PROPS[prop][0]:
            return "-", "-"
        size = (lambda n: str(n)) if parsable else nicenum
        if prop == "name":
            return name, "-"
        if prop == "type":
            return kind, "-"
        if prop == "creation":
            stamp = int(rec["creation"])
            shown = str(stamp) if parsable else time.strftime("%a %b %e %H:%M %Y", time.localtime(stamp))
            return shown, "-"
        if prop in ("used", "logicalused"):
            return size(self.used(name)), "-"
        if prop in ("referenced", "logicalreferenced"):
            return size(self.referenced(name)), "-"
        if prop == "available":
            return size(self.available(name)), "-"
        if prop == "mounted":
            return ("yes" if self.mount_path(name) else "no"), "-"
        if prop == "origin":
            return rec.get("origin") or "-", "-"
        if prop == "clones":
            return ",".join(self.clones_of(name)), "-"
        if prop in ("guid", "createtxg"):
            return str(rec[prop]), "-"
        if prop == "receive_resume_token":
            return zfs_resume.token_of(name), "-"
        if prop == "userrefs":
            return str(len(rec.get("holds", {}))), "-"
        if prop in ("compressratio",):
            return "1.00" if parsable else "1.00x", "-"
        if prop in ("usedbysnapshots", "written"):
            return size(0), "-"
        if prop == "encryption":
            return "off", "default"
        if prop == "volsize":
            return size(int(self.local(name, "volsize") or 0)), "local"
        if prop == "volblocksize":
            return size(int(rec.get("volblocksize", 16384))), "-"
        value, source = self.prop_source(name, prop)
        if value is None:
            return "-", "-"
        if PROPS.get(prop, ((), None, False, ""))[3] in ("size", "sizenone", "blocksize") and value != "none":
            try:
                return size(int(value)), source
            except ValueError:
                return value, source
        return value, source


def check_value(prop: str, value: str) -> tuple[str | None, str]:
    """Validate a settable property value; returns (stored value, error text)."""
    kind = PROPS[prop][3]
    if kind.startswith("choice:"):
        choices = kind[len("choice:"):].split("|")
        if value not in choices and not (prop == "compression" and value.startswith("zstd-")):
            return None, f"'{prop}' must be one of '{' | '.join(choices)}'"
        return value, ""
    if kind == "path":
        if value in ("none", "legacy") or value.startswith("/"):
            return value, ""
        return None, "'mountpoint' must be an absolute path, 'none', or 'legacy'"
    if kind in ("size", "sizenone", "blocksize"):
        if kind == "sizenone" and value == "none":
            return value, ""
        number, why = parse_size(value)
        if number is None:
            return None, why or f"bad numeric value '{value}'"
        if kind == "blocksize" and (number & (number - 1) or not 512 <= number <= (1 << 20)):
            return None, f"'{prop}' must be power of 2 from 512B to 1M"
        return str(number), ""
    return value, ""


def prop_name(text: str) -> str | None:
    """Canonical property name, or None if unknown (user properties contain a colon)."""
    if ":" in text:
        return text
    text = ALIAS_PROPS.get(text, text)
    if text == "receive_resume_token" and not RESUME:
        return None
    return text if text in PROPS else None


# ---------------------------------------------------------------------------------------------------------
# mounts: keep real directories in step with mountpoint/canmount


def remount(pool: Pool, before: dict[str, str]) -> None:
    """Move filesystems whose mount directory changed; unmounted data is parked under the root."""
    after = pool.all_mounts()
    names = sorted(set(before) | set(after), key=lambda n: n.count("/"))
    moved: list[tuple[str, str]] = []
    for name in names:
        old = before.get(name)
        new = after.get(name)
        for src, dst in moved:
            if old is not None and old.startswith(src + "/"):
                old = dst + old[len(src):]
        if old == new:
            continue
        source = old if old is not None else str(pool.parked(name))
        target = new if new is not None else str(pool.parked(name))
        if os.path.isdir(source) and name in pool.ds:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(target) and not os.listdir(target):
                os.rmdir(target)
            os.rename(source, target)
            moved.append((source, target))
        elif new is not None:
            os.makedirs(new, exist_ok=True)


# ---------------------------------------------------------------------------------------------------------
# subcommands

USAGES = {
    "create": "\tcreate [-Pnpuv] [-o property=value] ... <filesystem>\n"
              "\tcreate [-Pnpsv] [-b blocksize] [-o property=value] ... -V <size> <volume>",
    "destroy": "\tdestroy [-fnpRrv] <filesystem|volume>\n"
               "\tdestroy [-dnpRrv] <filesystem|volume>@<snap>[%<snap>][,...]",
    "snapshot": "\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...",
    "rollback": "\trollback [-rRf] <snapshot>",
    "clone": "\tclone [-p] [-o property=value] ... <snapshot> <filesystem|volume>",
    "rename": "\trename [-f] <filesystem|volume|snapshot> <filesystem|volume|snapshot>\n"
              "\trename -p [-f] <filesystem|volume> <filesystem|volume>\n"
              "\trename -r <snapshot> <snapshot>",
    "list": "\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...\n"
            "\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...",
    "get": "\tget [-rHp] [-d max] [-o \"all\" | field[,...]]\n"
           "\t    [-t type[,...]] [-s source[,...]]\n"
           "\t    <\"all\" | property[,...]> [filesystem|volume|snapshot|bookmark] ...",
    "set": "\tset [-u] <property=value> ... <filesystem|volume|snapshot> ...",
    "inherit": "\tinherit [-rS] <property> <filesystem|volume|snapshot> ...",
    "send": "\tsend [-DLPbcehnpsvw] [-i|-I snapshot] [-R [-X dataset[,dataset]...]] <snapshot>\n"
            "\tsend [-Penv] -t <receive_resume_token>",
    "hold": "\thold [-r] <tag> <snapshot> ...",
    "release": "\trelease [-r] <tag> <snapshot> ...",
    "holds": "\tholds [-rHp] <snapshot> ...",
    "receive": "\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ...\n"
               "\t    <filesystem|volume|snapshot>",
}


def usage(cmd: str | None, message: str | None = None) -> None:
    """OpenZFS prints the message, then the command's usage, and exits 2."""
    if message:
        print(message, file=sys.stderr)
    if cmd is None:
        print("usage: zfs command args ...\nwhere 'command' is one of the following:\n", file=sys.stderr)
        print("\n".join(USAGES.values()), file=sys.stderr)
    else:
        print(f"usage:\n{USAGES[cmd]}", file=sys.stderr)
    raise ToolExit(2)


def getopts(cmd: str, args: list[str], optstring: str) -> tuple[list[tuple[str, str]], list[str]]:
    """BSD getopt (FreeBSD's zfs does not permute); errors become usage errors."""
    parser = Getopt(args, optstring)
    opts: list[tuple[str, str]] = []
    try:
        for opt, val in parser:
            opts.append((opt, val or ""))
    except GetoptError as exc:
        text = str(exc)
        letter = text[-1]
        if text.startswith("illegal"):
            usage(cmd, f"invalid option '{letter}'")
        usage(cmd, f"missing argument for '{letter}' option")
    return opts, parser.operands


def need(pool: Pool, name: str) -> None:
    if not pool.exists(name):
        fail(f"cannot open '{name}': dataset does not exist")


def busy_files(st: dict[str, Any]) -> list[str]:
    """Files held open by running bhyve processes (zvols, disk images)."""
    out: list[str] = []
    for rec in vmm.live_running(st).values():
        out.extend(rec.get("files", []))
    return out


def parse_props(cmd: str, opts: list[tuple[str, str]]) -> dict[str, str]:
    props: dict[str, str] = {}
    for opt, val in opts:
        if opt != "o":
            continue
        key, sep, value = val.partition("=")
        if not sep:
            usage(cmd, "missing '=' for property=value argument")
        if key in props:
            usage(cmd, f"property '{key}' specified multiple times")
        props[key] = value
    return props


def apply_props(pool: Pool, name: str, kind: str, props: dict[str, str], verb: str) -> dict[str, str]:
    """Validate ``-o`` properties for a new dataset; returns canonical name -> stored value."""
    out: dict[str, str] = {}
    for key, value in props.items():
        canon = prop_name(key)
        if canon is None:
            fail(f"cannot {verb} '{name}': invalid property '{key}'")
        assert canon is not None
        if ":" in canon:
            out[canon] = value
            continue
        if kind not in PROPS[canon][0]:
            fail(f"cannot {verb} '{name}': '{canon}' does not apply to datasets of this type")
        if PROPS[canon][2] and canon != "volblocksize":
            fail(f"cannot {verb} '{name}': '{canon}' is readonly")
        stored, why = check_value(canon, value)
        if stored is None:
            fail(f"cannot {verb} '{name}': {why}")
        assert stored is not None
        out[canon] = stored
    return out


def new_record(pool: Pool, kind: str, props: dict[str, str]) -> dict[str, Any]:
    txg = pool.next_txg()
    return {"type": kind, "props": props, "creation": int(time.time()), "createtxg": txg,
            "guid": int.from_bytes(os.urandom(8), "big") >> 1}


def prune_zvol_dirs(node: Path) -> None:
    """devfs shows ``/dev/zvol/pool/ds/`` directories only while a zvol lives below them."""
    top = paths.root() / "dev" / "zvol"
    parent = node.parent
    while parent != top and top in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def make_volume_node(pool: Pool, name: str) -> None:
    """The /dev/zvol node: a sparse file of volsize bytes, absent with volmode=none."""
    node = pool.zvol(name)
    mode, _ = pool.prop_source(name, "volmode")
    if mode == "none":
        return
    node.parent.mkdir(parents=True, exist_ok=True)
    with open(node, "ab") as fh:
        fh.truncate(int(pool.local(name, "volsize") or 0))


def cmd_create(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("create", args, "PnpuvsV:b:o:")
    flags = {o for o, _ in opts}
    props = parse_props("create", opts)
    if not rest:
        usage("create", "missing filesystem argument")
    if len(rest) > 1:
        usage("create", "too many arguments")
    name = rest[0]
    volsize: int | None = None
    for opt, val in opts:
        if opt == "V":
            volsize, why = parse_size(val)
            if volsize is None:
                fail(f"bad volume size '{val}': {why}")
            if volsize == 0:
                fail(f"bad volume size '{val}': cannot be zero")
        elif opt == "b":
            props["volblocksize"] = val
    kind = "volume" if volsize is not None else "filesystem"
    if "s" in flags and kind != "volume":
        usage("create", "'-s' and '-b' can only be used when creating a volume")
    problem = name_problem(name, False)
    if problem:
        fail(f"cannot create '{name}': {problem}")
    pool_name = name.split("/")[0]
    if pool_name not in pool.st["pools"]:
        fail(f"cannot create '{name}': no such pool '{pool_name}'")
    if "/" not in name:
        fail(f"cannot create '{name}': missing dataset name")
    if pool.exists(name):
        fail(f"cannot create '{name}': dataset already exists")
    parent = pool.parent(name)
    assert parent is not None
    stored = apply_props(pool, name, kind, props, "create")
    if not pool.exists(parent):
        if "p" not in flags:
            fail(f"cannot create '{name}': parent does not exist")
        missing = []
        node: str | None = parent
        while node is not None and not pool.exists(node):
            missing.append(node)
            node = pool.parent(node)
        if node is not None and pool.kind(node) != "filesystem":
            fail(f"cannot create '{name}': parent is not a filesystem")
        before = pool.all_mounts()
        for ancestor in reversed(missing):
            pool.ds[ancestor] = new_record(pool, "filesystem", {})
        remount(pool, before)
    elif pool.kind(parent) != "filesystem":
        fail(f"cannot create '{name}': parent is not a filesystem")
    if "n" in flags:
        return 0
    if kind == "volume":
        assert volsize is not None
        block = int(stored.pop("volblocksize", 16384))
        if volsize % block:
            fail(f"cannot create '{name}': volume size must be a multiple of volume block size")
        stored["volsize"] = str(volsize)
        if "s" not in flags and "refreservation" not in stored:
            stored["refreservation"] = str(volsize)
        rec = new_record(pool, "volume", stored)
        rec["volblocksize"] = block
        pool.ds[name] = rec
        make_volume_node(pool, name)
        return 0
    before = pool.all_mounts()
    pool.ds[name] = new_record(pool, "filesystem", stored)
    remount(pool, before)
    if "u" in flags:
        return 0
    return 0


def _destroy_one(pool: Pool, name: str) -> None:
    """Remove one dataset or snapshot and its data."""
    rec = pool.ds[name]
    if rec["type"] == "snapshot":
        store = pool.snapstore(name)
        if store.is_dir():
            shutil.rmtree(store)
        elif store.exists():
            store.unlink()
    elif rec["type"] == "volume":
        node = pool.zvol(name)
        if node.exists():
            node.unlink()
            prune_zvol_dirs(node)
    else:
        path = pool.mount_path(name)
        if path and os.path.isdir(path):
            clear_tree(path, pool.excludes(name))
            if not os.listdir(path):
                os.rmdir(path)
        parked = pool.parked(name)
        if parked.is_dir():
            shutil.rmtree(parked)
    del pool.ds[name]


def _busy(pool: Pool, names: list[str], force: bool) -> None:
    files = busy_files(pool.st)
    for name in names:
        if name not in pool.ds or "@" in name:
            continue
        if pool.kind(name) == "volume" and str(pool.zvol(name)) in files:
            fail(f"cannot destroy '{name}': dataset is busy")
        path = pool.mount_path(name)
        if path and not force and any(f == path or f.startswith(path + "/") for f in files):
            fail(f"cannot unmount '{path}': pool or dataset is busy")


def _dependents(pool: Pool, names: list[str]) -> list[str]:
    """Clones (and their own descendants and snapshots) of any snapshot in ``names``."""
    out: list[str] = []
    for name in names:
        if "@" in name:
            for clone in pool.clones_of(name):
                if clone not in names and clone not in out:
                    out.append(clone)
                    out.extend(x for x in _tree(pool, clone) if x not in out and x != clone)
    return out


def _tree(pool: Pool, name: str) -> list[str]:
    """``name``, its descendants and all their snapshots, deepest first."""
    items = [name, *pool.descendants(name)]
    full: list[str] = []
    for item in items:
        full.append(item)
        full.extend(pool.snapshots(item))
    return sorted(full, key=lambda n: (-n.split("@")[0].count("/"), "@" not in n, n))


def cmd_destroy(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("destroy", args, "dfnpRrv")
    flags = {o for o, _ in opts}
    if not rest:
        usage("destroy", "missing dataset argument")
    if len(rest) > 1:
        usage("destroy", "too many arguments")
    target = rest[0]
    recursive = "r" in flags or "R" in flags
    if "@" in target:
        base, _, snaps = target.partition("@")
        need(pool, base)
        victims: list[str] = []
        for snap in snaps.split(","):
            for ds in [base, *(pool.descendants(base) if recursive else [])]:
                if pool.exists(f"{ds}@{snap}"):
                    victims.append(f"{ds}@{snap}")
        if not victims:
            fail("could not find any snapshots to destroy; check snapshot names.")
        deps = _dependents(pool, victims)
        if deps and "R" not in flags:
            first = next(v for v in victims if pool.clones_of(v))
            fail(f"cannot destroy '{first}': snapshot has dependent clones\n"
                 f"use '-R' to destroy the following datasets:\n" + "\n".join(deps))
        everything = [*deps, *victims]
    else:
        need(pool, target)
        if "/" not in target:
            fail(f"cannot destroy '{target}': operation does not apply to pools\n"
                 f"use 'zfs destroy -r {target}' to destroy all datasets in the pool\n"
                 f"use 'zpool destroy {target}' to destroy the pool itself")
        tree = _tree(pool, target)
        inner = [n for n in tree if n != target]
        if inner and not recursive:
            what = "volume" if pool.kind(target) == "volume" else "filesystem"
            fail(f"cannot destroy '{target}': {what} has children\n"
                 f"use '-r' to destroy the following datasets:\n" + "\n".join(sorted(inner)))
        deps = [d for d in _dependents(pool, tree) if d not in tree]
        if deps and "R" not in flags:
            fail(f"cannot destroy '{target}': filesystem has dependent clones\n"
                 f"use '-R' to destroy the following datasets:\n" + "\n".join(deps))
        everything = [*deps, *tree]
    _busy(pool, everything, "f" in flags)
    busy = zfs_resume.held(pool, everything)
    if busy is not None:
        fail(f"cannot destroy snapshot {busy}: dataset is busy")
    ordered = sorted(dict.fromkeys(everything),
                     key=lambda n: ("@" not in n, -n.split("@")[0].count("/")))
    ordered = [n for n in ordered if "@" in n] + [n for n in ordered if "@" not in n]
    for name in ordered:
        if "n" in flags or "v" in flags:
            print(f"{'would destroy' if 'n' in flags else 'will destroy'} {name}")
        if "n" not in flags and name in pool.ds:
            _destroy_one(pool, name)
    return 0


def take_snapshot(pool: Pool, name: str, snap: str, txg: int | None = None) -> None:
    """Copy the dataset's current data into the snapshot store (``-r`` snapshots share one txg)."""
    full = f"{name}@{snap}"
    store = pool.snapstore(full)
    store.parent.mkdir(parents=True, exist_ok=True)
    if pool.kind(name) == "volume":
        node = pool.zvol(name)
        if node.exists():
            copy_file(str(node), str(store))
        else:
            store.write_bytes(b"")
    else:
        path = pool.mount_path(name) or str(pool.parked(name))
        if os.path.isdir(path):
            copy_tree(path, str(store), pool.excludes(name))
        else:
            store.mkdir(parents=True, exist_ok=True)
    pool.ds[full] = new_record(pool, "snapshot", {})
    if txg is not None:
        pool.ds[full]["createtxg"] = txg


def cmd_snapshot(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("snapshot", args, "ro:")
    flags = {o for o, _ in opts}
    props = parse_props("snapshot", opts)
    if not rest:
        usage("snapshot", "missing snapshot argument")
    todo: list[tuple[str, str]] = []
    for target in rest:
        problem = name_problem(target, True)
        if problem:
            fail(f"cannot create snapshot '{target}': {problem}")
        base, _, snap = target.partition("@")
        if not pool.exists(base):
            fail(f"cannot create snapshot '{target}': dataset does not exist")
        for ds in [base, *(pool.descendants(base) if "r" in flags else [])]:
            if pool.exists(f"{ds}@{snap}"):
                fail(f"cannot create snapshot '{ds}@{snap}': dataset already exists")
            todo.append((ds, snap))
    for key in props:
        if ":" not in key:
            fail(f"cannot create snapshot '{rest[0]}': invalid property '{key}'")
    txg = pool.next_txg()
    for ds, snap in todo:
        take_snapshot(pool, ds, snap, txg)
        pool.ds[f"{ds}@{snap}"]["props"].update(props)
    return 0


def restore(pool: Pool, name: str, snap: str) -> None:
    """Put a snapshot's data back into the live dataset."""
    store = pool.snapstore(snap)
    if pool.kind(name) == "volume":
        node = pool.zvol(name)
        if node.exists() and store.exists():
            copy_file(str(store), str(node))
        return
    path = pool.mount_path(name) or str(pool.parked(name))
    clear_tree(path, pool.excludes(name))
    if store.is_dir():
        copy_tree(str(store), path, set())


def cmd_rollback(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("rollback", args, "rRf")
    flags = {o for o, _ in opts}
    if not rest:
        usage("rollback", "missing dataset argument")
    if len(rest) > 1:
        usage("rollback", "too many arguments")
    target = rest[0]
    if "@" not in target:
        fail(f"cannot open '{target}': operation not applicable to datasets of this type")
    need(pool, target)
    base = target.split("@")[0]
    txg = pool.ds[target]["createtxg"]
    newer = [s for s in pool.snapshots(base) if pool.ds[s]["createtxg"] > txg]
    if newer and not ("r" in flags or "R" in flags):
        fail(f"cannot rollback to '{target}': more recent snapshots or bookmarks exist\n"
             f"use '-r' to force deletion of the following snapshots and bookmarks:\n" + "\n".join(newer))
    clones = _dependents(pool, newer)
    if clones and "R" not in flags:
        fail(f"cannot rollback to '{target}': clones of previous snapshots exist\n"
             f"use '-R' to force deletion of the following clones and dependents:\n" + "\n".join(clones))
    if pool.kind(base) == "volume" and str(pool.zvol(base)) in busy_files(pool.st):
        fail(f"cannot rollback '{base}': dataset is busy")
    for name in [*clones, *reversed(newer)]:
        if name in pool.ds:
            for sub in _tree(pool, name) if "@" not in name else [name]:
                _destroy_one(pool, sub)
    restore(pool, base, target)
    return 0


def cmd_clone(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("clone", args, "po:")
    flags = {o for o, _ in opts}
    props = parse_props("clone", opts)
    if len(rest) < 2:
        usage("clone", "missing source dataset argument" if not rest else "missing target dataset argument")
    if len(rest) > 2:
        usage("clone", "too many arguments")
    snap, target = rest
    if "@" not in snap:
        fail(f"cannot open '{snap}': operation not applicable to datasets of this type")
    need(pool, snap)
    problem = name_problem(target, False)
    if problem:
        fail(f"cannot create '{target}': {problem}")
    if pool.pool_of(target) != pool.pool_of(snap):
        fail(f"cannot create '{target}': source and target pools differ")
    if pool.exists(target):
        fail(f"cannot create '{target}': dataset already exists")
    parent = pool.parent(target)
    if parent is None or not pool.exists(parent):
        if "p" not in flags or parent is None:
            fail(f"cannot create '{target}': parent does not exist")
        cmd_create(pool, ["-p", parent])
    base = snap.split("@")[0]
    kind = pool.kind(base)
    stored = apply_props(pool, target, kind, props, "create")
    before = pool.all_mounts()
    rec = new_record(pool, kind, stored)
    rec["origin"] = snap
    if kind == "volume":
        rec["props"].setdefault("volsize", pool.local(base, "volsize") or "0")
        rec["volblocksize"] = pool.ds[base].get("volblocksize", 16384)
        for key in ("volmode",):
            if pool.local(base, key) is not None:
                rec["props"].setdefault(key, pool.local(base, key))
        pool.ds[target] = rec
        make_volume_node(pool, target)
        store = pool.snapstore(snap)
        if store.exists() and pool.zvol(target).exists():
            copy_file(str(store), str(pool.zvol(target)))
        return 0
    pool.ds[target] = rec
    remount(pool, before)
    path = pool.mount_path(target) or str(pool.parked(target))
    store = pool.snapstore(snap)
    if store.is_dir():
        copy_tree(str(store), path, set())
    return 0


def cmd_rename(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("rename", args, "fpru")
    flags = {o for o, _ in opts}
    if len(rest) != 2:
        usage("rename", "missing target dataset argument" if len(rest) < 2 else "too many arguments")
    old, new = rest
    need(pool, old)
    if "@" in old:
        if new.startswith("@"):
            new = old.split("@")[0] + new
        if "@" not in new or new.split("@")[0] != old.split("@")[0]:
            fail("cannot rename to '" + new + "': snapshots must be part of same dataset")
        if pool.exists(new):
            fail(f"cannot rename to '{new}': dataset already exists")
        old_snap, new_snap = old.split("@")[1], new.split("@")[1]
        bases = [old.split("@")[0], *(pool.descendants(old.split("@")[0]) if "r" in flags else [])]
        for base in bases:
            src, dst = f"{base}@{old_snap}", f"{base}@{new_snap}"
            if src in pool.ds:
                pool.ds[dst] = pool.ds.pop(src)
                if pool.snapstore(src).exists():
                    os.rename(pool.snapstore(src), pool.snapstore(dst))
                for rec in pool.ds.values():
                    if rec.get("origin") == src:
                        rec["origin"] = dst
        return 0
    problem = name_problem(new, False)
    if problem:
        fail(f"cannot rename to '{new}': {problem}")
    if pool.pool_of(new) != pool.pool_of(old):
        fail(f"cannot rename to '{new}': datasets must be within same pool")
    if new.startswith(old + "/"):
        fail(f"cannot rename to '{new}': New dataset name cannot be a descendant of current dataset name")
    if pool.exists(new):
        fail(f"cannot rename to '{new}': dataset already exists")
    parent = pool.parent(new)
    if parent is None:
        fail(f"cannot rename to '{new}': operation does not apply to pools")
    assert parent is not None
    if not pool.exists(parent):
        if "p" not in flags:
            fail(f"cannot rename to '{new}': parent does not exist")
        cmd_create(pool, ["-p", parent])
    files = busy_files(pool.st)
    if pool.kind(old) == "volume" and str(pool.zvol(old)) in files:
        fail(f"cannot rename '{old}': dataset is busy")
    before = pool.all_mounts()
    moved = [n for n in list(pool.ds) if n == old or n.startswith((old + "/", old + "@"))]
    renames = {n: new + n[len(old):] for n in moved}
    for src, dst in renames.items():
        if src in before:
            before[dst] = before.pop(src)
    for src, dst in renames.items():
        pool.ds[dst] = pool.ds.pop(src)
        if "@" in src and pool.snapstore(src).exists():
            os.rename(pool.snapstore(src), pool.snapstore(dst))
        if pool.ds[dst]["type"] == "volume" and pool.zvol(src).exists():
            pool.zvol(dst).parent.mkdir(parents=True, exist_ok=True)
            os.rename(pool.zvol(src), pool.zvol(dst))
            prune_zvol_dirs(pool.zvol(src))
        if pool.parked(src).exists():
            os.rename(pool.parked(src), pool.parked(dst))
    for rec in pool.ds.values():
        if rec.get("origin") in renames:
            rec["origin"] = renames[rec["origin"]]
    remount(pool, before)
    return 0


def select(pool: Pool, roots: list[str], types: set[str], depth: int | None) -> list[str]:
    """Datasets for ``list``/``get``: each root and (with a depth) what lies below it."""
    out: list[str] = []
    for root_name in roots:
        base_depth = root_name.count("/")
        if "@" in root_name:
            out.append(root_name)
            continue
        candidates = [root_name]
        if depth is not None:
            candidates += [d for d in pool.descendants(root_name) if d.count("/") - base_depth <= depth]
        for ds in candidates:
            if pool.kind(ds) in types:
                out.append(ds)
            level = ds.count("/") - base_depth + 1
            only_snapshots = depth is None and ds == root_name and types == {"snapshot"}
            if "snapshot" in types and (only_snapshots or (depth is not None and level <= depth)):
                out.extend(pool.snapshots(ds))
    return list(dict.fromkeys(out))


def sort_key(pool: Pool) -> Any:
    def key(name: str) -> tuple[Any, ...]:
        base, at, _ = name.partition("@")
        return (base.split("/"), bool(at), pool.ds[name]["createtxg"] if at else 0)

    return key


def parse_types(cmd: str, text: str) -> set[str]:
    out: set[str] = set()
    for word in text.split(","):
        mapped = {"filesystem": "filesystem", "fs": "filesystem", "volume": "volume", "vol": "volume",
                  "snapshot": "snapshot", "snap": "snapshot", "bookmark": "bookmark",
                  "all": "all"}.get(word)
        if mapped is None:
            usage(cmd, f"invalid type '{word}'")
        if mapped == "all":
            out.update(TYPES)
        elif mapped:
            out.add(mapped)
    return out


def table(rows: list[list[str]], headers: list[str] | None, right: list[bool], scripted: bool) -> None:
    """Print TAB-separated (``-H``) or aligned columns with a header."""
    if scripted:
        for row in rows:
            print("\t".join(row))
        return
    all_rows = ([headers] if headers else []) + rows
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))] if all_rows else []
    for row in all_rows:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if right[i]:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        print("  ".join(cells))


def cmd_list(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("list", args, "HSd:o:prs:t:")
    scripted = any(o == "H" for o, _ in opts)
    parsable = any(o == "p" for o, _ in opts)
    columns = ["name", "used", "available", "referenced", "mountpoint"]
    types = {"filesystem", "volume"}
    depth: int | None = None
    sorts: list[tuple[str, bool]] = []
    for opt, val in opts:
        if opt == "o":
            columns = []
            for word in val.split(","):
                canon = "name" if word == "name" else prop_name(word)
                if canon is None:
                    usage("list", f"bad property list: invalid property '{word}'")
                assert canon is not None
                columns.append(canon)
        elif opt == "t":
            types = parse_types("list", val)
        elif opt == "r":
            depth = 1 << 30 if depth is None else depth
        elif opt == "d":
            if not val.isdigit():
                usage("list", f"invalid depth '{val}'")
            depth = int(val)
        elif opt in ("s", "S"):
            canon = prop_name(val)
            if canon is None:
                usage("list", f"invalid property '{val}'")
            sorts.append((canon or val, opt == "S"))
    status = 0
    roots: list[str] = []
    for name in rest:
        if not pool.exists(name):
            print(f"cannot open '{name}': dataset does not exist", file=sys.stderr)
            status = 1
            continue
        roots.append(name)
    if not rest:
        roots = sorted(n for n in pool.ds if "/" not in n and "@" not in n)
        depth = 1 << 30 if depth is None else depth
    names = sorted(select(pool, roots, types, depth), key=sort_key(pool))
    for prop, desc in reversed(sorts):
        names.sort(key=lambda n, p=prop: _sortable(pool, n, p), reverse=desc)
    rows = [[pool.value(n, c, parsable)[0] for c in columns] for n in names]
    if not rows and not rest:
        print("no datasets available", file=sys.stderr)
        return status
    headers = [SHORT_HEADERS.get(c, c.upper()) for c in columns]
    table(rows, headers, [c in RIGHT_ALIGNED for c in columns], scripted)
    return status


def _sortable(pool: Pool, name: str, prop: str) -> Any:
    text = pool.value(name, prop, True)[0]
    try:
        return (0, int(text), "")
    except ValueError:
        return (1, 0, text)


def cmd_get(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("get", args, "d:o:Hprs:t:")
    scripted = any(o == "H" for o, _ in opts)
    parsable = any(o == "p" for o, _ in opts)
    fields = ["name", "property", "value", "source"]
    types = set(TYPES)
    depth: int | None = None
    sources: set[str] | None = None
    for opt, val in opts:
        if opt == "o":
            fields = val.split(",")
            for field in fields:
                if field not in ("name", "property", "value", "source", "received", "all"):
                    usage("get", f"invalid column name '{field}'")
            if "all" in fields:
                fields = ["name", "property", "value", "received", "source"]
        elif opt == "t":
            types = parse_types("get", val)
        elif opt == "r":
            depth = 1 << 30
        elif opt == "d":
            depth = int(val) if val.isdigit() else 0
        elif opt == "s":
            sources = set(val.split(","))
    if not rest:
        usage("get", "missing property argument")
    wanted: list[str] = []
    for word in rest[0].split(","):
        if word == "all":
            wanted.extend(p for p in PROPS if p != "name")
            continue
        canon = prop_name(word)
        if canon is None:
            usage("get", f"bad property list: invalid property '{word}'")
        assert canon is not None
        wanted.append(canon)
    status = 0
    roots: list[str] = []
    for name in rest[1:]:
        if not pool.exists(name):
            print(f"cannot open '{name}': dataset does not exist", file=sys.stderr)
            status = 1
            continue
        roots.append(name)
    if len(rest) == 1:
        roots = sorted(n for n in pool.ds if "/" not in n and "@" not in n)
        depth = 1 << 30
    names = sorted(select(pool, roots, types, depth), key=sort_key(pool))
    rows: list[list[str]] = []
    for name in names:
        for prop in wanted:
            if rest[0].startswith("all") and ":" not in prop and pool.kind(name) not in PROPS[prop][0]:
                continue
            value, source = pool.value(name, prop, parsable)
            kind = source.split()[0] if source != "-" else "none"
            if sources is not None and kind not in sources:
                continue
            cells = {"name": name, "property": prop, "value": value, "source": source, "received": "-"}
            rows.append([cells[f] for f in fields])
    headers = [f.upper() for f in fields]
    table(rows, headers, [False] * len(fields), scripted)
    return status


def cmd_set(pool: Pool, args: list[str]) -> int:
    _opts, rest = getopts("set", args, "u")
    if len(rest) < 2:
        usage("set", "missing arguments" if not rest else "missing dataset name(s)")
    assignments = []
    while rest and "=" in rest[0]:
        assignments.append(rest.pop(0))
    if not assignments:
        usage("set", "missing '=' for property=value argument")
    if not rest:
        usage("set", "missing dataset name(s)")
    for name in rest:
        need(pool, name)
    before = pool.all_mounts()
    for name in rest:
        kind = pool.kind(name)
        for item in assignments:
            key, _, value = item.partition("=")
            canon = prop_name(key)
            if canon is None:
                fail(f"cannot set property for '{name}': invalid property '{key}'")
            assert canon is not None
            if ":" in canon:
                pool.ds[name]["props"][canon] = value
                continue
            if kind not in PROPS[canon][0]:
                fail(f"cannot set property for '{name}': '{canon}' does not apply to datasets of this type")
            if PROPS[canon][2]:
                fail(f"cannot set property for '{name}': '{canon}' is readonly")
            stored, why = check_value(canon, value)
            if stored is None:
                fail(f"cannot set property for '{name}': {why}")
            assert stored is not None
            if canon == "volsize":
                block = int(pool.ds[name].get("volblocksize", 16384))
                if int(stored) % block or int(stored) == 0:
                    fail(f"cannot set property for '{name}': volume size must be a multiple of volume "
                         f"block size")
                if pool.zvol(name).exists():
                    os.truncate(pool.zvol(name), int(stored))
                if pool.local(name, "refreservation") not in (None, "none"):
                    pool.ds[name]["props"]["refreservation"] = stored
            pool.ds[name]["props"][canon] = stored
            if canon == "volmode":
                node = pool.zvol(name)
                if stored == "none" and node.exists():
                    node.unlink()
                    prune_zvol_dirs(node)
                elif stored != "none":
                    make_volume_node(pool, name)
    remount(pool, before)
    return 0


def cmd_inherit(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("inherit", args, "rS")
    if len(rest) < 2:
        usage("inherit", "missing property argument" if not rest else "missing dataset argument")
    canon = prop_name(rest[0])
    if canon is None:
        fail(f"invalid property '{rest[0]}'")
    assert canon is not None
    before = pool.all_mounts()
    for name in rest[1:]:
        need(pool, name)
        targets = [name, *(pool.descendants(name) if any(o == "r" for o, _ in opts) else [])]
        for target in targets:
            pool.ds[target]["props"].pop(canon, None)
    remount(pool, before)
    return 0


def snapshot_content(pool: Pool, snap: str) -> dict[str, Any]:
    store = pool.snapstore(snap)
    if store.is_dir():
        return {"tree": encode_tree(str(store), set())}
    if store.exists():
        return {"volume": encode_file(str(store))}
    return {"tree": {"dirs": [], "files": {}, "links": {}}}


def cmd_send(pool: Pool, args: list[str]) -> int:
    opts, rest = getopts("send", args, "DLPRbcehnpsvwi:I:t:X:")
    flags = {o for o, _ in opts}
    incremental = next((val for o, val in opts if o in ("i", "I")), None)
    token = next((val for o, val in opts if o == "t"), None)
    resume_from = 0
    if token is not None:
        if not RESUME:
            usage("send", "invalid option 't'")
        fields = zfs_resume.read_token(token)
        if fields is None:
            fail("cannot resume send: token is corrupt")
        assert fields is not None
        rest = [fields["toname"]]
        if not pool.exists(fields["toname"]) or pool.ds[fields["toname"]]["guid"] != fields["toguid"]:
            fail(f"cannot resume send: '{fields['toname']}' used in the initial send no longer exists")
        if fields.get("fromguid") is not None:
            base_ds = fields["toname"].split("@")[0]
            source = next((s for s in pool.snapshots(base_ds) if pool.ds[s]["guid"] == fields["fromguid"]), None)
            if source is None:
                fail(f"cannot resume send: incremental source {fields['fromguid']:#x} no longer exists")
            assert source is not None
            opts = [*opts, ("i", source)]
            incremental = source
        resume_from = int(fields["bytes"])
    if not rest:
        usage("send", "missing snapshot argument")
    if len(rest) > 1:
        usage("send", "too many arguments")
    target = rest[0]
    if "@" not in target:
        fail(f"cannot open '{target}': operation not applicable to datasets of this type")
    need(pool, target)
    if os.isatty(1) and "n" not in flags:
        print("Error: Stream can not be written to a terminal.\nYou must redirect standard output.",
              file=sys.stderr)
        return 1
    base, snapname = target.split("@")
    start_txg = -1
    from_name: str | None = None
    if incremental is not None:
        from_full = base + incremental if incremental.startswith("@") else incremental
        if "@" not in from_full:
            from_full = f"{base}@{from_full}"
        if from_full.split("@")[0] != base and pool.ds[base].get("origin") != from_full:
            fail(f"cannot send '{target}': snapshot {from_full} is not related to snapshot {target}")
        need(pool, from_full)
        start_txg = pool.ds[from_full]["createtxg"]
        from_name = from_full.split("@")[1]
        if start_txg >= pool.ds[target]["createtxg"]:
            fail(f"cannot send '{target}': incremental source must be earlier than destination")
    members = [base, *(pool.descendants(base) if "R" in flags else [])]
    datasets = []
    for ds in members:
        if not pool.exists(f"{ds}@{snapname}"):
            continue
        stop_txg = pool.ds[f"{ds}@{snapname}"]["createtxg"]
        intermediates = any(o == "I" for o, _ in opts)
        if ("R" in flags and incremental is None) or intermediates:
            snaps = [s for s in pool.snapshots(ds) if start_txg < pool.ds[s]["createtxg"] <= stop_txg]
        else:
            snaps = [f"{ds}@{snapname}"]
        rec = pool.ds[ds]
        entry = {
            "rel": ds[len(base):], "type": rec["type"],
            "props": dict(rec["props"]) if ("R" in flags or "p" in flags) else
            ({"volsize": rec["props"].get("volsize")} if rec["type"] == "volume" else {}),
            "volblocksize": rec.get("volblocksize"),
            # a snapshot's user properties travel with -p or -R only (zfs-send(8))
            "snapshots": [{"name": s.split("@")[1], "guid": pool.ds[s]["guid"],
                           "props": pool.ds[s]["props"] if ("R" in flags or "p" in flags) else {},
                           **snapshot_content(pool, s)} for s in snaps],
        }
        origin = rec.get("origin")
        if "R" in flags and origin and origin.split("@")[0] not in members:
            # zfs send -R preserves clones (zfs(8)): the clone travels as a stream relative to its origin,
            # which the receiving side must already have
            entry["origin"] = origin
        datasets.append(entry)
    stream = {"magic": STREAM_MAGIC, "version": 1, "top": base, "snapshot": snapname,
              "from": from_name, "replicate": "R" in flags, "datasets": datasets}
    if "v" in flags or "n" in flags:
        kind = "incremental" if from_name else "full"
        print(f"{kind}\t{target}\t{len(json.dumps(stream))}",
              file=sys.stderr if "n" not in flags else sys.stdout)
    if "n" in flags:
        return 0
    header = {"toname": target, "toguid": pool.ds[target]["guid"],
              "fromguid": pool.ds[f"{base}@{from_name}"]["guid"] if from_name else None,
              "type": pool.ds[base]["type"]}
    out = zfs_resume.frame(header, json.dumps(stream).encode(), resume_from)
    sys.stdout.flush()
    try:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # the receiving end went away: the real zfs send dies of SIGPIPE
        return 1
    return 0


def _receive_dataset(pool: Pool, name: str, entry: dict[str, Any], incremental: bool,
                     exclude: set[str]) -> None:
    kind = entry["type"]
    props = {k: v for k, v in entry["props"].items() if k not in exclude and v is not None}
    before = pool.all_mounts()
    if not incremental:
        rec = new_record(pool, kind, props)
        if kind == "volume":
            rec["volblocksize"] = entry.get("volblocksize") or 16384
        pool.ds[name] = rec
        if kind == "volume":
            make_volume_node(pool, name)
        remount(pool, before)
    for snap in entry["snapshots"]:
        live = pool.mount_path(name) or str(pool.parked(name))
        if kind == "volume":
            node = pool.zvol(name)
            if "volume" in snap and node.exists():
                decode_file(str(node), snap["volume"])
        else:
            clear_tree(live, pool.excludes(name))
            decode_tree(live, snap.get("tree", {"dirs": [], "files": {}, "links": {}}))
        take_snapshot(pool, name, snap["name"])
        pool.ds[f"{name}@{snap['name']}"]["props"].update(snap.get("props", {}))
        if snap.get("guid") is not None:  # a received snapshot keeps its guid: incrementals match on it
            pool.ds[f"{name}@{snap['name']}"]["guid"] = snap["guid"]


def cmd_receive(pool: Pool, args: list[str], raw: bytes | None = None) -> int:
    opts, rest = getopts("receive", args, "AFhMnsuvdeo:x:")
    flags = {o for o, _ in opts}
    exclude = {val for o, val in opts if o == "x"}
    if not rest:
        usage("receive", "missing snapshot argument")
    if len(rest) > 1:
        usage("receive", "too many arguments")
    if os.isatty(0):
        print("Error: Backup stream can not be read from a terminal.\nYou must redirect standard input.",
              file=sys.stderr)
        return 1
    if raw is None:
        raw = sys.stdin.buffer.read()
    try:
        stream = json.loads(raw)
        assert stream["magic"] == STREAM_MAGIC
    except (ValueError, KeyError, AssertionError, TypeError):
        fail("cannot receive: invalid stream (bad magic number)")
    target = rest[0]
    snap_override: str | None = None
    if "@" in target:
        target, _, snap_override = target.partition("@")
    top = stream["top"]
    if "d" in flags:
        target = target + "/" + "/".join(top.split("/")[1:]) if "/" in top else target
    elif "e" in flags:
        target = target + "/" + top.split("/")[-1]
    problem = name_problem(target, False)
    if problem:
        fail(f"cannot receive: invalid name '{target}'")
    incremental = stream["from"] is not None
    if "n" in flags:
        return 0
    for entry in stream["datasets"]:
        name = target + entry["rel"]
        if snap_override and not stream["replicate"]:
            for snap in entry["snapshots"]:
                snap["name"] = snap_override
        if incremental:
            if not pool.exists(name):
                fail(f"cannot receive incremental stream: destination '{name}' does not exist")
            snaps = pool.snapshots(name)
            latest = snaps[-1].split("@")[1] if snaps else None
            if latest != stream["from"]:
                wanted = f"{name}@{stream['from']}"
                if "F" in flags and pool.exists(wanted):
                    newer = [s for s in snaps if pool.ds[s]["createtxg"] > pool.ds[wanted]["createtxg"]]
                    for s in reversed(newer):
                        _destroy_one(pool, s)
                else:
                    fail(f"cannot receive incremental stream: most recent snapshot of {name} does not\n"
                         f"match incremental source")
            for snap in entry["snapshots"]:
                if pool.exists(f"{name}@{snap['name']}"):
                    fail(f"cannot receive incremental stream: destination {name}@{snap['name']} exists")
            _receive_dataset(pool, name, entry, True, exclude)
            continue
        if pool.exists(name):
            if "F" not in flags:
                fail(f"cannot receive new filesystem stream: destination '{name}' exists\n"
                     f"must specify -F to overwrite it")
            if pool.snapshots(name):
                fail(f"cannot receive new filesystem stream: destination has snapshots "
                     f"(eg. {pool.snapshots(name)[0]})\nmust destroy them to overwrite it")
            for sub in _tree(pool, name):
                _destroy_one(pool, sub)
        parent = pool.parent(name)
        if parent is None or not pool.exists(parent):
            fail(f"cannot receive new filesystem stream: parent of '{name}' does not exist"
                 if parent else f"cannot receive: invalid name '{name}'")
        origin = entry.get("origin")
        if origin and (not pool.exists(origin) or pool.pool_of(origin) != pool.pool_of(name)):
            fail(f"cannot receive new filesystem stream: local origin for clone {name} does not exist")
        _receive_dataset(pool, name, entry, False, exclude)
        if origin:
            pool.ds[name]["origin"] = origin  # received as a clone of the same origin, as real zfs does
    return 0


COMMANDS = {
    "create": cmd_create, "destroy": cmd_destroy, "snapshot": cmd_snapshot, "snap": cmd_snapshot,
    "rollback": cmd_rollback, "clone": cmd_clone, "rename": cmd_rename, "list": cmd_list, "get": cmd_get,
    "set": cmd_set, "inherit": cmd_inherit, "send": cmd_send, "receive": cmd_receive, "recv": cmd_receive,
    "hold": zfs_resume.cmd_hold, "release": zfs_resume.cmd_release, "holds": zfs_resume.cmd_holds,
}
READ_ONLY = {"list", "get", "send", "holds"}


def injected_failure(cmd: str) -> None:
    """Let a test make the next ``zfs CMD`` fail: a line ``CMD message`` in ``control/zfs.fail``.

    The first matching line is consumed and the command fails with ``message`` (exit 1) before it changes
    anything, the way an I/O error or a full pool stops the real command.
    """
    path = paths.root() / "control" / "zfs.fail"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return
    aliases = {"recv": "receive", "snap": "snapshot"}
    for index, line in enumerate(lines):
        word, _, message = line.partition(" ")
        if aliases.get(word, word) == aliases.get(cmd, cmd):
            del lines[index]
            path.write_text("".join(f"{x}\n" for x in lines))
            fail(message or f"cannot {cmd}: I/O error")


def main(args: list[str]) -> int:
    """``zfs <command> [args]``."""
    if not args:
        usage(None, "missing command")
    cmd, rest = args[0], args[1:]
    handler = COMMANDS.get(cmd)
    if handler is None:
        usage(None, f"unrecognized command '{cmd}'")
    assert handler is not None
    injected_failure(cmd)
    global RESUME
    RESUME = zfs_resume.resume_supported(state.load())
    if cmd in ("receive", "recv"):
        def apply(words: list[str], raw: bytes) -> int:
            with state.transaction() as st:
                return cmd_receive(Pool(st), words, raw)
        return zfs_resume.receive(rest, apply)
    if cmd in READ_ONLY:
        return handler(Pool(state.load()), rest)
    with state.transaction() as st:
        return handler(Pool(st), rest)


# ---------------------------------------------------------------------------------------------------------
# pools (used by the fixture) and zpool


def add_pool(st: dict[str, Any], name: str, mountpoint: Path, size: int = 100 << 30) -> None:
    """Create pool ``name`` whose root filesystem is mounted on the real directory ``mountpoint``."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    st["pools"][name] = {"size": size, "guid": int.from_bytes(os.urandom(8), "big") >> 1,
                         "created": int(time.time())}
    st["txg"] += 1
    st["datasets"][name] = {"type": "filesystem", "props": {}, "defaults": {"mountpoint": str(mountpoint)},
                            "creation": int(time.time()), "createtxg": st["txg"],
                            "guid": int.from_bytes(os.urandom(8), "big") >> 1}


def zpool(args: list[str]) -> int:
    """``zpool list [-H] [-p] [-o props] [pool ...]``."""
    if not args or args[0] != "list":
        print("usage: zpool command args ...\n\tlist [-gHLpPv] [-o property[,...]] [-T d|u] [pool] ...",
              file=sys.stderr)
        return 2
    parser = Getopt(args[1:], "gHLpPvo:T:")
    columns = ["name", "size", "alloc", "free", "ckpoint", "expandsz", "frag", "cap", "dedup", "health",
               "altroot"]
    scripted = parsable = False
    try:
        for opt, val in parser:
            if opt == "H":
                scripted = True
            elif opt == "p":
                parsable = True
            elif opt == "o":
                columns = (val or "").split(",")
    except GetoptError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    known = {"name", "size", "alloc", "allocated", "free", "ckpoint", "expandsz", "frag", "fragmentation",
             "cap", "capacity", "dedup", "dedupratio", "health", "altroot", "guid"}
    for col in columns:
        if col not in known:
            print(f"property '{col}' is not a valid pool property", file=sys.stderr)
            return 2
    st = state.load()
    pool = Pool(st)
    names = parser.operands or sorted(st["pools"])
    rows: list[list[str]] = []
    status = 0
    for name in names:
        if name not in st["pools"]:
            print(f"cannot open '{name}': no such pool", file=sys.stderr)
            status = 1
            continue
        size = int(st["pools"][name]["size"])
        alloc = pool.used(name)
        fmt = (lambda n: str(n)) if parsable else nicenum
        percent = alloc * 100 // size
        values = {"name": name, "size": fmt(size), "alloc": fmt(alloc), "allocated": fmt(alloc),
                  "free": fmt(size - alloc), "ckpoint": "-", "expandsz": "-",
                  "frag": "0" if parsable else "0%", "fragmentation": "0%",
                  "cap": str(percent) if parsable else f"{percent}%",
                  "capacity": f"{alloc * 100 // size}%", "dedup": "1.00x", "dedupratio": "1.00x",
                  "health": "ONLINE", "altroot": "-", "guid": str(st["pools"][name]["guid"])}
        rows.append([values[c] for c in columns])
    table(rows, [c.upper() for c in columns], [c not in ("name", "health", "altroot") for c in columns],
          scripted)
    return status


def zfs_main() -> int:
    """Entry point of ``bin/zfs``."""
    return run(main)


def zpool_main() -> int:
    """Entry point of ``bin/zpool``."""
    return run(zpool)


def mount_main() -> int:
    """``mount`` with no arguments: FreeBSD's listing, one line per mounted ZFS filesystem
    (``zroot/vm on /zroot/vm (zfs, local, nfsv4acls)``); vm-bhyve's migration reads it to find a dataset's
    path. Anything else is refused: nothing in hivectl's tests mounts through it."""
    if sys.argv[1:]:
        sys.stderr.write("mount: the simulated host's mount only lists (no arguments)\n")
        return 1
    pool = Pool(state.load())
    for name, path in sorted(pool.all_mounts().items()):
        sys.stdout.write(f"{name} on {path} (zfs, local, nfsv4acls)\n")
    return 0
