"""Validate a whole backup archive before ``restore`` extracts or creates anything.

A backup is input from outside the host's trust: an operator may restore a file someone else made, and
hivectl runs as root. So ``restore`` reads every archive of the chain once, checks all of it here, and
only then builds the guest (``hivectl.storage.backup``); a refusal is one line naming the archive, the
member and why, and nothing has been written anywhere. What is checked (docs/storage.md, docs/reliability.md):

- the stream: a tar (pax) that Python's ``tarfile`` reads to its end, at most ``MAX_MEMBERS`` members;
- the header (``hivectl-backup.json``, the first member): format and version, ``kind``; the guest name
  validated like ``create NAME`` (``hivectl.validate.name``); ZFS snapshot/parent names in the forms
  ``backup`` writes; when the archive's file name follows ``NAME.STAMP.backup.tar[.EXT]`` its NAME must
  be the header's guest (a header naming another guest is refused, never acted on);
- member names: the expected set for the backup's kind only (``files/…`` and ``disks/NAME`` for a
  directory backup, ``zfs/stream.NNNNNN`` in sequence for a ZFS one), no absolute names, no ``..``, ``.``
  or empty components, no control characters, no duplicate (two members that land on one path), no run-time
  file (``restart``, ``bhyve.log``…: backups never store them), a directory member before anything in it,
  the guest's ``NAME.conf`` present;
- member types: regular files and directories only (symlinks, hard links, devices, fifos and GNU
  extensions are refused); disks only as GNU sparse 1.0 members whose map is in order, inside the file's
  size and accounts for exactly the member's data;
- sizes: every file at most ``MAX_FILE_BYTES``, the headers at most ``MAX_JSON``, and the data (holes
  excluded) at most the datastore's free space;
- digests: the SHA-256 (files, the ZFS stream) and content digest (disks) of every member against
  ``hivectl-digests.json``, which must list exactly the members present, and the SHA-256 of the archive's
  bytes against ``FILE.sha256`` when there is one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError
from hivectl.model.layout import config_name, is_runtime_file
from hivectl.safety.values import MAX_DISK_BYTES
from hivectl.storage import compression, sparse
from hivectl.storage.hashing import HashingReader

MANIFEST = "hivectl-backup.json"
DIGESTS = "hivectl-digests.json"
SNAP_PREFIX = "hivectl-backup-"
FILE_RE = re.compile(r"(?P<guest>[A-Za-z0-9][A-Za-z0-9._-]{0,62})\.(?P<stamp>[0-9]{8}T[0-9]{6}\.[0-9]{6}Z)"
                     r"\.backup\.tar(\.gz|\.xz|\.zst|\.bz2)?")
SNAP_RE = re.compile(re.escape(SNAP_PREFIX) + r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z")
ZFS_MEMBER_RE = re.compile(r"zfs/(?:(?P<rel>[A-Za-z0-9_.:-]+(?:/[A-Za-z0-9_.:-]+)*)/)?stream\.(?P<index>[0-9]{6})")
ZFS_REL_RE = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]*(?:/[A-Za-z0-9_:-][A-Za-z0-9_.:-]*)*")
KINDS = ("directory", "zfs")
MAX_MEMBERS = 100_000
MAX_JSON = 16 << 20  # a guest config is a few KiB; the digest list of MAX_MEMBERS files fits easily
MAX_FILE_BYTES = MAX_DISK_BYTES
MAX_NAME_BYTES = 255  # NAME_MAX on FreeBSD and Linux
MAX_PATH_BYTES = 1024  # PATH_MAX on FreeBSD
COPY = 1 << 20
_TYPE_NAMES = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link",
               tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
               tarfile.FIFOTYPE: "a fifo", tarfile.CONTTYPE: "a contiguous file",
               tarfile.GNUTYPE_SPARSE: "an old GNU sparse file", tarfile.GNUTYPE_LONGNAME: "a GNU long name",
               tarfile.GNUTYPE_LONGLINK: "a GNU long link"}


class ArchiveRefused(HivectlError):
    """One line: ``ARCHIVE: MEMBER: why; nothing was restored``."""

    def __init__(self, archive: str, member: str, why: str) -> None:
        super().__init__(f"{archive}: {member}: {_one_line(why)}; nothing was restored")
        self.archive, self.member, self.why = archive, member, why


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@dataclass(frozen=True)
class Entry:
    """One validated member: where it goes (relative to the guest) and what it is."""

    name: str  # as in the archive
    kind: str  # "dir", "file", "disk" or "zfs"
    target: str  # path below the guest directory ("" for ZFS chunks)
    size: int  # apparent size (a disk's realsize)
    data: int  # bytes stored (holes excluded)


@dataclass
class Checked:
    """What one archive holds, once every check passed."""

    archive: str
    header: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)
    data_bytes: int = 0

    @property
    def guest(self) -> str:
        return str(self.header["guest"])

    @property
    def kind(self) -> str:
        return str(self.header["kind"])


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def open_stream(raw: IO[bytes]) -> tarfile.TarFile:
    """A streaming tar reader over a (possibly compressed) archive."""
    head = raw.read(8)
    stream = compression.reader(compression.detect(head), _Prefixed(head, raw))  # type: ignore[arg-type]
    tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - the caller owns it
    tar.copybufsize = COPY  # type: ignore[attr-defined]
    return tar


def check_archive(archive: Path, raw: IO[bytes], expected_sha256: str | None, free_bytes: int | None = None,
                  display: str | None = None) -> Checked:
    """Read all of ``raw`` (the archive ``archive``) and validate it; raise ``ArchiveRefused`` on any flaw."""
    shown = display or str(archive)
    hashing = HashingReader(raw)
    reader = _Reader(shown, hashing)
    header = reader.header(archive)
    checked = Checked(shown, header)
    if header["kind"] == "zfs":
        computed = reader.zfs_members(checked)
    else:
        computed = reader.directory_members(checked)
    digests = reader.digests
    _compare(shown, digests, computed)
    reader.finish()
    if expected_sha256 is not None and hashing.hash.hexdigest() != expected_sha256:
        raise ArchiveRefused(shown, f"{archive.name}.sha256",
                             f"the SHA-256 of the archive is {hashing.hash.hexdigest()}, not {expected_sha256}")
    if free_bytes is not None and checked.data_bytes > free_bytes:
        raise ArchiveRefused(shown, "(all members)", f"needs {checked.data_bytes} bytes, the datastore has "
                                                     f"{free_bytes} free")
    return checked


class _Reader:
    """One pass over the members, in order; every tar or decompression error becomes one refusal line."""

    def __init__(self, archive: str, hashing: HashingReader) -> None:
        self.archive = archive
        self.hashing = hashing
        self.count = 0
        self.last = "(start of the archive)"
        self.digests: dict[str, Any] = {}
        self._dirs: set[str] = set()
        try:
            self.tar = open_stream(hashing)  # type: ignore[arg-type]
        except HivectlError:
            raise
        except Exception as error:  # a foreign or damaged file, whatever the library says
            raise ArchiveRefused(archive, self.last,
                                 f"not a hivectl backup (not a readable tar archive: {error})") from None

    def refuse(self, member: str, why: str) -> ArchiveRefused:
        return ArchiveRefused(self.archive, member, why)

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except HivectlError:
            raise
        except Exception as error:  # tarfile, zlib, lzma, bz2 and EOF errors alike
            raise self.refuse(f"after {self.last}", f"the archive is damaged or truncated ({error})") from None

    def next(self) -> tarfile.TarInfo | None:
        member: tarfile.TarInfo | None = self._guard(self.tar.next)
        if member is not None:
            self.count += 1
            if self.count > MAX_MEMBERS:
                raise self.refuse(member.name, f"more than {MAX_MEMBERS} members")
            self.last = member.name
        return member

    def _json(self, member: tarfile.TarInfo) -> Any:
        if not member.isreg():
            raise self.refuse(member.name, f"is {_type_name(member)}, not a regular file")
        if member.size > MAX_JSON:
            raise self.refuse(member.name, f"is {member.size} bytes, more than {MAX_JSON}")
        handle = self._guard(lambda: self.tar.extractfile(member))
        body = self._guard(lambda: handle.read(MAX_JSON + 1))
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise self.refuse(member.name, f"is not JSON ({error})") from None

    def header(self, archive: Path) -> dict[str, Any]:
        member = self.next()
        if member is None or member.name != MANIFEST:
            raise self.refuse(member.name if member else "(empty archive)",
                              f"not a hivectl backup ({MANIFEST} must be the first member)")
        header = self._json(member)
        if not isinstance(header, dict):
            raise self.refuse(MANIFEST, "is not a JSON object")
        if header.get("format") != "hivectl-backup" or header.get("version") != 1:
            raise self.refuse(MANIFEST, "not a hivectl backup of version 1")
        kind = header.get("kind")
        if kind not in KINDS:
            raise self.refuse(MANIFEST, f"kind={kind!r}: expected one of {', '.join(KINDS)}")
        guest = header.get("guest")
        if not isinstance(guest, str):
            raise self.refuse(MANIFEST, f"guest={guest!r}: expected a guest name")
        try:
            validate.guest_name(None, "guest", guest)
        except ConfigError as error:
            raise self.refuse(MANIFEST, str(error)) from None
        named = FILE_RE.fullmatch(archive.name)
        if named is not None and named.group("guest") != guest:
            raise self.refuse(MANIFEST, f"guest={guest!r}, but the file is named as a backup of "
                                        f"{named.group('guest')!r}: refusing a header that names another guest")
        if not isinstance(header.get("config", ""), str):
            raise self.refuse(MANIFEST, "config: expected the text of the guest's config")
        if kind == "zfs":
            self._zfs_header(header)
        return header

    def _zfs_header(self, header: dict[str, Any]) -> None:
        zfs = header.get("zfs")
        if not isinstance(zfs, dict):
            raise self.refuse(MANIFEST, "zfs: expected an object (snapshot, base, parent)")
        if not isinstance(zfs.get("snapshot"), str) or not SNAP_RE.fullmatch(zfs["snapshot"]):
            raise self.refuse(MANIFEST, f"zfs.snapshot={zfs.get('snapshot')!r}: expected {SNAP_PREFIX}STAMP")
        base, parent = zfs.get("base"), zfs.get("parent")
        if base is not None and (not isinstance(base, str) or not SNAP_RE.fullmatch(base)):
            raise self.refuse(MANIFEST, f"zfs.base={base!r}: expected {SNAP_PREFIX}STAMP or null")
        if parent is not None and (not isinstance(parent, str) or not FILE_RE.fullmatch(parent)
                                   or FILE_RE.fullmatch(parent).group("guest") != header["guest"]):  # type: ignore[union-attr]
            raise self.refuse(MANIFEST, f"zfs.parent={parent!r}: expected a backup file of {header['guest']}")
        if (base is None) != (parent is None):
            raise self.refuse(MANIFEST, "zfs.base and zfs.parent must be both set or both null")
        rels = zfs.get("datasets", [""])  # absent in backups made with 'zfs send -R' (one stream)
        if (not isinstance(rels, list) or not rels or rels[0] != "" or len(set(map(str, rels))) != len(rels)
                or not all(isinstance(r, str) and (r == "" or ZFS_REL_RE.fullmatch(r)) for r in rels[1:])
                or "" in rels[1:]):
            raise self.refuse(MANIFEST, f"zfs.datasets={rels!r}: expected \"\" then the children's relative names")

    # -- members --------------------------------------------------------------------------------------
    def _plain(self, member: tarfile.TarInfo) -> None:
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
            raise self.refuse(member.name, f"is {_type_name(member)}: only regular files and directories "
                                           "are restored")
        if member.size < 0 or member.size > MAX_FILE_BYTES:
            raise self.refuse(member.name, f"size {member.size} is out of bounds (0..{MAX_FILE_BYTES})")

    def _path(self, member: tarfile.TarInfo, rel: str) -> str:
        if member.name.startswith("/") or not rel:
            raise self.refuse(member.name, "is an absolute or empty name")
        if len(rel.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
            raise self.refuse(member.name, f"name longer than {MAX_PATH_BYTES} bytes")
        for part in rel.split("/"):
            if part in ("", ".", ".."):
                raise self.refuse(member.name, f"has a {part or 'empty'!r} path component")
            if not part.isprintable() or len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
                raise self.refuse(member.name, "has a control character or an over-long component in its name")
        return rel

    def directory_members(self, checked: Checked) -> dict[str, Any]:
        guest = checked.guest
        targets: dict[str, str] = {}
        computed: dict[str, Any] = {}
        while (member := self.next()) is not None:
            if member.name == DIGESTS:
                self.digests = self._digest_list(member)
                break
            self._plain(member)
            if member.name.startswith("/"):
                raise self.refuse(member.name, "is an absolute name")
            folder, _, rel = member.name.partition("/")
            if folder not in ("files", "disks"):
                raise self.refuse(member.name, "is not a member of a directory backup (files/…, disks/…)")
            rel = self._path(member, rel)
            top = rel.split("/")[0]
            if is_runtime_file(top, guest):
                raise self.refuse(member.name, f"{top} is a run-time file of a guest; backups never hold one")
            if folder == "disks" and ("/" in rel or member.sparse is None):
                raise self.refuse(member.name, "a disk must be a top-level GNU sparse 1.0 member")
            if rel in targets:
                raise self.refuse(member.name, f"a second member for {rel} (first: {targets[rel]})")
            parent = rel.rpartition("/")[0]
            if parent and parent in targets and parent not in self._dirs:
                raise self.refuse(member.name, f"is inside {parent}, which the archive holds as a file")
            if parent and parent not in self._dirs:
                raise self.refuse(member.name, f"is inside {parent}, which is not a directory member before it")
            targets[rel] = member.name
            if member.isdir():
                self._dirs.add(rel)
                checked.entries.append(Entry(member.name, "dir", rel, 0, 0))
                continue
            computed[member.name], data = self._read_file(member)
            checked.data_bytes += data
            kind = "disk" if folder == "disks" else "file"
            checked.entries.append(Entry(member.name, kind, rel, _real_size(member), data))
        else:
            raise self.refuse(f"after {self.last}", f"the archive ends before {DIGESTS}: it is truncated")
        if config_name(guest) not in targets:
            raise self.refuse(f"files/{config_name(guest)}", f"missing: the backup of {guest} holds no config")
        return computed

    def zfs_members(self, checked: Checked) -> dict[str, Any]:
        """``zfs/stream.NNNNNN`` for the guest's dataset, then ``zfs/REL/stream.NNNNNN`` per child, in order."""
        rels: list[str] = list(checked.header["zfs"].get("datasets", [""]))
        computed: dict[str, Any] = {}
        position, index = 0, 0
        hasher, total = hashlib.sha256(), 0
        while (member := self.next()) is not None:
            if member.name == DIGESTS:
                self.digests = self._digest_list(member)
                break
            self._plain(member)
            match = ZFS_MEMBER_RE.fullmatch(member.name)
            if not match or not member.isreg() or member.sparse is not None:
                raise self.refuse(member.name, "is not a member of a ZFS backup (zfs/[DATASET/]stream.NNNNNN files)")
            rel = match.group("rel") or ""
            if rel != rels[position]:
                if index == 0 or position + 1 >= len(rels) or rel != rels[position + 1]:
                    raise self.refuse(member.name, f"out of sequence: expected the stream of "
                                                   f"{rels[position] or 'the guest dataset'} or the next dataset's")
                computed[f"zfs/{rels[position]}" if rels[position] else "zfs"] = {"sha256": hasher.hexdigest(),
                                                                                   "size": total}
                position, index, hasher, total = position + 1, 0, hashlib.sha256(), 0
            if int(match.group("index")) != index:
                raise self.refuse(member.name, f"out of sequence: expected stream.{index:06d}")
            handle = self._guard(partial(self.tar.extractfile, member))
            while data := self._guard(partial(handle.read, COPY)):
                hasher.update(data)
                total += len(data)
            index += 1
            checked.data_bytes += member.size
            checked.entries.append(Entry(member.name, "zfs", rel, member.size, member.size))
        else:
            raise self.refuse(f"after {self.last}", f"the archive ends before {DIGESTS}: it is truncated")
        if index == 0 or position != len(rels) - 1:
            missing = rels[position + 1] if index else rels[position] or "the guest dataset"
            raise self.refuse(f"zfs/{missing}", "no stream for a dataset the header lists")
        computed[f"zfs/{rels[position]}" if rels[position] else "zfs"] = {"sha256": hasher.hexdigest(), "size": total}
        return computed

    def _digest_list(self, member: tarfile.TarInfo) -> dict[str, Any]:
        digests = self._json(member)
        if not isinstance(digests, dict) or not all(isinstance(v, dict) for v in digests.values()):
            raise self.refuse(DIGESTS, "is not an object of per-member digests")
        return digests

    def _read_file(self, member: tarfile.TarInfo) -> tuple[dict[str, Any], int]:
        """Read one file member's data; return its digest record and how many bytes it stores."""
        if member.sparse is None:
            hasher = hashlib.sha256()
            handle = self._guard(lambda: self.tar.extractfile(member))
            got = 0
            while data := self._guard(lambda: handle.read(COPY)):
                hasher.update(data)
                got += len(data)
            if got != member.size:
                raise self.refuse(member.name, f"holds {got} of its {member.size} bytes: truncated")
            return {"size": member.size, "sha256": hasher.hexdigest()}, got
        size = _real_size(member)
        extents: list[tuple[int, int]] = list(cast(Any, member.sparse))
        stored = self.tar.offset - member.offset_data  # the data blocks after the map (block-rounded)
        end = 0
        for offset, length in extents:
            if offset < end or length < 0 or offset + length > size:
                raise self.refuse(member.name, f"sparse map entry ({offset}, {length}) is out of order or "
                                               f"outside the file's {size} bytes")
            end = offset + length
        data_bytes = sum(length for _, length in extents)
        if not stored - 512 < data_bytes <= stored:
            raise self.refuse(member.name, f"sparse map accounts for {data_bytes} bytes, the member stores "
                                           f"{stored}")
        if member.pax_headers.get("GNU.sparse.major") != "1" or member.pax_headers.get("GNU.sparse.minor") != "0":
            raise self.refuse(member.name, "only GNU sparse format 1.0 is restored")
        digest = sparse.ContentDigest(size)
        source = self.tar.fileobj
        assert source is not None
        self._guard(lambda: source.seek(member.offset_data))
        for offset, length in extents:
            while length:
                data = self._guard(partial(source.read, min(COPY, length)))
                if not data:
                    raise self.refuse(member.name, "is truncated")
                digest.feed(offset, data)
                offset += len(data)
                length -= len(data)
        return {"size": size, "content_sha256": digest.hexdigest()}, data_bytes

    def finish(self) -> None:
        """After the digest list only the end of the archive may follow (then the rest is read, for the hash)."""
        extra = self.next()
        if extra is not None:
            raise self.refuse(extra.name, f"follows {DIGESTS}, which must be the last member")
        self._guard(self.tar.close)
        while self.hashing.read(COPY):
            pass


def _real_size(member: tarfile.TarInfo) -> int:
    value = member.pax_headers.get("GNU.sparse.realsize") if member.sparse is not None else None
    try:
        return int(value) if value is not None else member.size
    except ValueError:
        return -1


def _type_name(member: tarfile.TarInfo) -> str:
    return _TYPE_NAMES.get(member.type, f"of tar type {member.type!r}")


def _compare(archive: str, expected: dict[str, Any], computed: dict[str, Any]) -> None:
    """The digest list must name exactly the members present, each with the values computed from its data."""
    for name in sorted(set(expected) - set(computed)):
        raise ArchiveRefused(archive, name, f"listed in {DIGESTS} but not in the archive")
    for name in sorted(set(computed) - set(expected)):
        raise ArchiveRefused(archive, name, f"not listed in {DIGESTS}")
    for name, got in computed.items():
        want = expected[name]
        for key in ("size", "sha256", "content_sha256"):
            if key in got and want.get(key) != got[key]:
                raise ArchiveRefused(archive, name, f"{key} is {got[key]}, {DIGESTS} says {want.get(key)}: "
                                                    "the archive is damaged or was altered")
