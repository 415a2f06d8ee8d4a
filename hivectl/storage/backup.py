"""``backup`` and ``restore``: a guest as one compressed, checksummed tar stream.

The stream is a POSIX (pax) tar, compressed in-process (gzip by default; xz, zstd or none on request):

1. ``hivectl-backup.json`` — what this is: guest, creation time, kind (``directory`` or ``zfs``), the
   config text, the list of members, and for ZFS the snapshot and the backup it is incremental to;
2. the guest: for a directory datastore every file of the guest directory, disks as GNU sparse 1.0
   members (only the data regions found with ``SEEK_DATA``/``SEEK_HOLE`` are read and stored, so an
   empty 20 GiB disk costs nothing, and GNU tar or bsdtar can still extract it); for ZFS one
   ``zfs send -p`` stream per dataset of a recursive snapshot (never ``-R``, which would tie a clone's
   backup to its origin), cut into ``zfs/[CHILD/]stream.NNNNNN`` members (a tar member needs its size up
   front, a ``zfs send`` stream has none), incremental (``-i``) to the previous backup's snapshot when
   that backup is in the same directory;
3. ``hivectl-digests.json`` — checksums computed while writing: SHA-256 of every small file, the
   content digest of every disk (``sparse.ContentDigest``), SHA-256 of the ZFS stream.

A file target also gets ``FILE.sha256`` (``sha256sum -c`` format) for the compressed bytes. ``restore``
first validates every archive it will read, to its end, without writing anything
(``hivectl.storage.archive_check``: names, types, sizes, sparse maps, digests, the header's guest name);
only then does it build the guest, in a hidden staging directory ``.hivectl-staging-NAME-XXXX`` of the
datastore (for ZFS under a staging dataset of that name) that one rename publishes (a staging entry a killed
restore left is removed by the next restore of that name). Symbolic links in a guest directory are not
backed up (restore refuses them). ``--keep N`` prunes older backups of the guest in the target directory,
never one that a kept incremental backup still needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from hivectl import validate
from hivectl.errors import Conflict, HivectlError, NotFound, UsageError
from hivectl.host import streams as pipes
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import GuestLayout, config_name, is_runtime_file
from hivectl.model.staging import staging_name
from hivectl.plan import Call, Plan, Run
from hivectl.rcfile import atomic_write_bytes
from hivectl.staging import Collect, MakeStaging, Publish
from hivectl.storage import compression, sparse, zfs
from hivectl.storage.archive_check import (
    DIGESTS,
    FILE_RE,
    MANIFEST,
    MAX_JSON,
    SNAP_PREFIX,
    ArchiveRefused,
    Checked,
    check_archive,
)
from hivectl.storage.guards import require_stopped
from hivectl.storage.hashing import HashingReader

if TYPE_CHECKING:
    from hivectl.retention import Policy
from hivectl.store import Datastore, GuestRef, Store

FORMAT = "hivectl-backup"
VERSION = 1
EXTENSIONS = {"gz": ".gz", "xz": ".xz", "zst": ".zst", "bz2": ".bz2", "none": ""}
ZFS_CHUNK = 16 << 20
COPY = 1 << 20


@dataclass
class BackupRequest:
    name: str
    to: str | None = None  # directory, or "-" for standard output
    keep: int | None = None
    compress: str = "gz"
    full: bool = False
    retention: str | None = None  # a retention policy (hivectl/retention: keep-daily=7,...) instead of keep


@dataclass(frozen=True)
class BackupFile:
    path: Path
    stamp: str
    header: dict[str, Any]

    @property
    def parent(self) -> str | None:
        value = (self.header.get("zfs") or {}).get("parent")
        return str(value) if value else None


@dataclass
class Written:
    path: Path | None = None
    sha256: str = ""
    bytes_read: int = 0  # disk data read (holes are never read)
    skipped: list[str] = field(default_factory=list)


# -- reading headers ----------------------------------------------------------------------------------
def _open_tar(raw: IO[bytes]) -> tuple[tarfile.TarFile, IO[bytes]]:
    head = raw.read(8)
    kind = compression.detect(head)
    stream = compression.reader(kind, cast(IO[bytes], _Prefixed(head, raw)))
    tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - the caller owns it
    tar.copybufsize = COPY  # type: ignore[attr-defined]
    return tar, stream


def read_header(path: Path) -> dict[str, Any]:
    """The ``hivectl-backup.json`` of a backup file (only its first blocks are decompressed)."""
    with open(path, "rb") as raw:
        try:
            tar, _ = _open_tar(raw)
            member = tar.next()
            if member is None or member.name != MANIFEST:
                raise HivectlError(f"{path}: not a hivectl backup ({MANIFEST} is not the first member)")
            handle = tar.extractfile(member)
            assert handle is not None
            header: dict[str, Any] = json.loads(handle.read(16 << 20))
        except (tarfile.TarError, ValueError, EOFError) as error:  # not a tar, or a damaged/foreign one
            raise HivectlError(f"{path}: not a hivectl backup ({error})") from None
        except OSError as error:
            if error.filename is not None:
                raise
            # gzip and bz2 report damaged data as an OSError that names no file
            raise HivectlError(f"{path}: not a hivectl backup ({error})") from None
    if not isinstance(header, dict):
        raise HivectlError(f"{path}: not a hivectl backup ({MANIFEST} is not a JSON object)")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise HivectlError(f"{path}: not a hivectl backup of version {VERSION}")
    return header


def existing_backups(directory: Path, guest: str) -> list[BackupFile]:
    """This guest's backups in ``directory``, oldest first (unreadable files are skipped)."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        match = FILE_RE.fullmatch(name)
        if not match or match.group("guest") != guest:
            continue
        try:
            header = read_header(directory / name)
        except (HivectlError, OSError, tarfile.TarError, ValueError, EOFError):
            continue
        found.append(BackupFile(directory / name, match.group("stamp"), header))
    return sorted(found, key=lambda b: b.stamp)


def _chain(backup: BackupFile, by_name: dict[str, BackupFile]) -> list[BackupFile]:
    """``backup`` and the backups it builds on, oldest (the full one) first."""
    chain = [backup]
    while chain[-1].parent is not None:
        parent = by_name.get(chain[-1].parent)
        if parent is None:
            raise NotFound(f"{chain[-1].path} is incremental to {chain[-1].parent}, which is not in "
                           f"{backup.path.parent}")
        if parent in chain:
            raise HivectlError(f"{parent.path}: backups refer to each other in a loop")
        chain.append(parent)
    return list(reversed(chain))


def prune(backups: list[BackupFile], keep: int | Policy) -> list[BackupFile]:
    """Which backups to delete so that the newest ``keep`` remain, or those a retention policy keeps
    (hivectl/retention, the grammar snapshots use too), plus any full/incremental they need."""
    from hivectl.retention import Item, Policy, select
    from hivectl.retention.names import time_of

    policy = Policy({"last": keep}) if isinstance(keep, int) else keep
    by_name = {b.path.name: b for b in backups}
    chosen = select([Item(b.path.name, time_of(b.stamp, UTC, "backup")) for b in backups], policy, UTC)
    kept: set[str] = set()
    for decision in chosen:
        if decision.keep:
            for needed in _chain(by_name[decision.item.name], by_name):
                kept.add(needed.path.name)
    return [b for b in backups if b.path.name not in kept]


def backup_policy(req: BackupRequest) -> Policy | None:
    """The retention of a backup request: ``keep`` N (keep-last=N) or its ``retention`` policy."""
    from hivectl.retention import Policy, parse_policy

    if req.keep is not None and req.retention is not None:
        raise UsageError("--keep N and --policy (a retention policy) cannot be mixed")
    if req.keep is not None:
        if req.keep < 1:
            raise UsageError("--keep must be at least 1")
        return Policy({"last": req.keep})
    if req.retention is None:
        return None
    policy = parse_policy(req.retention, None, "--policy")
    return None if policy.keeps_all else policy


# -- writing ------------------------------------------------------------------------------------------
class _Prefixed(io.RawIOBase):
    """Bytes already read (for magic detection) followed by the rest of a stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


class _HashingWriter(io.RawIOBase):
    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.raw.write(view)
        self.hash.update(view)
        self.count += len(view)
        return len(view)


class _SparseReader(io.RawIOBase):
    """A GNU sparse 1.0 member's body: the map block, then the data of each extent (read with pread)."""

    def __init__(self, fd: int, map_block: bytes, extents: list[tuple[int, int]], digest: sparse.ContentDigest,
                 counter: Callable[[int], None]) -> None:
        self.fd = fd
        self.pending = map_block
        self.extents = list(extents)
        self.digest = digest
        self.counter = counter

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = COPY if size is None or size < 0 else size
        out = bytearray()
        while len(out) < size:
            if self.pending:
                take = self.pending[: size - len(out)]
                self.pending = self.pending[len(take):]
                out += take
                continue
            if not self.extents:
                break
            offset, length = self.extents[0]
            data = os.pread(self.fd, min(length, size - len(out)), offset)
            if not data:
                raise HivectlError("a disk shrank while it was being backed up")
            self.digest.feed(offset, data)
            self.counter(len(data))
            out += data
            if len(data) == length:
                self.extents.pop(0)
            else:
                self.extents[0] = (offset + len(data), length - len(data))
        return bytes(out)


def _json_member(tar: tarfile.TarFile, name: str, data: dict[str, Any]) -> None:
    body = json.dumps(data, indent=1, sort_keys=True).encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(body), 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(body))


def _add_disk(tar: tarfile.TarFile, path: Path, name: str, digests: dict[str, Any], written: Written,
              folder: str = "disks") -> None:
    """A file with holes as a GNU sparse 1.0 member (disks always, other files when they are sparse)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        extents = list(sparse.data_extents(fd, st.st_size))
        # A file that ends in a hole gets a closing ``realsize 0`` entry, as GNU tar writes it: GNU tar
        # sizes the extracted file by its map alone (GNU tar's src/sparse.c, sparse_extract_region), so
        # without it the file came out cut after its last data; bsdtar uses GNU.sparse.realsize.
        closing = [] if extents and extents[-1][0] + extents[-1][1] == st.st_size else [(st.st_size, 0)]
        text = f"{len(extents) + len(closing)}\n" + "".join(f"{o}\n{n}\n" for o, n in [*extents, *closing])
        map_block = text.encode().ljust(-(-len(text) // 512) * 512, b"\0")
        info = tarfile.TarInfo(f"{folder}/GNUSparseFile.0/{name}")
        info.size = len(map_block) + sum(n for _, n in extents)
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": f"{folder}/{name}",
                            "GNU.sparse.realsize": str(st.st_size)}
        digest = sparse.ContentDigest(st.st_size)

        def count(n: int) -> None:
            written.bytes_read += n

        tar.addfile(info, _SparseReader(fd, map_block, extents, digest, count))
        digests[f"{folder}/{name}"] = {"size": st.st_size, "content_sha256": digest.hexdigest(),
                                    "data_bytes": info.size - len(map_block)}
    finally:
        os.close(fd)


def _add_directory(tar: tarfile.TarFile, ref: GuestRef, config: GuestConfig, digests: dict[str, Any],
                   written: Written) -> None:
    disks = {d.name for d in config.disks if d.backing.in_directory and "/" not in d.name and not d.is_cd}
    written.skipped = [f"{d.key} ({d.dev} {d.name})" for d in config.disks if not d.backing.in_directory]

    def walk(directory: Path, rel: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if not rel and is_runtime_file(entry.name, ref.name):
                continue
            name = f"{rel}{entry.name}"
            st = entry.stat(follow_symlinks=False)
            is_disk = not rel and entry.name in disks
            if stat.S_ISREG(st.st_mode) and (is_disk or st.st_blocks * 512 < st.st_size):
                _add_disk(tar, Path(entry.path), name, digests, written, "disks" if is_disk else "files")
            elif stat.S_ISDIR(st.st_mode):
                info = tarfile.TarInfo(f"files/{name}")
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, stat.S_IMODE(st.st_mode), int(st.st_mtime)
                tar.addfile(info)
                walk(Path(entry.path), f"{name}/")
            elif stat.S_ISLNK(st.st_mode):
                # restore refuses symlinks (one could point a run-time file at a disk or a host file), so
                # a backup never stores one: it is reported, like other things it does not store
                written.skipped.append(f"symbolic link {name}")
            elif stat.S_ISREG(st.st_mode):
                info = tarfile.TarInfo(f"files/{name}")
                info.size, info.mode, info.mtime = st.st_size, stat.S_IMODE(st.st_mode), int(st.st_mtime)
                with open(entry.path, "rb") as handle:
                    reader = HashingReader(handle)
                    tar.addfile(info, reader)
                digests[f"files/{name}"] = {"size": st.st_size, "sha256": reader.hash.hexdigest()}

    walk(ref.directory, "")


def _read_full(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    left = size
    while left:
        data = stream.read(left)
        if not data:
            break
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def _send_argv(store: Store, member: str, snap: str, base: str | None) -> list[str]:
    """``zfs send`` of one dataset's snapshot, never ``-R``: a clone's stream must not need its origin.

    ``zfs send -R`` of a clone makes a stream that ``zfs recv`` can only apply where the clone's origin
    exists (zfs(8), *send -R*: clones are preserved), so a backup of a clone could not be restored on
    another pool and came back as a clone on the same one. A full stream of each dataset's snapshot is
    self-contained; ``-p`` keeps its properties. A dataset added since ``base`` is sent whole.
    """
    incremental = base is not None and zfs.has_snapshot(store.host, member, base)
    return ["zfs", "send", "-p", *(["-i", f"@{base}"] if incremental else []), f"{member}@{snap}"]


def _add_zfs_tree(tar: tarfile.TarFile, sends: list[tuple[str, list[str]]], digests: dict[str, Any]) -> None:
    for rel, argv in sends:
        _add_zfs(tar, argv, digests, rel)


def _add_zfs(tar: tarfile.TarFile, argv: list[str], digests: dict[str, Any], rel: str = "") -> None:
    hasher = hashlib.sha256()
    index = total = 0
    folder = f"zfs/{rel}/" if rel else "zfs/"
    with pipes.reading(argv) as stream:
        while chunk := _read_full(stream, ZFS_CHUNK):
            info = tarfile.TarInfo(f"{folder}stream.{index:06d}")
            info.size, info.mode = len(chunk), 0o600
            tar.addfile(info, io.BytesIO(chunk))
            hasher.update(chunk)
            index += 1
            total += len(chunk)
    digests[f"zfs/{rel}" if rel else "zfs"] = {"sha256": hasher.hexdigest(), "size": total, "chunks": index}


def write_archive(target: Path | None, compress: str, header: dict[str, Any],
                  body: Callable[[tarfile.TarFile, dict[str, Any]], None], written: Written) -> None:
    """Write the whole stream to ``target`` (temp file, fsync, rename, ``.sha256``) or standard output."""
    tmp: Path | None = None
    if target is None:
        if sys.stdout.isatty():
            raise UsageError("refusing to write a backup to a terminal; redirect standard output")
        raw: IO[bytes] = sys.stdout.buffer
    else:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        raw = os.fdopen(fd, "wb")
    try:
        hashing = _HashingWriter(raw)
        packed = compression.writer(compress, hashing)  # type: ignore[arg-type]
        tar = tarfile.open(fileobj=packed, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed below
        tar.copybufsize = COPY  # type: ignore[attr-defined]
        digests: dict[str, Any] = {}
        _json_member(tar, MANIFEST, header)
        body(tar, digests)
        _json_member(tar, DIGESTS, digests)
        tar.close()
        if compress != "none":
            packed.close()
        raw.flush()
        written.sha256 = hashing.hash.hexdigest()
        if target is not None and tmp is not None:
            os.fsync(raw.fileno())
            raw.close()
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
            tmp = None
            # Published like the archive (temp file, fsync, rename): a crash leaves no .sha256 or a
            # whole one, never an empty one that makes a good archive look damaged.
            atomic_write_bytes(target.with_name(target.name + ".sha256"),
                               f"{written.sha256}  {target.name}\n".encode(), 0o600)
            written.path = target
    finally:
        if tmp is not None:
            try:
                raw.close()  # may fail again (a full disk fails the final flush too)
            except OSError:
                pass
            finally:
                tmp.unlink(missing_ok=True)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def plan_backup(store: Store, req: BackupRequest) -> tuple[Plan, Written]:
    """Plan a backup; the returned ``Written`` is filled in when the plan is applied."""
    ref = store.get(req.name)
    config = ref.config()
    validate.choice(None, "--compress", req.compress, tuple(EXTENSIONS))
    if req.compress == "zst" and not compression.available("zst"):
        raise HivectlError("--compress zst needs the Python module zstandard (pip install zstandard)")
    policy = backup_policy(req)
    to_stdout = req.to == "-"
    if to_stdout and policy is not None:
        raise UsageError("--keep needs a directory (--to DIR), not standard output")
    directory = None if to_stdout else Path(req.to) if req.to else store.root / ".backups"
    now = datetime.now(UTC)
    stamp = _stamp(now)
    target = directory / f"{ref.name}.{stamp}.backup.tar{EXTENSIONS[req.compress]}" if directory else None
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "guest": ref.name,
                              "created": now.isoformat(timespec="seconds"), "datastore": ref.datastore.name,
                              "config": config.rc.text()}
    written = Written()
    plan = Plan()
    previous = existing_backups(directory, ref.name) if directory else []
    if directory is not None and not directory.exists():
        from hivectl.plan import MakeDir

        plan.add(MakeDir(directory, 0o700))
    new_entry: BackupFile | None = None
    if ref.dataset is not None:
        dataset = ref.dataset
        header["kind"] = "zfs"
        snap = SNAP_PREFIX + stamp
        base, parent = _incremental_base(store, dataset, previous, req)
        members = zfs.datasets(store.host, dataset)
        rels = [member[len(dataset) + 1:] for member in members[1:]]
        header["zfs"] = {"dataset": dataset, "snapshot": snap, "base": base, "parent": parent,
                         "datasets": ["", *rels]}
        full = f"{dataset}@{snap}"
        plan.add(Run(["zfs", "snapshot", "-r", full], undo_argv=["zfs", "destroy", "-r", full]))
        sends = [(rel, _send_argv(store, member, snap, base)) for rel, member in zip(["", *rels], members, strict=True)]
        shown_send = [word for _, argv in sends for word in (*argv, ";")][:-1]
        plan.add(Call(shown_send, lambda: write_archive(target, req.compress, header,
                                                        lambda tar, d: _add_zfs_tree(tar, sends, d), written)))
        for old in zfs.snapshots(store.host, dataset):
            if old.name.startswith(SNAP_PREFIX):
                plan.add(Run(["zfs", "destroy", "-r", f"{dataset}@{old.name}"]))
    else:
        require_stopped(ref, "back up", "stop it first (its disks change while they are read)")
        header["kind"] = "directory"
        shown = ["tar", "--format=pax", "--sparse", "-c", "-f", str(target or "-"), "-C", str(ref.directory), "."]
        plan.add(Call(shown, lambda: write_archive(target, req.compress, header,
                                                   lambda tar, d: _add_directory(tar, ref, config, d, written),
                                                   written)))
    if target is not None and policy is not None:
        new_entry = BackupFile(target, stamp, header)
        doomed = prune([*previous, new_entry], policy)
        if doomed:
            paths = [p for b in doomed for p in (b.path, b.path.with_name(b.path.name + ".sha256"))]
            plan.add(Call(["rm", "-f", *map(str, paths)], lambda: _remove(paths)))
    return plan, written


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _incremental_base(store: Store, dataset: str, previous: list[BackupFile],
                      req: BackupRequest) -> tuple[str | None, str | None]:
    """(snapshot to send from, file name of that backup), or (None, None) for a full backup."""
    if req.full or not previous:
        return None, None
    latest = [s.name for s in zfs.snapshots(store.host, dataset) if s.name.startswith(SNAP_PREFIX)]
    if not latest:
        return None, None
    by_snapshot = {(b.header.get("zfs") or {}).get("snapshot"): b for b in previous}
    parent = by_snapshot.get(latest[-1])
    if parent is None:
        return None, None
    policy = backup_policy(req)
    if policy is not None:
        # A chain as long as the policy keeps backups starts again with a full one, so old chains can go.
        by_name = {b.path.name: b for b in previous}
        try:
            if len(_chain(parent, by_name)) >= sum(policy.counts.values()):
                return None, None  # start a new chain so that old ones can be pruned
        except HivectlError:
            return None, None
    return latest[-1], parent.path.name


# -- restoring ----------------------------------------------------------------------------------------
def _write_sparse_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    """Write a disk member at its offsets (zero blocks stay holes) and return its content digest."""
    # Read realsize from the pax record itself: tarfile lets a pax "size" record (written for members
    # holding more than 8 GiB of data) override it in ``member.size``.
    size = int(member.pax_headers.get("GNU.sparse.realsize", member.size))
    digest = sparse.ContentDigest(size)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, member.mode & 0o777 or 0o600)
    try:
        extents: list[tuple[int, int]] = list(cast(Any, member.sparse)) if member.sparse is not None else [(0, size)]
        source = tar.fileobj if member.sparse is not None else tar.extractfile(member)
        assert source is not None
        if member.sparse is not None:
            source.seek(member.offset_data)
        for offset, length in extents:
            while length:
                data = source.read(min(COPY, length))
                if not data:
                    raise HivectlError(f"backup member {member.name} is truncated")
                digest.feed(offset, data)
                view = memoryview(data)
                for i in range(0, len(data), sparse.ZERO_BLOCK):
                    piece = view[i:i + sparse.ZERO_BLOCK]
                    if not sparse.is_zero(piece):
                        os.pwrite(fd, piece, offset + i)
                offset += len(data)
                length -= len(data)
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _restore_directory(tar: tarfile.TarFile, checked: Checked, work: Path, source: str) -> dict[str, Any]:
    """Extract the validated members into ``work``; returns what was computed, to compare with the digests.

    Each member must be the next one ``check_archive`` accepted (same name and kind): a file changed
    between the two passes is refused, not trusted.
    """
    seen: dict[str, Any] = {}
    entries = iter(checked.entries)
    while (member := tar.next()) is not None:
        if member.name == DIGESTS:
            handle = tar.extractfile(member)
            assert handle is not None
            return {"digests": json.loads(handle.read(MAX_JSON + 1)), "seen": seen}
        entry = next(entries, None)
        kind = "dir" if member.isdir() else "disk" if member.name.startswith("disks/") else "file"
        if entry is None or entry.name != member.name or entry.kind != kind or not (member.isreg() or member.isdir()):
            raise HivectlError(f"{source}: {member.name}: changed while it was being restored; nothing was restored")
        path = work / entry.target
        if member.sparse is not None:
            digest = _write_sparse_member(tar, member, path)
            seen[member.name] = {"size": path.stat().st_size, "content_sha256": digest}
        elif member.isdir():
            path.mkdir(mode=member.mode & 0o755 or 0o755)
        else:
            handle = tar.extractfile(member)
            assert handle is not None
            hasher = hashlib.sha256()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, member.mode & 0o777 or 0o600)
            with os.fdopen(fd, "wb") as out:
                while data := handle.read(COPY):
                    hasher.update(data)
                    out.write(data)
                os.fchmod(out.fileno(), member.mode & 0o777)
            seen[member.name] = {"size": member.size, "sha256": hasher.hexdigest()}
    raise HivectlError(f"{source}: the backup ends before {DIGESTS}: it is truncated")


def _check_digests(result: dict[str, Any], source: str) -> None:
    expected, seen = result["digests"], result["seen"]
    for name, want in expected.items():
        got = seen.get(name)
        if got is None:
            raise HivectlError(f"{source}: {name} is listed but missing from the backup")
        for key in ("size", "sha256", "content_sha256"):
            if key in want and want[key] != got.get(key):
                raise HivectlError(f"{source}: {name}: {key} mismatch (expected {want[key]}, got {got.get(key)}); "
                                   "the backup is damaged")
    extra = set(seen) - set(expected)
    if extra:
        raise HivectlError(f"{source}: members not in the digest list: {', '.join(sorted(extra))}")


def _receive(tar: tarfile.TarFile, target_dataset: str, checked: Checked) -> dict[str, Any]:
    """Feed each dataset's stream to its own ``zfs recv`` (the guest's dataset first, then its children)."""
    digests: dict[str, Any] | None = None
    computed: dict[str, Any] = {}
    entries = iter(checked.entries)
    current: str | None = None
    sink: Any = None
    hasher, total = hashlib.sha256(), 0
    with contextlib.ExitStack() as stack:
        while (member := tar.next()) is not None:
            if member.name == DIGESTS:
                handle = tar.extractfile(member)
                assert handle is not None
                digests = json.loads(handle.read(MAX_JSON + 1))
                break
            entry = next(entries, None)
            if entry is None or entry.name != member.name or not member.isreg():
                raise HivectlError(f"{checked.archive}: {member.name}: changed while it was being restored")
            if sink is None or entry.target != current:
                stack.close()  # the previous dataset's zfs recv ends (and is checked) before the next starts
                if current is not None:
                    computed[f"zfs/{current}" if current else "zfs"] = {"sha256": hasher.hexdigest(), "size": total}
                current, hasher, total = entry.target, hashlib.sha256(), 0
                dataset = f"{target_dataset}/{current}" if current else target_dataset
                sink = stack.enter_context(pipes.writing(["zfs", "recv", dataset]))
            handle = tar.extractfile(member)
            assert handle is not None
            while data := handle.read(COPY):
                hasher.update(data)
                total += len(data)
                sink.write(data)
    if current is not None:
        computed[f"zfs/{current}" if current else "zfs"] = {"sha256": hasher.hexdigest(), "size": total}
    if digests is None:
        raise HivectlError(f"the backup ends before {DIGESTS}: it is truncated")
    for key, got in computed.items():
        want = digests.get(key, {})
        if want.get("sha256") != got["sha256"] or want.get("size") != got["size"]:
            raise HivectlError(f"{checked.archive}: {key}: the ZFS stream does not match its checksum; "
                               "the backup is damaged")
    return digests


@dataclass
class RestoreResult:
    ref: GuestRef
    files: list[Path]


def _expected_sha256(path: Path) -> str | None:
    sums = path.with_name(path.name + ".sha256")
    if not sums.exists():
        return None
    words = sums.read_text(errors="replace").split()
    if not words or not re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
        raise HivectlError(f"{sums}: not a SHA-256 line ('DIGEST  NAME'); remove it to restore without it")
    return words[0].lower()


def _free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _check(path: Path, shown: str, free: int | None) -> Checked:
    with open(path, "rb") as raw:
        return check_archive(path, raw, _expected_sha256(path) if shown == str(path) else None, free, shown)


def check_chain(store: Store, source: Path, target: Datastore,
                spool: Path | None = None) -> tuple[list[Path], list[Checked]]:
    """Validate every archive ``restore`` would read (the file and the backups it is incremental to).

    Nothing is extracted or created: ``hivectl.storage.archive_check`` reads each archive to its end.
    ``spool`` is where standard input was saved (``source`` is then ``-``).
    """
    free = _free_bytes(target.path) if target.path.is_dir() else None
    first = _check(spool or source, str(source), free)
    chain = [spool or source]
    parent = (first.header.get("zfs") or {}).get("parent") if first.kind == "zfs" else None
    if parent and spool is None:
        backups = existing_backups(source.parent, first.guest)
        by_name = {b.path.name: b for b in backups}
        me = by_name.get(source.name)
        if me is None:
            raise NotFound(f"{source}: its name does not follow NAME.STAMP.backup.tar[.EXT]; cannot find its chain")
        chain = [b.path for b in _chain(me, by_name)]
    elif parent:
        raise UsageError("an incremental ZFS backup cannot be restored from standard input (its chain is "
                         "found next to the file); restore the file")
    checked = [first if path == chain[-1] else _check(path, str(path), free) for path in chain]
    for path, one in zip(chain, checked, strict=True):
        if one.guest != first.guest or one.kind != first.kind:
            raise ArchiveRefused(str(path), MANIFEST, f"a backup of {one.guest} ({one.kind}) in the chain of "
                                                      f"{first.guest} ({first.kind})")
    total = sum(one.data_bytes for one in checked)
    if free is not None and total > free:
        raise ArchiveRefused(str(source), "(the chain)", f"needs {total} bytes, the datastore has {free} free")
    return chain, checked


def _spool(raw: IO[bytes], directory: Path) -> Path:
    """Standard input saved to a hidden file of the datastore, so that it can be checked, then restored."""
    fd, name = tempfile.mkstemp(prefix=".hivectl-restore-spool-", dir=directory)
    with os.fdopen(fd, "wb") as out:
        while data := raw.read(COPY):
            out.write(data)
    return Path(name)


def restore(store: Store, source: Path, datastore: str | None = None, name: str | None = None) -> RestoreResult:
    """Recreate a guest from a backup file (or ``-``); nothing is created unless the whole archive checks out.

    Every archive of the chain is validated first (``check_chain``); the guest is then built in a hidden
    staging directory (``hivectl/model/staging.py``) and published with one rename. The header's guest name is the
    guest restored unless ``name`` is given: then the guest's ``OLD.conf`` becomes ``NAME.conf``.
    """
    store_ = store.datastore(datastore or "default")
    if not store_.holds_guests:
        raise UsageError(f"datastore {store_.name} is an {store_.kind} store; guests cannot live there")
    spool = _spool(sys.stdin.buffer, store_.path) if str(source) == "-" else None
    try:
        chain, checked = check_chain(store, source, store_, spool)
        guest = validate.guest_name(None, "NAME", name or checked[0].guest, new=True)
        # Staging and tombstone entries of this name that killed commands left (a live command's are kept),
        # first: also when the guest exists (a restore killed between its publish and its clean-up).
        for leftover in store.leftovers(guest):
            Collect(leftover.path, leftover.dataset).apply(store.host)
        store.require_free(guest, "; restore under another NAME or destroy it first")
        ref = GuestRef(guest, store_)
        if checked[0].kind == "zfs" and ref.dataset is None:
            raise UsageError(f"{source} holds a ZFS guest; restore it into a ZFS datastore (-d)")
        if checked[0].kind != "zfs" and ref.dataset is not None:
            raise UsageError(f"{source} holds a guest of a directory datastore; restore it into one (-d)")
        _extract_chain(store, store_, ref, chain, checked, str(source))
    finally:
        if spool is not None:
            spool.unlink(missing_ok=True)
    from hivectl.storage.cloudinit import ensure_seed

    action = ensure_seed(ref)  # seed.iso is not stored (it is rebuilt from .cloud-init)
    if action is not None:
        action.apply(store.host)
    return RestoreResult(ref, [source] if spool is not None else chain)


def _extract_chain(store: Store, store_: Datastore, ref: GuestRef, chain: list[Path], checked: list[Checked],
                   shown: str) -> None:
    """Second pass: build the guest from archives already validated (each is compared as it is read again).

    Out of sight, like ``create``: a directory guest in a locked staging directory, a ZFS guest received
    under a locked, empty staging dataset (``zfs recv`` must create the dataset it receives, so the guest
    is ``STAGING/NAME`` and the staging dataset only holds it and the lock). Once the whole chain is in
    and the guest is complete, one rename (``zfs rename STAGING/NAME POOL/NAME``) publishes it; the emptied
    staging dataset is then removed (or, if killed just then, collected by the next command of that name).
    """
    work_dirs: list[MakeStaging] = []
    original = checked[0].guest
    staged: GuestRef | None = None  # the ZFS guest while it is being received
    holder: MakeStaging | None = None
    try:
        if ref.dataset is not None:
            holder = _zfs_staging(store, store_, ref.name)
            staged = GuestRef(ref.name, store_, f"{holder.directory.name}/{ref.name}")
        for index, (path, expected) in enumerate(zip(chain, checked, strict=True)):
            display = shown if index == len(chain) - 1 else str(path)
            raw = open(path, "rb")  # noqa: SIM115 - closed below
            hashing = HashingReader(raw)
            try:
                tar, _stream = _open_tar(hashing)  # type: ignore[arg-type]
                member = tar.next()
                if member is None or member.name != MANIFEST:
                    raise HivectlError(f"{display}: changed while it was being restored")
                handle = tar.extractfile(member)
                assert handle is not None
                if json.loads(handle.read()) != expected.header:
                    raise HivectlError(f"{display}: changed while it was being restored")
                if expected.kind == "zfs":
                    assert staged is not None and staged.dataset is not None
                    _receive(tar, staged.dataset, expected)
                else:
                    work_dirs.append(_restore_into_directory(tar, expected, store, store_, ref.name, display))
                _drain(hashing)
            finally:
                raw.close()
            sha = _expected_sha256(path) if display == str(path) else None
            if sha is not None and hashing.hash.hexdigest() != sha:
                raise HivectlError(f"{display}: changed while it was being restored (SHA-256 differs)")
        if staged is not None and holder is not None:
            # only after the whole chain: a received dataset changed between two receives refuses the next
            _generalise_received(staged, original)
            Publish(None, staged.directory, ref.directory, staged.dataset, ref.dataset).apply(store.host)
            holder.undo(store.host)  # the staging dataset is empty now
            holder = None
        for work in list(work_dirs):
            Publish(work, work.directory, ref.directory).apply(store.host)  # one rename(2), never replacing
            work_dirs.remove(work)
    except BaseException:
        if holder is not None:
            holder.undo(store.host)  # zfs destroy -rf: the staging dataset and what was received under it
        for work in work_dirs:
            work.undo(store.host)
        raise


def _zfs_staging(store: Store, store_: Datastore, guest: str) -> MakeStaging:
    """An empty, locked staging dataset of the datastore for a ZFS guest to be received under."""
    assert store_.dataset is not None
    if os.path.lexists(store_.path / guest):
        raise Conflict(f"{store_.path / guest} already exists")
    entry = staging_name(guest)
    dataset = f"{store_.dataset}/{entry}"
    holder = MakeStaging(store_.path / entry, dataset, ["zfs", "create", dataset])
    holder.apply(store.host)
    return holder


def _generalise_received(staged: GuestRef, original: str) -> None:
    """Before the received guest is published: ``OLD.conf`` renamed to ``NAME.conf``, run-time files dropped.

    A ZFS backup may be of a running guest, so its stream can carry run.lock, hivectl.state and console:
    left in place they would make the copy look like the running original (and 'stop' act on the
    original's hypervisor pid). Drop them, as directory backups never store them.
    """
    if staged.name != original:
        old = staged.directory / config_name(original)
        if old.exists():
            os.replace(old, staged.conf_path)
    for entry in os.listdir(staged.directory):
        if is_runtime_file(entry, original) or is_runtime_file(entry, staged.name):
            path = staged.directory / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    if not staged.conf_path.is_file():
        raise HivectlError(f"the backup holds no {original}.conf")


def _drain(stream: HashingReader) -> None:
    while stream.read(COPY):
        pass


def _restore_into_directory(tar: tarfile.TarFile, checked: Checked, store: Store, store_: Datastore, guest: str,
                            source: str) -> MakeStaging:
    """Extract into a hidden, locked staging directory of the datastore; the caller renames it into place.

    The names and the lock are ``hivectl/staging.py``'s (as for create and clone).
    """
    final = store_.path / guest
    if os.path.lexists(final):
        raise Conflict(f"{final} already exists")
    staging = MakeStaging(store_.path / staging_name(guest))
    staging.apply(store.host)
    work = staging.directory
    try:
        result = _restore_directory(tar, checked, work, source)
        _check_digests(result, source)
        original = checked.guest
        old_conf = work / config_name(original)
        staged = GuestLayout(work, guest)
        if original != guest and old_conf.exists():
            os.replace(old_conf, staged.config)
        if not staged.config.is_file():
            raise HivectlError(f"{source}: the backup holds no {original}.conf")
        os.chmod(work, 0o755)  # noqa: S103 - a guest directory, as 'create' makes it
        return staging
    except BaseException:
        staging.undo(store.host)
        raise
